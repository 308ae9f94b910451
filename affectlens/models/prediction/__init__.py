"""The one prediction path: aligned uint8 face crops -> class probabilities (and valence/arousal).

1. :func:`~.steps.preprocess` (NumPy): centre crop or ten crop views to the card's ``input_size``,
   /255, the card's normalisation -> float32 NCHW. Every runner gets exactly this input.
2. :class:`~.head.ProbabilityHead` (torch): model logits -> softmax over the K class logits, plus
   the raw valence/arousal outputs after them. The ONNX export traces this very module
   (:mod:`affectlens.models.onnx_export`), so the ONNX graph *is* the head.
3. :func:`~.steps.average_views`: the mean over ten-crop views.

Torch inference, evaluation and training validation (:func:`~.head.predict_probabilities`), the
ONNX Runtime and torch classifiers of the predictor (:mod:`.backends`) and the export check all
take these steps, so a model scores the same everywhere. The names below load on first use
(PEP 562): importing this package, or the ONNX Runtime path through it, never imports torch.
"""

from __future__ import annotations

from affectlens.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "BACKENDS": ".backends",
        "Classifier": ".backends",
        "EnsembleClassifier": ".backends",
        "NetworkClassifier": ".backends",
        "OnnxClassifier": ".backends",
        "TorchClassifier": ".backends",
        "create_classifier": ".backends",
        "ProbabilityHead": ".head",
        "predict_probabilities": ".head",
        "torch_forward": ".head",
        "average_views": ".steps",
        "preprocess": ".steps",
        "run_batches": ".steps",
    },
)
