"""Imbalance remedies: focal loss, logit adjustment, class weights and the class-balanced sampler,
alone and inside the training loop (including resuming in the middle of a balanced epoch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from affectlens.config_io import load_config
from affectlens.data.augment import AugmentConfig
from affectlens.data.dataset import EmotionDataset
from affectlens.data.preprocessing import Normalization
from affectlens.data.sampling import ClassBalancedSampler, balanced_weights
from affectlens.errors import AffectlensError
from affectlens.training.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from affectlens.training.data_setup import PreparedData
from affectlens.training.loop import Trainer
from affectlens.training.losses import ClassificationLoss, focal_loss, log_prior

COUNTS = np.array([900, 80, 20])


def _batch(n: int = 12, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2
    labels = torch.randint(0, k, (n,), generator=g)
    labels[0] = -1  # an unlabelled sample is ignored
    soft = torch.softmax(torch.randn(n, k, generator=g), dim=1)
    return logits, {"label": labels, "soft": soft}


@pytest.mark.parametrize("weights", ["none", "effective"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_focal_with_gamma_zero_is_cross_entropy(weights: str, smoothing: float) -> None:
    logits, batch = _batch()
    ce = ClassificationLoss(LossConfig(class_weights=weights, label_smoothing=smoothing), COUNTS)
    focal = ClassificationLoss(LossConfig(name="focal", focal_gamma=0.0, class_weights=weights,
                                          label_smoothing=smoothing), COUNTS)
    torch.testing.assert_close(focal(logits, batch), ce(logits, batch))


def test_focal_down_weights_easy_examples() -> None:
    easy = torch.tensor([[6.0, 0.0, 0.0]])
    hard = torch.tensor([[0.5, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0]])
    ce_ratio = F.cross_entropy(easy, torch.tensor([0])) / F.cross_entropy(hard, torch.tensor([0]))
    focal_ratio = focal_loss(easy, target, 2.0) / focal_loss(hard, target, 2.0)
    assert focal_ratio < ce_ratio / 100
    p = torch.softmax(hard, 1)[0, 0]
    torch.testing.assert_close(focal_loss(hard, target, 2.0), -(1 - p) ** 2 * torch.log(p))


def test_logit_adjustment_is_cross_entropy_on_shifted_logits() -> None:
    logits, batch = _batch()
    loss = ClassificationLoss(LossConfig(name="logit_adjusted", logit_tau=1.5), COUNTS)
    prior = COUNTS / COUNTS.sum()
    shifted = logits + 1.5 * torch.tensor(np.log(prior), dtype=torch.float32)
    torch.testing.assert_close(loss(logits, batch), F.cross_entropy(shifted, batch["label"], ignore_index=-1))
    # a rare class needs a larger margin: equal logits cost more for a rare-class label
    equal = torch.zeros(2, 3)
    rare = loss(equal, {"label": torch.tensor([2, 2])})
    common = loss(equal, {"label": torch.tensor([0, 0])})
    assert rare > common
    torch.testing.assert_close(log_prior(np.array([1, 0, 1])).exp(), torch.tensor([0.4, 0.2, 0.4]))  # empty: 0.5


def test_soft_targets_and_bad_names() -> None:
    logits, batch = _batch()
    for name in ("cross_entropy", "focal", "logit_adjusted"):
        value = ClassificationLoss(LossConfig(name=name), COUNTS, use_soft=True)(logits, batch)
        assert torch.isfinite(value) and value > 0
    with pytest.raises(AffectlensError, match="unknown loss 'dice'.*valid names"):
        ClassificationLoss(LossConfig.model_construct(name="dice"), COUNTS)  # past config validation
    with pytest.raises(AffectlensError, match="focal_gamma"):
        ClassificationLoss(LossConfig.model_construct(name="focal", focal_gamma=-1), COUNTS)
    cfg = load_config(TrainConfig, None, ["loss.name=focal", "loss.focal_gamma=1.5", "sampler=balanced",
                                          "loss.class_weights=inverse"])
    assert cfg.loss.name == "focal" and cfg.loss.focal_gamma == 1.5 and cfg.sampler == "balanced"


def test_balanced_sampler_is_balanced_and_deterministic() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10 + [-1] * 5)
    draw = ClassBalancedSampler(labels, seed=3, epoch=2, num_samples=30000)
    order = np.array(list(draw))
    counts = np.bincount(labels[order], minlength=3)
    assert (labels[order] >= 0).all() and np.allclose(counts / counts.sum(), 1 / 3, atol=0.02)
    again = np.array(list(ClassBalancedSampler(labels, seed=3, epoch=2, num_samples=30000)))
    assert np.array_equal(order, again)
    other_epoch = np.array(list(ClassBalancedSampler(labels, seed=3, epoch=3, num_samples=30000)))
    assert not np.array_equal(order, other_epoch)
    resumed = ClassBalancedSampler(labels, seed=3, epoch=2, start=1000, num_samples=30000)
    assert len(resumed) == 29000 and np.array_equal(np.array(list(resumed)), order[1000:])
    assert len(ClassBalancedSampler(labels, 0, 0)) == len(labels)
    half = balanced_weights(labels, power=0.5)
    assert half[0] < half[950] < half[995] and half[-1] == 0
    with pytest.raises(AffectlensError, match="needs class labels"):
        ClassBalancedSampler(np.full(4, -1), 0, 0)


def _tiny_data(n: int = 48) -> PreparedData:
    rng = np.random.default_rng(0)
    labels = np.array([0] * 36 + [1] * 8 + [2] * 4)[:n]
    images = rng.integers(0, 255, (n, 24, 24), dtype=np.uint8)
    train = EmotionDataset(name="tiny", class_names=["a", "b", "c"], labels=labels, images=images)
    val = train.subset(np.arange(0, n, 4))
    return PreparedData(train, val, None, Normalization.fit("unit", train.images), ["a", "b", "c"])


def _tiny_config(tmp_path: Path, **changes) -> TrainConfig:
    cfg = TrainConfig(data=DataConfig(image_size=24, channels=1, test_split=None),
                      augment=AugmentConfig(enabled=False, crop_size=0), model=ModelConfig(name="baseline_cnn"),
                      epochs=1, batch_size=8, device="cpu", threads=1, ten_crop=False, output_dir=str(tmp_path),
                      select_metric="val_macro_f1", checkpoint_every_steps=0)
    return cfg.replace(**changes)


def test_trainer_uses_balanced_sampler_and_resumes_mid_epoch(tmp_path: Path) -> None:
    cfg = _tiny_config(tmp_path, sampler="balanced", loss=LossConfig(name="focal"))
    trainer = Trainer(cfg, tmp_path / "run", data=_tiny_data())
    def drawn() -> list[int]:  # the loader's batches, one after the other
        return [i for batch in trainer._loader().batch_sampler for i in batch]

    full = drawn()
    assert len(full) == 48
    assert np.bincount(trainer.data.train.labels[full], minlength=3).min() >= 8  # rare class c drawn often
    trainer.step_in_epoch = 2
    assert drawn() == full[16:]
    trainer.step_in_epoch = 0
    (tmp_path / "run").mkdir()
    summary = trainer.fit()
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["epochs"] == 1 and "val_recall_c" in history[0] and "val_macro_f1" in history[0]


def test_trainer_rejects_unknown_sampler(tmp_path: Path) -> None:
    cfg = _tiny_config(tmp_path).model_copy(update={"sampler": "oversample"})  # past config validation
    trainer = Trainer(cfg, tmp_path / "run", data=_tiny_data())
    with pytest.raises(AffectlensError, match="unknown sampler 'oversample'.*balanced, shuffle"):
        trainer._loader()
