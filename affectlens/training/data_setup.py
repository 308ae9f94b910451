"""From a :class:`DataConfig` to train / validation / test datasets and a fitted normalisation.

Loading the configured dataset at the configured size is :func:`affectlens.data.conform.load_configured`
(also used by evaluation and the command line); this module splits it for training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from affectlens.data.conform import load_configured
from affectlens.data.dataset import EmotionDataset
from affectlens.data.preprocessing import Normalization
from affectlens.data.splits import holdout_split, stratified_sample
from affectlens.errors import AffectlensError
from affectlens.training.config import DataConfig

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: EmotionDataset
    val: EmotionDataset | None
    test: EmotionDataset | None
    normalization: Normalization
    class_names: list[str]

    def summary(self) -> str:
        parts = [f"train {len(self.train)}"]
        if self.val is not None:
            parts.append(f"val {len(self.val)}")
        if self.test is not None:
            parts.append(f"test {len(self.test)}")
        return ", ".join(parts)


def prepare_data(cfg: DataConfig, seed: int = 0, normalization: Normalization | None = None,
                 task: str = "classification") -> PreparedData:
    """Split the configured dataset; fit normalisation on the training part unless one is given.

    ``task`` other than ``classification`` needs valence/arousal targets; the ``va`` task needs no
    class labels (its class names are empty).
    """
    cfg.require_path()
    dataset = load_configured(cfg)
    if task != "classification":
        _check_va_data(dataset, cfg)
    if cfg.label_mode not in ("hard", "soft"):
        raise AffectlensError(f"data.label_mode must be 'hard' or 'soft', got '{cfg.label_mode}'")
    if cfg.label_mode == "soft" and dataset.soft_labels is None:
        raise AffectlensError(f"data.label_mode is 'soft' but dataset '{dataset.name}' has no soft labels")
    splits = dataset.split_names()
    val = test = None
    if splits:
        train = dataset.select_splits(cfg.train_splits)
        if cfg.val_split and cfg.val_split in splits:
            val = dataset.select_splits(cfg.val_split)
        if cfg.test_split and cfg.test_split in splits:
            test = dataset.select_splits(cfg.test_split)
    else:
        train = dataset
    if val is None and cfg.val_split and cfg.val_fraction > 0:
        groups = train.subjects if train.subjects is not None else train.videos
        train_idx, val_idx = holdout_split(train.labels, cfg.val_fraction, seed, groups)
        train, val = train.subset(train_idx), train.subset(val_idx)
        log.info("no '%s' split: held out %d samples (%s)", cfg.val_split, len(val),
                 "grouped" if groups is not None else "stratified")
    if cfg.max_per_split:
        train = train.subset(stratified_sample(train.labels, cfg.max_per_split, seed))
        val = val.subset(stratified_sample(val.labels, cfg.max_per_split, seed)) if val is not None else None
        test = test.subset(stratified_sample(test.labels, cfg.max_per_split, seed)) if test is not None else None
    if cfg.max_train_samples:
        train = train.subset(stratified_sample(train.labels, cfg.max_train_samples, seed))
    if len(train) == 0:
        raise AffectlensError(f"dataset '{dataset.name}': the training split {cfg.train_splits} is empty")
    present = [name for name, n in zip(dataset.class_names, train.class_counts(), strict=True) if n > 0]
    if task == "va":
        dataset = dataset.with_labels(np.full(len(dataset), -1), [])
        train, val, test = (None if d is None else d.with_labels(np.full(len(d), -1), []) for d in (train, val, test))
        assert train is not None
    elif len(present) < 2:  # one class "trains" to accuracy 1.0 and has learnt nothing
        raise AffectlensError(
            f"dataset '{dataset.name}': training needs labelled images of at least two classes; found "
            f"{len(present)} ({', '.join(present) or 'none'}) in {len(train)} training samples"
        )
    if normalization is None:
        sample = train.images if train.images is not None else train.batch(
            np.random.default_rng(seed).choice(len(train), min(len(train), 2000), replace=False))
        normalization = Normalization.fit(cfg.normalization, sample)
    return PreparedData(train, val, test, normalization, list(dataset.class_names))


def _check_va_data(dataset: EmotionDataset, cfg: DataConfig) -> None:
    """A valence/arousal task needs targets, and its windows cannot be cut from a class-stratified sample."""
    if not dataset.has_regression_targets:
        raise AffectlensError(f"dataset '{dataset.name}' ({cfg.path}) has no valence/arousal targets; task needs them")
    if cfg.max_per_split or cfg.max_train_samples:
        raise AffectlensError("data.max_per_split and data.max_train_samples sample single images; "
                              "they cannot be used with a valence/arousal task (videos are cut into windows)")
