"""FER2013 + FER+ mixed targets (data kind ``fer2013_ferplus``): the arithmetic, and the real rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectlens.data.fer2013 import FER2013_CLASSES
from affectlens.data.ferplus import FERPLUS_CLASSES, mixed_fer2013_targets
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError


def votes_for(**counts: int) -> np.ndarray:
    """One row of FER+ votes (8 emotions, unknown, NF) from counts by class name (Happy=7, ...)."""
    row = np.zeros(10, np.int64)
    for name, count in counts.items():
        row[FERPLUS_CLASSES.index(name) if name in FERPLUS_CLASSES else 8 + ["unknown", "NF"].index(name)] = count
    return row


def test_the_mix_puts_each_weight_where_it_belongs() -> None:
    happy, sad, neutral = (FER2013_CLASSES.index(c) for c in ("Happy", "Sad", "Neutral"))
    votes = np.stack([votes_for(Happy=6, Neutral=2, Contempt=2),  # contempt is not a FER2013 class
                      votes_for(unknown=10)])                      # no emotion vote at all
    labels = np.array([sad, neutral])
    mixed = mixed_fer2013_targets(labels, votes, 0.5)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    assert mixed[0, sad] == pytest.approx(0.5)
    assert mixed[0, happy] == pytest.approx(0.5 * 6 / 8) and mixed[0, neutral] == pytest.approx(0.5 * 2 / 8)
    assert mixed[1, neutral] == pytest.approx(1.0)  # nothing from the crowd: the FER2013 label alone
    np.testing.assert_allclose(mixed_fer2013_targets(labels, votes, 0.0), np.eye(7)[labels])
    with pytest.raises(AffectlensError, match="ferplus_weight"):
        mixed_fer2013_targets(labels, votes, 1.5)


def test_the_real_rows_keep_fer2013_labels_and_splits(data_dir: Path) -> None:
    mixed = load_dataset("fer2013_ferplus", data_dir / "ferplus", ferplus_weight=0.5)
    fer = load_dataset("fer2013", data_dir / "fer2013")
    assert mixed.class_names == fer.class_names == FER2013_CLASSES
    # every FER2013 row with a FER+ image, in each split: only the 173 rows FER+ made no image for are left out
    missing = [len(fer.select_splits(s)) - len(mixed.select_splits(s)) for s in ("Training", "PublicTest",
                                                                                 "PrivateTest")]
    assert all(n >= 0 for n in missing) and sum(missing) == len(fer) - len(mixed) == 173
    assert mixed.soft_labels is not None and mixed.soft_labels.shape == (len(mixed), 7)
    np.testing.assert_allclose(mixed.soft_labels.sum(axis=1), 1.0, rtol=1e-5)
    # the FER2013 label keeps at least half of each target's mass
    assert (mixed.soft_labels[np.arange(len(mixed)), mixed.labels] >= 0.5 - 1e-6).all()
