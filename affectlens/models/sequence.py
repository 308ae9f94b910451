"""CNN-RNN models for continuous emotion: a per-frame CNN from the registry feeding a GRU.

The design of the in-the-wild valence/arousal systems (Kollias et al.'s CNN-RNN on Aff-Wild, the
thesis this project builds on): every frame of a window goes through a CNN trained for expressions
(VGG-style, ResNet or AlexNet-style, any registry architecture), its feature vector into a 2-layer
GRU, whose state carries the recent past, and a linear layer gives K class logits followed by
valence and arousal for every frame (tanh is applied by
:func:`affectlens.models.prediction.head.split_outputs`, as for every affectlens model).

Three entry points, so that training, streaming and export need no other code:

* ``forward(x)``: ``(B, T, C, H, W)`` windows -> ``(B, T, outputs)``, training and evaluation;
* ``frame_features(x)``: ``(N, C, H, W)`` faces -> ``(N, F)``, the per-frame CNN (one ONNX graph);
* ``step(features, state)``: one GRU step for ``N`` faces with their states ``(layers, N, hidden)``,
  the second ONNX graph and the streaming predictor's per-track update.

``create_model("cnn_gru", ..., pretrained=..., trainable_layers=...)`` loads the weights into the
CNN (``pretrained_target``), e.g. the shipped ``default`` expression model, and freezes its layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from affectlens.models._registry import build, register_model


class CNNGRU(nn.Module):
    """Registry CNN (its classifier removed) -> GRU -> linear outputs, per frame."""

    #: the model takes ``(B, T, C, H, W)`` windows, not single frames
    sequential = True
    #: the default backbone's crop; an instance takes its own backbone's
    default_input_size: int = 40
    #: ``create_model(pretrained=..., trainable_layers=...)`` act on this submodule
    pretrained_target = "backbone"

    def __init__(self, num_classes: int, in_channels: int = 1, backbone: str = "vgg_fer_small",
                 backbone_options: dict[str, Any] | None = None, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        # the registry's core builds it (options checked); the public registry imports this module
        self.backbone = build(backbone, 1, in_channels, **(backbone_options or {}))
        self.backbone.head = nn.Identity()  # its features feed the GRU; no unused classifier weights
        features = int(self.backbone.num_features)
        self.gru = nn.GRU(features, hidden, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, num_classes)
        self.default_input_size = int(getattr(self.backbone, "default_input_size", 48))
        self.num_features = hidden
        self.state_shape = (layers, hidden)

    def initial_state(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The zero state ``(layers, n, hidden)`` a new face track (or window) starts from."""
        return torch.zeros(self.state_shape[0], n, self.state_shape[1], device=device)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` normalised faces -> CNN features ``(N, F)``."""
        return self.backbone.forward_features(x)

    def step(self, features: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: features ``(N, F)`` and states ``(layers, N, hidden)`` -> outputs and new states."""
        out, state = self.gru(features[:, None, :], state)
        return self.head(out[:, 0]), state

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """Windows ``(B, T, C, H, W)`` -> raw outputs ``(B, T, K + 2)``, starting from ``state`` (zeros)."""
        return self.forward_state(x, state)[0]

    def forward_state(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`forward`, also returning the final state: a long video runs chunk by chunk."""
        b, t = x.shape[:2]
        features = self.frame_features(x.flatten(0, 1)).reshape(b, t, -1)
        out, state = self.gru(features, state)
        return self.head(out), state

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """GRU outputs ``(B, T, hidden)`` of windows (the features the head reads)."""
        b, t = x.shape[:2]
        return self.gru(self.frame_features(x.flatten(0, 1)).reshape(b, t, -1))[0]


@register_model("cnn_gru")
def cnn_gru(num_classes: int, in_channels: int = 1, *, backbone: str = "vgg_fer_small",
            backbone_options: dict[str, Any] | None = None, hidden: int = 128, layers: int = 2,
            dropout: float = 0.0) -> CNNGRU:
    """Per-frame registry CNN + 2-layer GRU predicting valence/arousal (and classes) for every frame."""
    return CNNGRU(num_classes, in_channels, backbone=backbone, backbone_options=backbone_options, hidden=hidden,
                  layers=layers, dropout=dropout)
