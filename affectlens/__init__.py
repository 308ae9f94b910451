"""affectlens: facial emotion recognition for photos, videos and cameras, and a toolkit to train
and evaluate emotion models on your own data."""

from __future__ import annotations

__version__ = "0.1.0"
