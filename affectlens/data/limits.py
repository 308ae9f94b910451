"""The limits on how images are delivered, declared once for the command line, configs and loaders.

Kept in a module without imports so the command line can check its options against them without
loading NumPy or Pillow.
"""

from __future__ import annotations

#: the largest side (pixels) images may be resized to: face models take 40 to 224 px, and a side of
#: 20,000 px would ask for gigabytes per image (a memory error long after the command started)
MAX_IMAGE_SIZE = 1024
#: the channel counts images are delivered with: 1 (grey) or 3 (RGB)
CHANNEL_COUNTS = (1, 3)
