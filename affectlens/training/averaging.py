"""Stochastic weight averaging (SWA): the mean of the weights at the end of the last epochs.

A network trained to the end of a decaying schedule sits in one sharp point of a wide basin;
the average of the points SGD visits at a moderate learning rate lies nearer the basin's centre
and usually generalises better (Izmailov et al., 2018). The averaging is PyTorch's
:class:`torch.optim.swa_utils.AveragedModel`; what this module adds is what a resumable run
needs: the BatchNorm statistics recomputed for the averaged weights on the training images
(centre crops, as validation sees them), and a state that goes into the run's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from affectlens.data.preprocessing import Normalization
from affectlens.runtime.steps import DEFAULT_BATCH_SIZE, preprocess


class WeightAverage:
    """The running mean of a model's weights, taken once per epoch from epoch ``start_epoch`` on (1-based)."""

    def __init__(self, model: nn.Module, start_epoch: int) -> None:
        self.start_epoch = start_epoch
        self.averaged = AveragedModel(model)  # a copy; BatchNorm buffers are recomputed, not averaged

    @property
    def model(self) -> nn.Module:
        """The averaged network itself (same architecture and state-dict keys as the trained one)."""
        return self.averaged.module

    @property
    def count(self) -> int:
        """How many epochs' weights the average holds."""
        return int(self.averaged.n_averaged)

    def applies_to(self, epoch: int) -> bool:
        """Whether the weights at the end of ``epoch`` (1-based) join the average."""
        return epoch >= self.start_epoch

    def update(self, model: nn.Module, train_faces: Any, normalization: Normalization, input_size: int,
               device: torch.device, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        """Add ``model``'s weights to the average and recompute the averaged network's BatchNorm statistics.

        The statistics of the running network belong to its own weights, not to the average, so
        they are measured again with one pass over the training images (a no-op without BatchNorm).
        """
        self.averaged.update_parameters(model)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules()):
            batches = _centre_crops(train_faces, normalization, input_size, device, batch_size)
            # the pass runs in train mode (dropout draws); on a forked RNG it leaves the training
            # stream untouched, so averaging never changes the weights SGD visits
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                update_bn(batches, self.model, device=device)
        self.model.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "start_epoch": self.start_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])
        self.start_epoch = int(state["start_epoch"])


def _centre_crops(faces: Any, normalization: Normalization, input_size: int, device: torch.device,
                  batch_size: int) -> Iterator[torch.Tensor]:
    """Normalised centre crops of every training face, batch by batch (datasets are read lazily)."""
    for start in range(0, len(faces), batch_size):
        rows = np.arange(start, min(start + batch_size, len(faces)))
        chunk = faces.batch(rows) if hasattr(faces, "batch") else faces[rows]
        yield torch.from_numpy(preprocess(chunk, input_size, normalization)).to(device)
