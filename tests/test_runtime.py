"""The prediction runtime works with PyTorch absent, and a model is resolved once into one object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from affectlens.errors import AffectlensError
from affectlens.runtime.factory import create_classifier
from affectlens.runtime.resolve import ResolvedModel, resolve

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"

NO_TORCH = """
import json, sys
sys.modules["torch"] = None  # any import of torch now fails
from affectlens.inference.recognizer import Recognizer
from affectlens.runtime.factory import create_classifier
recognizer = Recognizer(model=sys.argv[2])
result = recognizer.predict(sys.argv[1])
try:
    create_classifier("default", backend="torch")
    torch_error = ""
except Exception as exc:
    torch_error = f"{type(exc).__name__}: {exc}"
loaded = sorted({m.split(".")[1] for m in sys.modules if m.startswith("affectlens.")})
print(json.dumps({"faces": [f.label for f in result.faces], "loaded": loaded, "torch_error": torch_error}))
"""


@pytest.mark.parametrize("model", ["default", "ensemble"])
def test_a_photo_is_predicted_with_torch_blocked(model: str) -> None:
    out = subprocess.run([sys.executable, "-c", NO_TORCH, str(MEDIA / "multi_face.jpg"), model],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(answer["faces"]) >= 4
    assert "models" not in answer["loaded"] and "training" not in answer["loaded"], answer["loaded"]
    # asking for the torch backend without torch is one clear error, not an ImportError traceback
    assert answer["torch_error"].startswith("AffectlensError: the torch backend needs PyTorch")


def test_a_shipped_ensemble_resolves_once_into_members_weights_and_mirrors() -> None:
    model = resolve("ensemble")
    assert model.is_ensemble and model.shipped_name == "ensemble.fer2013"
    assert len(model.members) == len(model.member_weights) == len(model.member_mirrors) >= 2
    assert sum(model.member_weights) == pytest.approx(1.0)
    assert all(isinstance(m, ResolvedModel) and not m.is_ensemble and m.path.suffix == ".safetensors"
               for m in model.members)
    assert all(m.shipped_name for m in model.members)
    assert set(model.sha256) == {"card"}  # an ensemble ships a card only; members carry their own
    assert resolve(model) is model  # resolving a resolved model is free


def test_a_resolved_model_builds_the_same_classifier_as_its_name(tmp_path: Path) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1), dtype=np.uint8)
    by_name = create_classifier("fast").predict(faces)
    model = resolve("fast")
    assert model.temperature == model.card.temperature
    np.testing.assert_array_equal(create_classifier(model).predict(faces), by_name)
    with pytest.raises(AffectlensError, match="neither a shipped model"):
        resolve(tmp_path / "missing.safetensors")
