"""Loading the dataset a config describes, at the size and channels a model needs (affectlens.data.conform),
and the loader-option lookup every caller shares (affectlens.data.registry.loader_options)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from affectlens.data.conform import conform, load_configured
from affectlens.data.registry import loader_accepts, loader_options
from affectlens.errors import AffectlensError
from affectlens.training.config import DataConfig


def test_loader_options_come_from_the_loader_signature() -> None:
    assert loader_options("folder") == ("image_size", "channels", "class_names", "in_memory")
    assert loader_options("fer2013") == ()
    assert loader_accepts("folder", "image_size") and not loader_accepts("fer2013", "image_size")
    assert not loader_accepts("auto", "image_size")  # the kind is known only after guessing
    with pytest.raises(AffectlensError, match="unknown dataset kind 'fer2014'.*fer2013"):
        loader_options("fer2014")


def test_conform_resizes_and_converts(data_dir: Path) -> None:
    ck = load_configured(SimpleNamespace(kind="ckplus", path=str(data_dir / "ckplus48"), image_size=48, channels=1,
                                         options={}))
    rows = ck.subset(np.arange(0, len(ck), 50))
    rgb = conform(rows, 40, 3)
    assert rgb.images.shape == (len(rows), 40, 40, 3) and rgb.image_size == (40, 40) and rgb.channels == 3
    assert np.array_equal(rgb.images[..., 0], rgb.images[..., 2])  # grey to RGB: equal channels
    assert conform(rows, 48, 1) is rows  # already the right shape: nothing copied


def test_training_config_loads_at_its_size(data_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    """The training DataConfig is a valid spec; a loader that resizes gets the size, others are conformed."""
    cfg = DataConfig(kind="ckplus", path=str(data_dir / "ckplus48"), image_size=32, channels=3)
    ck = load_configured(cfg)
    assert ck.images.shape == (981, 32, 32, 3)
    for cls, photo in (("happy", "single_face.jpg"), ("sad", "multi_face.jpg")):
        (tmp_path / "faces" / cls).mkdir(parents=True)
        (tmp_path / "faces" / cls / photo).symlink_to(media_dir / photo)
    # read lazily, so conform() leaves it alone: the size can only come from the loader itself
    folder = load_configured(DataConfig(kind="folder", path=str(tmp_path / "faces"), image_size=24, channels=1,
                                        options={"in_memory": False}))
    assert folder.images is None and folder.batch(np.arange(2)).shape == (2, 24, 24, 1)
    with pytest.raises(AffectlensError, match="does not take option"):
        load_configured(DataConfig(kind="ckplus", path=str(data_dir / "ckplus48"), options={"image_sise": 40}))
