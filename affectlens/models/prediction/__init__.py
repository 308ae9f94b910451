"""The torch half of the one prediction path (the torch-free half is :mod:`affectlens.runtime`).

1. :func:`affectlens.runtime.steps.preprocess` (NumPy): centre crop or ten crop views to the
   card's ``input_size``, /255, the card's normalisation -> float32 NCHW. Every runner gets exactly
   this input.
2. :class:`~.head.ProbabilityHead` (torch): model logits -> softmax over the K class logits, plus
   the raw valence/arousal outputs after them. The ONNX export traces this very module
   (:mod:`affectlens.models.onnx_export`), so the ONNX graph *is* the head.
3. :func:`affectlens.runtime.steps.average_views`: the mean over ten-crop views.

Torch inference, evaluation and training validation (:func:`~.head.predict_probabilities`), the
torch backend of the predictor (:mod:`.torch_backend`, which the runtime finds by name) and the
export check all take these steps, so a model scores the same everywhere.
"""

from __future__ import annotations

from affectlens.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "ProbabilityHead": ".head",
        "predict_probabilities": ".head",
        "torch_forward": ".head",
        "TorchClassifier": ".torch_backend",
    },
)
