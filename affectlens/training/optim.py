"""Optimizers of the Khaireddin & Chen study, by name."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from affectlens.errors import unknown_name_error
from affectlens.training.config import OptimConfig

OPTIMIZERS = ("sgd", "sgd_nesterov", "asgd", "adam", "adamw", "amsgrad", "adadelta", "adagrad")


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Create the optimizer ``cfg.name`` with the config's learning rate and weight decay."""
    params = [p for p in params if p.requires_grad]
    name, lr, wd = cfg.name, cfg.lr, cfg.weight_decay
    betas = (float(cfg.betas[0]), float(cfg.betas[1]))
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if name == "sgd_nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd, nesterov=True)
    if name == "asgd":
        return torch.optim.ASGD(params, lr=lr, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "amsgrad":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd, amsgrad=True)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise unknown_name_error("optimizer", name, OPTIMIZERS)
