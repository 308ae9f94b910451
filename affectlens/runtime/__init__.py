"""Everything prediction needs, and nothing of PyTorch: the prediction runtime.

A model is resolved here (:mod:`.pretrained`: shipped names, run folders and files; :mod:`.card`
and :mod:`.ensemble_card`: what a model is and how ensembles combine), its input prepared
(:mod:`.steps`), and it runs on ONNX Runtime (:mod:`.classifiers`, :mod:`.sequence`), with the
post-hoc steps that change its probabilities (:mod:`.calibration`, :mod:`.prior`);
:mod:`.factory` builds the classifier a model needs. This package imports neither torch nor
:mod:`affectlens.models` (the torch world): the torch backend is found by name
(:mod:`.torch_bridge`), and ``tests/test_runtime.py`` predicts with ``sys.modules["torch"] = None``.
"""
