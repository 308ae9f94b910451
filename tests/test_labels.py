"""One class vocabulary: datasets and model cards answer FER2013's names, in their own order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affectlens.data.dataset import EmotionDataset
from affectlens.data.labels import CANONICAL_CLASSES, canonical_class_names
from affectlens.data.registry import load_dataset
from affectlens.errors import AffectlensError
from affectlens.evaluation.runner import align_classes
from affectlens.runtime.card import ModelCard, read_card

FERPLUS_NAMES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
CKPLUS_NAMES = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]


def test_dataset_spellings_map_onto_fer2013_names_in_their_own_order() -> None:
    assert canonical_class_names(FERPLUS_NAMES) == ["Neutral", "Happy", "Surprise", "Sad", "Angry", "Disgust",
                                                    "Fear", "Contempt"]
    assert canonical_class_names(CKPLUS_NAMES) == ["Angry", "Contempt", "Disgust", "Fear", "Happy", "Sad", "Surprise"]
    assert canonical_class_names(CANONICAL_CLASSES) == CANONICAL_CLASSES
    assert canonical_class_names(["Surprised", " FEARFUL", "Other"]) == ["Surprise", "Fear", "Other"]
    assert canonical_class_names(["negative", "positive"]) == ["negative", "positive"]
    # two classes that would become one are left alone rather than silently merged
    assert canonical_class_names(["happy", "happiness", "sad"]) == ["happy", "happiness", "sad"]


def test_canonical_names_still_match_datasets_that_keep_their_spelling() -> None:
    """evaluate_weights maps a dataset onto a model by name; a card read as ``Happy`` must still match ``happiness``."""
    for raw in (FERPLUS_NAMES, CKPLUS_NAMES, ["angry", "disgusted", "fearful", "happy", "sad", "surprised"]):
        dataset = EmotionDataset(name="raw", class_names=list(raw), labels=np.arange(len(raw)),
                                 images=np.zeros((len(raw), 48, 48, 1), np.uint8))
        mapped = align_classes(dataset, canonical_class_names(raw))
        assert mapped.labels.tolist() == list(range(len(raw))) and not mapped.meta.get("dropped_classes")


def test_loaders_answer_the_vocabulary(data_dir: Path) -> None:
    ck = load_dataset("ckplus", data_dir / "ckplus48")
    assert ck.class_names == canonical_class_names(CKPLUS_NAMES)
    assert ck.class_counts()[ck.class_names.index("Contempt")] == 54


def test_a_card_is_read_in_the_vocabulary(tmp_path: Path) -> None:
    card = ModelCard("fast_cnn", FERPLUS_NAMES, in_channels=1, image_size=48, input_size=40,
                     normalization={"mode": "unit", "mean": [0.0], "std": [1.0]})
    path = tmp_path / "m.json"
    path.write_text(json.dumps(card.to_dict()))
    assert read_card(path).class_names == canonical_class_names(FERPLUS_NAMES)


def test_a_card_without_its_input_facts_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"architecture": "fast_cnn", "class_names": ["a", "b"], "input_size": 40}))
    with pytest.raises(AffectlensError, match=r"m\.json: not a valid model card \(missing in_channels, image_size"):
        read_card(path)
