"""Knowledge distillation: a trained teacher (one model or an ensemble) guides a smaller student.

The student learns from the label loss mixed with the KL divergence between the teacher's and its
own temperature-softened probabilities (Hinton et al. 2015). The teacher sees the *same augmented
batch* as the student, so its targets follow every crop, flip and erasure (an on-the-fly teacher is
what makes distillation work with heavy augmentation; cached targets of un-augmented images do not).

Each teacher member applies its own card's normalisation to the shared [0, 1] batch, so a teacher
trained with another normalisation mode still sees the pixels it was trained on. Distillation uses
the training images only: the teacher is never shown the validation or test splits here.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from affectlens.data.preprocessing import Normalization
from affectlens.errors import AffectlensError


class Teacher(nn.Module):
    """One or more frozen models whose temperature-softened probabilities are averaged."""

    def __init__(self, members: list[nn.Module], normalizations: list[Normalization], class_names: list[str],
                 input_sizes: list[int] | None = None, member_weights: list[float] | None = None,
                 mirror: bool = False) -> None:
        super().__init__()
        if not members:
            raise AffectlensError("a teacher needs at least one model")
        self.members = nn.ModuleList(members)
        self.normalizations = normalizations
        self.input_sizes = input_sizes or [0] * len(members)
        weights = member_weights or [1.0] * len(members)
        self.member_weights = [float(w) / sum(weights) for w in weights]
        self.class_names = list(class_names)
        #: each member answers for the batch and its left-right mirror image, the two averaged
        self.mirror = bool(mirror)
        for param in self.parameters():
            param.requires_grad_(False)
        self.eval()

    @classmethod
    def from_specs(cls, specs: list[str], device: torch.device | str = "cpu", mirror: bool = False) -> Teacher:
        """Load teachers given as shipped names, run folders, weights files or ensemble cards; all must share classes.

        An ensemble card contributes its members with its weights (each member keeps its own input),
        so the teacher averages the members' softened probabilities, not a softened average. A card's
        ``mirror`` is not applied by itself: the training batch is already randomly mirrored and an
        unmirrored teacher follows the view the student sees. ``mirror`` (``distill.mirror``) makes
        every member also answer for the mirrored batch: a stronger, flip-invariant target at twice
        the teacher's cost (the shipped ensemble gains 1.4 points on PrivateTest from it).
        """
        from affectlens.models.weights import load_weights
        from affectlens.runtime.pretrained import resolve_model

        members, norms, sizes, weights, names = [], [], [], [], None
        for spec, weight in _expand_ensembles(specs):
            path = resolve_model(spec)
            if Path(path).suffix == ".onnx":
                raise AffectlensError(f"{path}: a teacher needs .safetensors weights (torch), not ONNX")
            model, card = load_weights(path, device=device)
            if names is not None and list(card.class_names) != names:
                raise AffectlensError(f"{path}: teacher classes {card.class_names} differ from {names}")
            names = list(card.class_names)
            members.append(model)
            norms.append(Normalization.from_dict(card.normalization))
            sizes.append(int(card.input_size))
            weights.append(weight)
        return cls(members, norms, names or [], sizes, weights, mirror=mirror)

    def train(self, mode: bool = True) -> Teacher:
        """A teacher stays in eval mode (no dropout, frozen batch-norm statistics) whatever the student does."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Mean of the members' ``softmax(logits / T)`` for a float batch in [0, 1] ``(B, C, H, W)``
        (with :attr:`mirror`, each member's mean over the batch and its mirror image, in one forward)."""
        batch = images.shape[0]
        if self.mirror:
            images = torch.cat([images, images.flip(-1)])
        probs = None
        for member, norm, size, weight in zip(self.members, self.normalizations, self.input_sizes,
                                              self.member_weights, strict=True):
            view = images
            if size and images.shape[-1] != size:  # a teacher trained on another crop size sees the same view, resized
                view = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
            p = torch.softmax(member(norm(view)).float() / temperature, dim=1)
            if self.mirror:
                p = 0.5 * (p[:batch] + p[batch:])
            p = weight * p
            probs = p if probs is None else probs + p
        assert probs is not None
        return probs


def _expand_ensembles(specs: list[str]) -> list[tuple[str, float]]:
    """``(spec, weight)`` per teacher model: a plain model weighs one, an ensemble card's members share one."""
    from affectlens.runtime.ensemble_card import is_ensemble_card, load_ensemble
    from affectlens.runtime.pretrained import resolve_model

    out: list[tuple[str, float]] = []
    for spec in specs:
        path = resolve_model(spec)
        if is_ensemble_card(path):
            out += [(str(member.path), member.weight) for member in load_ensemble(path).members]
        else:
            out.append((spec, 1.0))
    return out


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(teacher || student)`` on softened distributions (the T^2 keeps gradient scales
    comparable across temperatures, as in Hinton et al.)."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * temperature**2


def check_teacher_classes(teacher: Teacher, class_names: list[str]) -> None:
    """Refuse a teacher whose classes (or their order) differ from the student's."""
    if list(teacher.class_names) != list(class_names):
        raise AffectlensError(
            f"teacher classes {teacher.class_names} differ from the training data's {list(class_names)}"
        )
