"""Emotion-recognition architectures and the registry that builds them by name.

Every model maps a normalised ``(B, C, H, W)`` float batch to ``(B, num_classes)`` logits and has
``forward_features(x) -> (B, num_features)``, a ``head`` classifier and ``default_input_size``.

The names below load on first use (PEP 562), so that reading a model card
(:mod:`affectlens.runtime.card`) on the ONNX Runtime path does not import PyTorch.
"""

from __future__ import annotations

from affectlens.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "apply_frozen_bn_eval": ".freezing",
        "count_macs": ".complexity",
        "count_params": ".complexity",
        "create_model": ".registry",
        "freeze_all_but_last": ".freezing",
        "list_models": ".registry",
        "load_pretrained": ".registry",
        "model_info": ".registry",
        "register_model": ".registry",
    },
)
