"""Prior correction: answer as if every emotion were equally common, not as common as in training.

A classifier trained on imbalanced data learns the training frequencies along with the faces:
FER2013 Training has 16.5 times more Happy than Disgust faces (and 9 times more Angry), so a face
that looks as much disgusted as angry is called Angry. On faces from elsewhere, where disgust is
not rare (CK+: 19% of the faces; a user's own footage), that prior is wrong. Post-hoc logit
adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021) removes it without
retraining: ``p'(c) ∝ p(c) / prior(c) ** s``, with ``s`` = 1 answering as if classes were balanced
and ``s`` = 0 leaving the model as trained.

It trades accuracy on data distributed like the training set for recall of rare classes (measured
for the shipped models in BENCHMARKS.md), so it is off by default. The prior comes from the model
card's ``class_prior``: training writes the prior its probabilities carry (the class frequencies, as
a balanced sampler, class weights or logit adjustment reshaped them; label smoothing, which flattens
the probabilities a little, is not accounted for).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.runtime.card import ModelCard, has_valence_arousal, read_card
from affectlens.runtime.classifiers import AdjustedClassifier, Classifier
from affectlens.runtime.ensemble_card import is_ensemble_card, load_ensemble

#: strengths beyond 1 over-correct (rare classes then win ties they should lose); refused
MAX_STRENGTH = 1.0


def prior_weights(card: ModelCard, strength: float, source: str = "model") -> np.ndarray | None:
    """Per-class factors ``prior ** -strength`` (None for strength 0), checked against the card.

    A class absent from training (prior 0) would get an infinite factor; its prior is floored at
    half the smallest non-zero one, so it can be answered without dominating.
    """
    strength = float(strength)
    if not 0.0 <= strength <= MAX_STRENGTH:
        raise AffectlensError(f"prior correction must be in [0, {MAX_STRENGTH:g}], got {strength:g}")
    if strength == 0.0:
        return None
    if not card.class_names:
        raise AffectlensError(f"{source}: prior correction applies to models with classes; this one predicts only "
                              "valence and arousal")
    prior = np.asarray(card.class_prior, dtype=np.float64)
    if prior.size == 0:
        raise AffectlensError(
            f"{source}: its card holds no class_prior (the training class frequencies), so prior correction "
            "cannot be applied; cards written by training from this release on have one (retrain, or add the "
            "training class frequencies to the card as class_prior)")
    if prior.shape != (card.num_classes,) or (prior < 0).any() or prior.sum() <= 0:
        raise AffectlensError(
            f"{source}: class_prior in its card must hold {card.num_classes} non-negative fractions, "
            f"got {card.class_prior}")
    prior = prior / prior.sum()
    prior = np.maximum(prior, prior[prior > 0].min() / 2)
    return prior ** -strength


def model_prior_weights(weights: str | Path, strength: float) -> np.ndarray | None:
    """:func:`prior_weights` for a model file or ensemble card, read from its card alone (cheap: a
    command checks the option before it reads any data). ``evaluate`` scores valence/arousal models
    video by video, where no correction applies, so they are refused here."""
    card = load_ensemble(weights).card if is_ensemble_card(weights) else read_card(weights)
    if strength and has_valence_arousal(card):
        raise AffectlensError(f"{weights}: --prior-correction does not apply to valence/arousal models (they are "
                              "scored video by video)")
    return prior_weights(card, strength, str(weights))


def correct_probabilities(probs: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``probs * weights`` renormalised per row (float32); unchanged when ``weights`` is None."""
    if weights is None:
        return probs
    scaled = np.asarray(probs, dtype=np.float64) * weights
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


class PriorCorrectedClassifier(AdjustedClassifier):
    """Any classifier (network or ensemble) with its class probabilities prior-corrected.

    Valence and arousal, when the model predicts them, pass through unchanged.
    """

    def __init__(self, inner: Classifier, strength: float) -> None:
        super().__init__(inner)
        weights = prior_weights(inner.card, strength, str(inner.source))
        if weights is None:
            raise AffectlensError("PriorCorrectedClassifier needs a strength above 0 (0 means no correction)")
        self.strength = float(strength)
        self.weights = weights

    def __repr__(self) -> str:
        return f"{self.inner!r} with prior correction {self.strength:g}"

    def adjust(self, probs: np.ndarray) -> np.ndarray:
        return correct_probabilities(probs, self.weights)
