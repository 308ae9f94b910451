"""The built-in single-model architectures: importing this module registers each of them.

One list, imported by the public registry (and by the ensemble, whose members are built from it),
so that adding an architecture means writing its module and naming it here, nothing else.
"""

from __future__ import annotations

from affectlens.models import baseline_cnn, fast_cnn, resnet_preact, transfer, vgg_fer

__all__ = ["baseline_cnn", "fast_cnn", "resnet_preact", "transfer", "vgg_fer"]
