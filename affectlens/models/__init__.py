"""Emotion-recognition architectures and the registry that builds them by name.

Every model maps a normalised ``(B, C, H, W)`` float batch to ``(B, num_classes)`` logits and has
``forward_features(x) -> (B, num_features)``, a ``head`` classifier and ``default_input_size``.
"""

from __future__ import annotations

# Imported for their side effect: each module registers its builders.
from affectlens.models import baseline_cnn, fast_cnn, resnet_preact, transfer, vgg_fer  # noqa: F401
from affectlens.models.complexity import count_macs, count_params
from affectlens.models.freezing import apply_frozen_bn_eval, freeze_all_but_last
from affectlens.models.registry import create_model, list_models, load_pretrained, model_info, register_model

__all__ = [
    "apply_frozen_bn_eval",
    "count_macs",
    "count_params",
    "create_model",
    "freeze_all_but_last",
    "list_models",
    "load_pretrained",
    "model_info",
    "register_model",
]
