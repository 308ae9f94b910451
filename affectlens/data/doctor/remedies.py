"""What to do about each topic the warnings raise, in the commands and options affectlens offers.

Kept apart from the findings: a finding states a fact about this dataset, a remedy is advice that
holds for every dataset with that problem, so the same remedy is listed once however many
warnings share its topic.
"""

from __future__ import annotations

from typing import Any

REMEDIES = {
    "imbalance": (
        "Imbalanced classes",
        "Pick the best checkpoint by macro-F1 (`--set select_metric=val_macro_f1`) and try a remedy: class "
        "weights (`--set loss.class_weights=effective` or `inverse`), a class-balanced sampler "
        "(`--set sampler=balanced`), focal loss (`--set loss.name=focal`) or logit adjustment "
        "(`--set loss.name=logit_adjusted`).",
    ),
    "leakage": (
        "Same subject or video on both sides",
        "Re-split so that no subject/video is in two splits: `affectlens split DATASET --method "
        "stratified_grouped --group-by video -o split.csv` (or `--group-by subject`), then train on the "
        "manifest it writes.",
    ),
    "groups": (
        "Classes backed by few subjects or videos",
        "Evaluate on a grouped split (see above) to see the honest score; collect more "
        "subjects/videos for those classes, or cap how many frames one video contributes.",
    ),
    "duplicates": (
        "Duplicate images",
        "Remove the copies listed in duplicates.csv, at least those of evaluation images that also occur in "
        "training, before reporting validation or test scores.",
    ),
    "labels": (
        "Label problems",
        "Check the groups of identical images with different labels (duplicates.csv, `labels_differ`) and fix "
        "or drop them.",
    ),
    "split_shift": (
        "Splits with different class mixes",
        "Compare per-class recall and macro-F1 rather than accuracy across splits, or re-split with "
        "`affectlens split --method stratified`.",
    ),
    "images": (
        "Unusable images",
        "Drop the blank, unreadable or tiny images listed in the report.",
    ),
}


def build_remedies(result: dict[str, Any]) -> list[dict[str, str]]:
    """The remedies for the topics the warnings raised (high and medium only), in warning order."""
    topics: list[str] = []
    for w in result["warnings"]:
        if w["severity"] != "info" and w["topic"] not in topics:
            topics.append(w["topic"])
    return [{"topic": t, "title": REMEDIES[t][0], "advice": REMEDIES[t][1]} for t in topics if t in REMEDIES]
