"""One vocabulary of emotion class names for every model and dataset.

Datasets spell the same emotion differently (FER2013 ``Happy``, FER+ ``happiness``, CK+ ``happy``,
Aff-Wild2 ``Happiness``). Users parse the labels a model answers, so switching models must not
change them: every name that means one of the basic emotions is mapped onto FER2013's capitalised
spelling when a dataset or a model card is loaded. Only names change, never the class order (the
weights of a classifier head depend on it). Names outside the vocabulary (``Other``, ``positive``)
are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

#: FER2013's seven classes in FER2013's order, then FER+/CK+ contempt: the names every model answers
CANONICAL_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral", "Contempt"]

#: lower-case spelling -> canonical name. Evaluation's by-name class matching
#: (``evaluation.runner.align_classes``) uses the same table, so a card read with canonical names
#: still matches a dataset that keeps its own spelling.
_SPELLINGS = {
    "angry": "Angry", "anger": "Angry",
    "disgust": "Disgust", "disgusted": "Disgust",
    "fear": "Fear", "fearful": "Fear",
    "happy": "Happy", "happiness": "Happy",
    "sad": "Sad", "sadness": "Sad",
    "surprise": "Surprise", "surprised": "Surprise",
    "neutral": "Neutral",
    "contempt": "Contempt",
}


def canonical_class_name(name: str) -> str:
    """The vocabulary's spelling of ``name``, or ``name`` itself when it is not a basic emotion."""
    return _SPELLINGS.get(name.strip().lower(), name)


def canonical_class_names(names: Iterable[str]) -> list[str]:
    """Map every name onto the vocabulary, keeping the order.

    When two names would become one (a dataset with both ``happy`` and ``happiness`` as separate
    classes) the names are returned unchanged: merging them would silently relabel a class.
    """
    names = [str(n) for n in names]
    mapped = [canonical_class_name(n) for n in names]
    return mapped if len(set(mapped)) == len(set(names)) else names
