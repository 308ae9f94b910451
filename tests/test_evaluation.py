"""Evaluation metrics checked against values worked out by hand (not by calling scikit-learn)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from affectlens.errors import AffectlensError
from affectlens.evaluation import (
    ccc,
    classification_metrics,
    format_metrics_line,
    plot_class_distribution,
    plot_confusion_matrix,
    plot_roc,
    plot_training_curves,
    quick_metrics,
    regression_metrics,
    write_evaluation_report,
)

NAMES = ["angry", "happy", "sad"]
# 3 classes, 10 samples. Confusion matrix by hand (rows = true):
#   true 0: predicted 0,0,1,2 -> [2, 1, 1]
#   true 1: predicted 1,1,0   -> [1, 2, 0]
#   true 2: predicted 2,2,1   -> [0, 1, 2]
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 1])


def _one_hot_probs(pred: np.ndarray, k: int, hi: float = 0.8) -> np.ndarray:
    """Rows with ``hi`` on the predicted class and the rest spread evenly (0.1 each for k=3)."""
    p = np.full((pred.size, k), (1.0 - hi) / (k - 1))
    p[np.arange(pred.size), pred] = hi
    return p


PROBS = _one_hot_probs(Y_PRED, 3)


def test_classification_metrics_hand_computed() -> None:
    m = classification_metrics(Y_TRUE, PROBS, NAMES)
    assert m["n"] == 10
    assert m["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert np.allclose(
        m["confusion_matrix_normalized"], [[0.5, 0.25, 0.25], [1 / 3, 2 / 3, 0], [0, 1 / 3, 2 / 3]]
    )
    assert m["accuracy"] == pytest.approx(0.6)
    # precision = column diag / column sum: 2/3, 2/4, 2/3; recall = 2/4, 2/3, 2/3
    expected = [
        ("angry", 2 / 3, 1 / 2, 4 / 7, 4),
        ("happy", 1 / 2, 2 / 3, 4 / 7, 3),
        ("sad", 2 / 3, 2 / 3, 2 / 3, 3),
    ]
    for row, (name, p, r, f1, s) in zip(m["per_class"], expected, strict=True):
        assert row["class"] == name
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == s
    assert m["macro_f1"] == pytest.approx(38 / 63)  # (4/7 + 4/7 + 2/3) / 3
    assert m["weighted_f1"] == pytest.approx(0.6)  # (4*4/7 + 3*4/7 + 3*2/3) / 10
    assert m["balanced_accuracy"] == pytest.approx(11 / 18)  # (1/2 + 2/3 + 2/3) / 3
    # 6 right at p=0.8, 4 wrong at p=0.1
    assert m["log_loss"] == pytest.approx(-(0.6 * math.log(0.8) + 0.4 * math.log(0.1)))
    assert m["absent_classes"] == []
    json.dumps(m)  # JSON-ready


def test_majority_baseline() -> None:
    base = classification_metrics(Y_TRUE, PROBS, NAMES)["majority_baseline"]
    assert base["class"] == "angry"
    assert base["accuracy"] == pytest.approx(0.4)
    # always "angry": P=0.4, R=1 -> F1 = 0.8/1.4 = 4/7; other classes F1 = 0
    assert base["macro_f1"] == pytest.approx(4 / 21)
    assert base["balanced_accuracy"] == pytest.approx(1 / 3)


def test_multiclass_ovr_auc_hand_computed() -> None:
    # Scores take only 0.8 / 0.1; count (pos > neg) + 0.5 * ties over all pos-neg pairs.
    # angry: 4 pos [.8,.8,.1,.1] vs 6 neg [.1,.1,.8,.1,.1,.1] -> (2*5.5 + 2*2.5)/24 = 16/24
    # happy: 3 pos [.8,.8,.1] vs 7 neg (2 at .8) -> (2*6 + 2.5)/21 = 14.5/21
    # sad:   3 pos [.8,.8,.1] vs 7 neg (1 at .8) -> (2*6.5 + 3)/21 = 16/21
    auc = classification_metrics(Y_TRUE, PROBS, NAMES)["roc_auc"]
    assert auc["kind"] == "ovr_macro"
    assert auc["per_class"]["angry"] == pytest.approx(2 / 3)
    assert auc["per_class"]["happy"] == pytest.approx(29 / 42)
    assert auc["per_class"]["sad"] == pytest.approx(16 / 21)
    assert auc["average"] == pytest.approx(89 / 126)
    assert auc["skipped"] == []


def test_binary_auc_counts_misordered_pairs() -> None:
    pos = [0.9, 0.6, 0.35]
    neg = [0.8, 0.5, 0.3, 0.1]
    # mis-ordered (neg above pos): 0.6<0.8; 0.35<0.8, 0.35<0.5 -> k = 3 of P*N = 12
    scores = np.array(pos + neg)
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    probs = np.stack([1 - scores, scores], axis=1)
    m = classification_metrics(y, probs, ["negative", "positive"])
    assert m["roc_auc"]["kind"] == "binary"
    assert m["roc_auc"]["average"] == pytest.approx(1 - 3 / 12)
    # predictions at 0.5 threshold: pos 0.9, 0.6 right, 0.35 wrong; neg 0.8 wrong, 0.5 -> argmax tie -> 0
    assert m["accuracy"] == pytest.approx(5 / 7)


def test_absent_class_does_not_crash() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])  # class 2 predicted but never true
    m = classification_metrics(y, _one_hot_probs(pred, 3), NAMES)
    assert m["confusion_matrix"][2] == [0, 0, 0]
    assert m["confusion_matrix_normalized"][2] == [0.0, 0.0, 0.0]
    assert not any(math.isnan(v) for row in m["confusion_matrix_normalized"] for v in row)
    assert m["per_class"][2]["support"] == 0
    assert m["absent_classes"] == ["sad"]
    assert m["roc_auc"]["skipped"] == ["sad"]
    assert set(m["roc_auc"]["per_class"]) == {"angry", "happy"}
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)


def test_binary_auc_with_one_class_is_none() -> None:
    m = classification_metrics(
        np.array([0, 0, 0]), np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]]), ["a", "b"]
    )
    assert m["roc_auc"]["average"] is None
    assert m["roc_auc"]["skipped"] == ["b"]


def test_macro_f1_ignores_class_neither_present_nor_predicted() -> None:
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    # angry: P=1, R=1/2, F1=2/3; happy: P=2/3, R=1, F1=4/5; sad: unseen -> left out
    expected = (2 / 3 + 4 / 5) / 2
    assert classification_metrics(y, _one_hot_probs(pred, 3), NAMES)["macro_f1"] == pytest.approx(expected)
    q = quick_metrics(y, pred, 3)
    assert q["macro_f1"] == pytest.approx(expected)
    assert q["accuracy"] == pytest.approx(0.75)
    assert q["per_class_recall"] == pytest.approx([0.5, 1.0, 0.0])


def test_quick_metrics_matches_full_metrics() -> None:
    q = quick_metrics(Y_TRUE, Y_PRED, 3)
    assert q["accuracy"] == pytest.approx(0.6)
    assert q["macro_f1"] == pytest.approx(38 / 63)
    assert q["per_class_recall"] == pytest.approx([1 / 2, 2 / 3, 2 / 3])


@pytest.mark.parametrize(
    ("y", "probs", "names"),
    [
        (np.array([0, 3]), np.full((2, 3), 1 / 3), NAMES),  # label out of range
        (np.array([0, 1]), np.full((2, 2), 0.5), NAMES),  # probs width != class count
        (np.array([0, 1, 2]), np.full((2, 3), 1 / 3), NAMES),  # length mismatch
        (np.array([0, 1]), np.array([[2.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), NAMES),  # logits
        (np.array([], dtype=int), np.zeros((0, 3)), NAMES),  # empty
    ],
)
def test_bad_inputs_raise_user_error(y: np.ndarray, probs: np.ndarray, names: list[str]) -> None:
    with pytest.raises(AffectlensError):
        classification_metrics(y, probs, names)


def test_ccc_hand_computed() -> None:
    t = np.array([1.0, 2.0, 3.0])
    assert ccc(t, t) == pytest.approx(1.0)
    # shift by +1: var_t = var_p = cov = 2/3, mean diff 1 -> 2*(2/3) / (2/3 + 2/3 + 1) = 4/7
    assert ccc(t, t + 1) == pytest.approx(4 / 7)
    # mirrored about the shared mean: cov = -2/3, equal means -> -1
    assert ccc(t, np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # NaN pairs ignored
    assert ccc(np.array([1.0, np.nan, 2.0, 3.0]), np.array([2.0, 5.0, 3.0, 4.0])) == pytest.approx(4 / 7)


def test_regression_metrics_with_nan_targets() -> None:
    true = np.array([[1.0, 0.0], [2.0, np.nan], [3.0, 1.0], [np.nan, 2.0]])
    pred = np.array([[2.0, 0.0], [3.0, 9.0], [4.0, 1.0], [0.0, 2.0]])
    r = regression_metrics(true, pred)
    v, a = r["dimensions"]["valence"], r["dimensions"]["arousal"]
    assert r["n"] == 4
    assert v["n"] == 3 and a["n"] == 3
    assert v["ccc"] == pytest.approx(4 / 7)
    assert v["pearson_r"] == pytest.approx(1.0)
    assert v["rmse"] == pytest.approx(1.0) and v["mae"] == pytest.approx(1.0)
    assert a["ccc"] == pytest.approx(1.0) and a["rmse"] == pytest.approx(0.0)
    assert r["mean_ccc"] == pytest.approx((4 / 7 + 1.0) / 2)
    json.dumps(r)


def _png_ok(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_evaluation_report(tmp_path: Path) -> None:
    m = classification_metrics(Y_TRUE, PROBS, NAMES)
    paths = write_evaluation_report(
        m, tmp_path / "eval", "Test model", Y_TRUE, PROBS, NAMES, extra={"model": "tiny-cnn", "split": "test"}
    )
    assert set(paths) == {
        "metrics_json",
        "report_md",
        "confusion_matrix_png",
        "confusion_matrix_normalized_png",
        "roc_png",
        "reliability_png",
    }
    for key in ("confusion_matrix_png", "confusion_matrix_normalized_png", "roc_png", "reliability_png"):
        assert _png_ok(paths[key])
    saved = json.loads(paths["metrics_json"].read_text())
    assert saved["confusion_matrix"] == m["confusion_matrix"] and saved["info"]["model"] == "tiny-cnn"
    md = paths["report_md"].read_text()
    assert md.startswith("# Test model")
    assert f"| Expected calibration error, 15 bins (lower is better) | {m['ece']:.3f} |" in md
    assert "| Class | Precision | Recall | F1 | Support | ROC AUC |" in md
    assert "| angry | 0.667 | 0.500 | 0.571 | 4 |" in md
    assert "| angry | 2 | 1 | 1 | 4 |" in md  # confusion-matrix row with total
    assert "tiny-cnn" in md and "Majority baseline (always 'angry')" in md
    assert "(confusion_matrix.png)" in md and "(roc.png)" in md
    # reading names the largest confusion, from the matrix (ties broken by rate: happy->angry is 1/3)
    assert "true 'happy' predicted as 'angry'" in md


def test_format_metrics_line() -> None:
    line = format_metrics_line(classification_metrics(Y_TRUE, PROBS, NAMES))
    assert line.startswith("n=10 acc=0.600 (majority 0.400) macro-F1=0.603")
    assert "AUC=0.706" in line
    assert format_metrics_line(quick_metrics(Y_TRUE, Y_PRED, 3)) == "acc=0.600 macro-F1=0.603"


def test_plots_write_pngs(tmp_path: Path) -> None:
    cm = np.array([[2, 1, 1], [1, 2, 0], [0, 0, 0]])
    assert _png_ok(plot_confusion_matrix(cm, NAMES, tmp_path / "cm.png", normalized=True, title="cm"))
    assert _png_ok(plot_roc(Y_TRUE, PROBS, NAMES, tmp_path / "roc3.png"))
    y2 = np.array([1, 1, 0, 0, 1])
    s = np.array([0.9, 0.4, 0.3, 0.6, 0.8])
    assert _png_ok(plot_roc(y2, np.stack([1 - s, s], 1), ["neg", "pos"], tmp_path / "roc2.png"))
    history = [
        {
            "epoch": 1,
            "train_loss": 1.2,
            "val_loss": 1.1,
            "train_accuracy": 0.4,
            "val_accuracy": 0.45,
            "lr": 1e-3,
        },
        {"epoch": 2, "train_loss": 0.9, "val_loss": 1.0, "val_macro_f1": 0.5, "lr": 5e-4},
    ]
    assert _png_ok(plot_training_curves(history, tmp_path / "sub" / "curves.png"))
    assert _png_ok(plot_training_curves([{"epoch": 1, "train_loss": 1.0}], tmp_path / "loss_only.png"))
    with pytest.raises(AffectlensError):
        plot_training_curves([], tmp_path / "empty.png")
    counts = {"train": [10, 30, 5], "test": [3, 8, 1]}
    assert _png_ok(plot_class_distribution(counts, NAMES, tmp_path / "dist.png"))


# ------------------------------------------------------------------------------------ evaluate_weights
def test_evaluate_weights_conforms_another_dataset(tmp_path: Path, data_dir: Path) -> None:
    """A colour 40x40 FER2013-class model evaluated on grey 48x48 CK+ faces: the faces are conformed to
    the card (resized, converted to RGB), CK+ contempt is dropped, and the saved probabilities are
    the ones the ONNX Runtime predictor gives for the same conformed faces."""
    import torch

    from affectlens.data.conform import conform
    from affectlens.data.registry import load_dataset
    from affectlens.evaluation.runner import align_classes, evaluate_weights
    from affectlens.models import create_model
    from affectlens.models.weights import ModelCard, save_weights
    from affectlens.runtime.classifiers import OnnxClassifier

    fer_classes = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    torch.manual_seed(0)
    model = create_model("fast_cnn", len(fer_classes), in_channels=3, width=8, fc_dim=32)
    card = ModelCard(architecture="fast_cnn", class_names=fer_classes, in_channels=3, image_size=40, input_size=36,
                     normalization={"mode": "symmetric", "mean": [0.5] * 3, "std": [0.5] * 3},
                     model_options={"width": 8, "fc_dim": 32})
    weights = save_weights(model.eval(), card, tmp_path / "rgb40.safetensors")
    ck = load_dataset("ckplus", data_dir / "ckplus48")
    rows = ck.subset(np.arange(0, len(ck), 7))  # 141 faces of every class, contempt included
    metrics = evaluate_weights(weights, rows, tmp_path / "eval", ten_crop=True)

    info = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    contempt = int(np.sum(np.asarray(rows.class_names)[rows.labels] == "Contempt"))
    assert contempt > 0 and info["dropped_classes"] == ["Contempt"]
    assert info["samples"] == metrics["n"] == len(rows) - contempt and info["ten_crop"] is True
    conformed = conform(align_classes(rows, fer_classes), 40, 3)
    assert conformed.images.shape == (len(rows) - contempt, 40, 40, 3)
    expected = OnnxClassifier.from_path(weights, ten_crop=True, num_threads=1).predict(conformed.images)
    saved = np.load(tmp_path / "eval" / "probabilities.npy")
    np.testing.assert_allclose(saved, expected, rtol=0, atol=1e-5)
    assert metrics["accuracy"] == pytest.approx(float(np.mean(expected.argmax(1) == conformed.labels)))
