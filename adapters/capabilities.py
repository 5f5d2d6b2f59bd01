"""What an implementation can be asked for, declared as data, and the one check that derives
every refusal (and its message) from the declaration.

An adapter states its ``Capabilities`` -- activations, input kinds, soft-target forms, where a
probability clip is offered, label smoothing, reductions, whether alpha can be switched off --
and the named convention of ``spec/conventions.py`` it follows.  ``refusal`` turns a variant
outside the declaration into a one-line reason (the suite skips that check with it); a check
inside it runs.  Only what an implementation really cannot express is refused: a convention it
computes differently (a soft-target form, a background alpha) is not a refusal but its
``declared_variant``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from focalspec.spec.conventions import CONVENTIONS
from focalspec.spec.variant import Variant

SIGMOID_REDUCTIONS: tuple[str, ...] = ("none", "sum", "mean")


@dataclass(frozen=True)
class Capabilities:
    """The requests an implementation accepts (everything else is refused by ``refusal``).

    who: how refusals name it ("kornia focal_loss").
    soft_targets: the forms it accepts; None: any (``declared_variant`` says which one it computes).
    clip_inputs: the input kinds on which a probability clip is offered (() -- no clipping).
    alpha_off: it can compute without alpha (alpha=None); False when alpha is always applied.
    alpha_on: it has an alpha the spec's (alpha positive, 1 - alpha negative); False: alpha=None only.
    input_notes: why an input kind is missing, where "takes logits only" would hide the reason.
    alpha_note: what its alpha (or the lack of one) is instead, added to an alpha refusal.
    reduction_notes: why a reduction is missing, where a plain "has no reduction" would mislead.
    convention: a key of ``spec.conventions.CONVENTIONS`` (checked when declared).
    labels_only: softmax targets must be class indices (or exactly one-hot rows); a case with target
        distributions is not applicable (``data_refusal``), not a fault.
    hard_targets_on: the sigmoid input kinds on which only 0/1 targets are accepted; hard_targets_note says
        why (the library's documented behaviour), shown as the not-applicable reason.
    """

    who: str
    activations: tuple[str, ...] = ("sigmoid",)
    input_kinds: tuple[str, ...] = ("logits",)
    soft_targets: tuple[str, ...] | None = None
    clip_inputs: tuple[str, ...] = ()
    label_smoothing: bool = False
    reductions: tuple[str, ...] = SIGMOID_REDUCTIONS
    alpha_off: bool = True
    alpha_on: bool = True
    input_notes: dict[str, str] = field(default_factory=dict)
    alpha_note: str = ""
    reduction_notes: dict[str, str] = field(default_factory=dict)
    convention: str | None = None
    labels_only: bool = False
    hard_targets_on: tuple[str, ...] = ()
    hard_targets_note: str = ""

    def __post_init__(self) -> None:
        if self.convention is not None and self.convention not in CONVENTIONS:
            raise KeyError(f"{self.who}: unknown convention {self.convention!r}; known: {', '.join(CONVENTIONS)}")


def fused_kernel_capabilities(who: str) -> Capabilities:
    """focalspec's fused GPU kernels (Triton, Pallas): sigmoid on logits, canonical soft targets,
    alpha a float or None, every sigmoid reduction; no clipping, no label smoothing."""
    return Capabilities(who, soft_targets=("canonical",), reductions=(*SIGMOID_REDUCTIONS, "normalized"),
                        convention="focalspec")  # fmt: skip


def refusal(caps: Capabilities, v: Variant) -> str | None:
    """None when ``v`` is within ``caps``, else the one-line reason it is not."""
    who = caps.who
    if v.activation not in caps.activations:
        return f"{who} is a {'/'.join(caps.activations)} focal loss; {v.activation} is not offered"
    if v.input_kind not in caps.input_kinds:
        return caps.input_notes.get(v.input_kind) or f"{who} takes {' or '.join(caps.input_kinds)} only"
    if v.clip_eps is not None and v.input_kind not in caps.clip_inputs:
        if caps.clip_inputs:
            return f"{who} clips probabilities only on {' or '.join(caps.clip_inputs)} inputs"
        return f"{who} has no probability-clipping convention"
    if v.label_smoothing and not caps.label_smoothing:
        return f"{who} has no label smoothing"
    if caps.soft_targets is not None and v.soft_target not in caps.soft_targets:
        return f"{who} computes the {'/'.join(caps.soft_targets)} soft-target form only"
    if v.reduction not in caps.reductions:
        return caps.reduction_notes.get(v.reduction) or (
            f"{who} has no reduction {v.reduction!r} (offers {', '.join(caps.reductions)})"
        )
    note = f" ({caps.alpha_note})" if caps.alpha_note else ""
    if v.alpha is None and not caps.alpha_off:
        return f"{who} always applies alpha: alpha=None is impossible{note}"
    if v.alpha is not None and not caps.alpha_on:
        return f"{who} has no alpha of the spec's: alpha=None only{note}"
    return None


def data_refusal(caps: Capabilities, v: Variant, targets: np.ndarray) -> str | None:
    """None when the case's targets are within ``caps``, else why the check is not applicable: a label-only
    softmax given target distributions, or a hard-target sigmoid given soft targets (declared, not a fault)."""
    t = np.asarray(targets)
    if t.dtype.kind in "iub":
        return None
    binary = bool(np.all((t == 0) | (t == 1)))
    if v.activation == "softmax":
        one_hot = binary and t.ndim >= 1 and bool(np.all(t.sum(axis=-1) == 1))
        if caps.labels_only and not one_hot:
            return f"{caps.who} takes integer class labels only; target distributions are not applicable"
        return None
    if v.input_kind in caps.hard_targets_on and not binary:
        return caps.hard_targets_note or f"{caps.who} takes hard 0/1 targets only"
    return None
