"""Dataset doctor: the evidence behind "training accuracy 95%, validation 40%: why?".

:func:`inspect_dataset` looks at any :class:`~affectlens.data.dataset.EmotionDataset` and returns
one JSON-ready dict:

* class counts and shares per split, and how far each split's class mix is from the training
  split's (Jensen-Shannon divergence, with the classes that differ most);
* when subject or video ids are known, how many distinct people / videos stand behind each
  class, how much of a class the largest one supplies, and which ids sit in two splits (leakage);
* exact duplicates (identical pixels) and near duplicates (perceptual hash) within and across
  splits, with the pairs listed and label conflicts flagged;
* image statistics: file sizes and colour modes, near-blank images, very dark / bright ones;
* plain-language warnings, most serious first, and the remedies that address them.

The usual causes of a large train/validation gap are all visible here: a rare class backed by a
handful of videos (the model memorises those videos), the same person or video in both splits
(validation measures identity recognition), copies of validation images in training, and
validation class mixes that differ from training. :func:`write_inspection_report` turns the dict
into Markdown, JSON, CSV and PNG files.

One job per module, so that a new measure, a new finding or a new chart each touches one place:

* :mod:`.examine`: :func:`inspect_dataset`, which runs the steps below in order;
* :mod:`.scan`: the one pass over the pixels (the only step that decodes images);
* :mod:`.measures`: class distribution, split divergence, subjects/videos, image and
  valence/arousal statistics;
* :mod:`.duplicate_measures`: exact and near duplicates within and across splits (the search
  itself is :mod:`affectlens.data.duplicates`, which does not need the doctor);
* :mod:`.thresholds`: the numbers from which something is called blank, rare or imbalanced;
* :mod:`.findings`: the plain-language warnings, one rule per topic;
* :mod:`.remedies`: what to do about each topic the warnings raise;
* :mod:`.report` and :mod:`.plots`: report.md, report.json, duplicates.csv and the PNG charts.
"""

from affectlens.data.doctor.examine import inspect_dataset
from affectlens.data.doctor.measures import js_divergence
from affectlens.data.doctor.report import write_inspection_report

__all__ = ["inspect_dataset", "js_divergence", "write_inspection_report"]
