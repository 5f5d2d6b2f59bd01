"""The parameters of the focal-loss specification, as one validated, frozen value.

Every implementation is checked against the ``Variant`` it claims; every reference
function takes one.  Validation lives here so that bad input gets the same one-line
``SpecError`` wherever it enters (CLI, adapters, conformance plugin).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Activation = Literal["sigmoid", "softmax"]
InputKind = Literal["logits", "probs"]
SoftTarget = Literal["canonical", "geometric", "margin", "two_term"]
Reduction = Literal["none", "sum", "mean", "normalized"]
ClipScope = Literal["all", "ce"]

ACTIVATIONS: tuple[str, ...] = ("sigmoid", "softmax")
INPUT_KINDS: tuple[str, ...] = ("logits", "probs")
SOFT_TARGETS: tuple[str, ...] = ("canonical", "geometric", "margin", "two_term")
REDUCTIONS: tuple[str, ...] = ("none", "sum", "mean", "normalized")
CLIP_SCOPES: tuple[str, ...] = ("all", "ce")


class SpecError(ValueError):
    """A request the specification does not define; the message is one line for the user."""


AlphaSpec = float | tuple[float, ...] | None


@dataclass(frozen=True)
class Variant:
    """One point in the space of focal-loss definitions (SPEC.md §1-§9).

    alpha: ``None`` disables class balancing.  For sigmoid it is the weight of the
    positive class (negatives get ``1 - alpha``); for softmax a float weights every
    class alike and a tuple gives one weight per class.
    clip_eps: ``None`` evaluates the exact definition; a number declares the
    "clip probabilities to [eps, 1 - eps]" convention (Keras style).
    renormalize: softmax on probabilities only -- divide by the row sum first (Keras).
    clip_upper: the upper clip bound when it is not exactly 1 - clip_eps -- implementations
    form 1 - eps in their working dtype (float32: 1 - 1e-7 rounds to 1 - 2**-23), and the
    suite states that rounded bound here so the reference clips where the code does.
    clip_scope: where the clip applies -- ``"all"`` replaces p by the clipped p everywhere;
    ``"ce"`` clips it inside the cross-entropy only and keeps the unclipped p in the factor
    (1 - p_t)**gamma (Keras' binary focal loss; sigmoid only).
    """

    activation: Activation = "sigmoid"
    input_kind: InputKind = "logits"
    gamma: float = 2.0
    alpha: AlphaSpec = 0.25
    soft_target: SoftTarget = "canonical"
    clip_eps: float | None = None
    label_smoothing: float = 0.0
    reduction: Reduction = "none"
    renormalize: bool = False
    clip_upper: float | None = None
    clip_scope: ClipScope = "all"

    def __post_init__(self) -> None:
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("input_kind", self.input_kind, INPUT_KINDS)
        _check_choice("soft_target", self.soft_target, SOFT_TARGETS)
        _check_choice("reduction", self.reduction, REDUCTIONS)
        _check_real("gamma", self.gamma)
        if self.gamma < 0:
            raise SpecError(f"gamma must be >= 0, got {self.gamma!r}")
        self._check_alpha()
        if self.clip_eps is not None:
            _check_real("clip_eps", self.clip_eps)
            if not 0 < self.clip_eps < 0.5:
                raise SpecError(f"clip_eps must be in (0, 0.5), got {self.clip_eps!r}")
        if self.clip_upper is not None:
            _check_real("clip_upper", self.clip_upper)
            if self.clip_eps is None or not 0.5 < self.clip_upper < 1:
                raise SpecError(f"clip_upper needs clip_eps and must be in (0.5, 1), got {self.clip_upper!r}")
        _check_choice("clip_scope", self.clip_scope, CLIP_SCOPES)
        if self.clip_scope != "all" and (self.clip_eps is None or self.activation != "sigmoid"):
            raise SpecError(f"clip_scope={self.clip_scope!r} needs clip_eps and activation='sigmoid'")
        _check_real("label_smoothing", self.label_smoothing)
        if not 0 <= self.label_smoothing <= 1:
            raise SpecError(f"label_smoothing must be in [0, 1], got {self.label_smoothing!r}")
        if self.soft_target == "two_term":  # a per-component sum: on logits or on probabilities
            if self.activation != "sigmoid" or self.clip_eps is not None:
                raise SpecError("soft_target='two_term' is defined for sigmoid without clipping only")
        elif self.soft_target != "canonical" and (
            self.activation != "sigmoid" or self.input_kind != "logits" or self.clip_eps is not None
        ):
            raise SpecError(
                f"soft_target={self.soft_target!r} is defined for sigmoid on logits without clipping only"
            )
        if self.reduction == "normalized" and self.activation != "sigmoid":
            raise SpecError("reduction='normalized' (sum / max(1, #positives)) is defined for sigmoid only")
        if self.renormalize and not (self.activation == "softmax" and self.input_kind == "probs"):
            raise SpecError("renormalize applies to softmax on probabilities only")

    def _check_alpha(self) -> None:
        a = self.alpha
        if a is None:
            return
        if isinstance(a, tuple):
            if self.activation != "softmax":
                raise SpecError("a per-class alpha vector needs activation='softmax'")
            if not a:
                raise SpecError("alpha vector is empty")
            for v in a:
                _check_unit("alpha", v)
            return
        _check_unit("alpha", a)

    def alpha_for_classes(self, n_classes: int) -> tuple[float, ...] | None:
        """Per-class softmax weights, or None when balancing is disabled."""
        if self.alpha is None:
            return None
        if isinstance(self.alpha, tuple):
            if len(self.alpha) != n_classes:
                raise SpecError(f"alpha has {len(self.alpha)} entries but the logits have {n_classes} classes")
            return self.alpha
        return (float(self.alpha),) * n_classes

    def clip_bounds_for(self, dtype_eps: float, dtype_upper: float) -> Variant:
        """This variant with the clip bounds an implementation forms in its dtype."""
        return self if self.clip_eps is None else replace(self, clip_eps=dtype_eps, clip_upper=dtype_upper)

    def with_(self, **changes: Any) -> Variant:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form; clip_scope is written only when it is not the default, so golden data and
        results written before the field existed read back as the same variant."""
        d = asdict(self)
        if isinstance(d["alpha"], tuple):
            d["alpha"] = list(d["alpha"])
        if d["clip_scope"] == "all":
            del d["clip_scope"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Variant:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpecError(f"unknown variant field(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        if isinstance(d.get("alpha"), list):
            d["alpha"] = tuple(d["alpha"])
        return cls(**d)

    def label(self) -> str:
        """A short human-readable name, used in test ids and reports."""
        parts = [self.activation, self.input_kind, f"g{self.gamma:g}"]
        if self.alpha is None:
            parts.append("anone")
        elif isinstance(self.alpha, tuple):
            parts.append("avec")
        else:
            parts.append(f"a{self.alpha:g}")
        if self.soft_target != "canonical":
            parts.append(self.soft_target)
        if self.clip_eps is not None:
            parts.append(f"clip{self.clip_eps:g}" + ("" if self.clip_scope == "all" else f"-{self.clip_scope}"))
        if self.label_smoothing:
            parts.append(f"ls{self.label_smoothing:g}")
        if self.renormalize:
            parts.append("renorm")
        if self.reduction != "none":
            parts.append(self.reduction)
        return "_".join(parts)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def _check_real(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise SpecError(f"{name} must be finite, got {value!r}")


def _check_unit(name: str, value: object) -> None:
    _check_real(name, value)
    assert isinstance(value, int | float)
    if not 0 <= value <= 1:
        raise SpecError(f"{name} must be in [0, 1], got {value!r}")


# ----------------------------------------------------------------------------- text form

_TEXT_KINDS: dict[str, str] = {"activation": "str", "input_kind": "str", "gamma": "real", "alpha": "alpha",
                               "soft_target": "str", "clip_eps": "real?", "label_smoothing": "real",
                               "reduction": "str", "renormalize": "bool", "clip_upper": "real?",
                               "clip_scope": "str"}  # fmt: skip


def variant_text(v: Variant) -> str:
    """``v`` as ``key=value,...`` (gamma and alpha always, other fields where they differ from
    the default): the form ``--variant`` reads, so a printed reproducer names the variant exactly."""
    base = Variant()
    parts = []
    for name in _TEXT_KINDS:
        value = getattr(v, name)
        if name not in ("gamma", "alpha") and value == getattr(base, name):
            continue
        if value is None:
            text = "none"
        elif isinstance(value, tuple):
            text = "/".join(repr(float(a)) for a in value)
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        parts.append(f"{name}={text}")
    return ",".join(parts)


def parse_variant_text(text: str) -> Variant:
    """The ``Variant`` of ``key=value,...`` (``variant_text``'s form; alpha ``none`` or a/b/c per
    class; unnamed fields keep their defaults); SpecError naming the bad part."""
    fields: dict[str, Any] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, sep, raw = part.partition("=")
        key, raw = key.strip().replace("-", "_"), raw.strip()
        if not sep or key not in _TEXT_KINDS:
            raise SpecError(f"--variant: {part!r} is not KEY=VALUE with KEY among {', '.join(_TEXT_KINDS)}")
        kind = _TEXT_KINDS[key]
        try:
            if kind == "str":
                fields[key] = raw
            elif kind == "bool":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                fields[key] = raw.lower() in ("true", "1")
            elif raw.lower() == "none" and kind in ("real?", "alpha"):
                fields[key] = None
            elif kind == "alpha" and "/" in raw:
                fields[key] = tuple(float(a) for a in raw.split("/"))
            else:
                fields[key] = float(raw)
        except ValueError:
            raise SpecError(f"--variant: {key}={raw!r} is not a valid {key}") from None
    return Variant(**fields)
