"""Certified digits: evaluate the reference twice, at precisions far apart, and keep what agrees.

One mpmath evaluation at ``dps`` digits is only as good as its error analysis; two, at
``digits + 25`` and twice that, that agree to d significant digits show that the result is
settled to d digits without any analysis (the higher one is far more accurate than the
lower, so their difference measures the lower one's error).  Values are then rounded once,
from the higher-precision result, to the requested digits and to each IEEE dtype; when the
two precisions would round a value to different dtype neighbours, both are raised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np

from focalspec.reference import exact as ref
from focalspec.spec.reductions import LibraryReduction
from focalspec.spec.reductions import apply as apply_reduction
from focalspec.spec.rounding import FORMATS, round_mpf
from focalspec.spec.variant import SpecError, Variant

mp = mpmath.mp
MIN_AGREED = 30  # significant digits two precisions must share, or certification fails
GUARD = 25  # extra digits of the lower precision over the requested ones
MAX_RAISES = 3  # times both precisions may be doubled when they disagree
DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
FIELDS: tuple[str, ...] = ("losses", "value", "grad", "grad_scale")


class CertificationError(SpecError):
    """The two precisions do not agree to MIN_AGREED digits even after raising them."""


@dataclass
class Certified:
    """Certified strings (``format_sig`` form, or '0', 'inf', '-inf', 'nan') shaped like the
    inputs, and for each dtype the correctly rounded values as exact ``repr(float)`` strings."""

    losses: Any
    value: str | None
    grad: Any
    grad_scale: Any
    rounded: dict[str, dict[str, Any]]
    digits: int  # fewest significant digits shown by any finite nonzero entry
    dps: tuple[int, int]
    quantity: dict[str, Any] | None = field(default=None)


# ----------------------------------------------------------------------------- formatting


def format_sig(x: Any, k: int) -> str:
    """x correctly rounded (half even) to k significant digits, as 'd.ddd...e±XX'.

    Done with integer arithmetic at the working precision, which callers set far above k,
    so the rounding is that of the exact value unless it lies within 10^-(dps-k) of a tie.
    """
    if mp.isnan(x):
        return "nan"
    if mp.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    a = abs(x)
    e = int(mp.floor(mp.log10(a)))
    n = int(mp.nint(a * mp.mpf(10) ** (k - 1 - e)))  # nint rounds half to even
    if n >= 10**k:  # log10 rounded up across a power of ten, or the rounding carried
        e += 1
        n = int(mp.nint(a * mp.mpf(10) ** (k - 1 - e)))
    elif n < 10 ** (k - 1):
        e -= 1
        n = int(mp.nint(a * mp.mpf(10) ** (k - 1 - e)))
    d = str(n)
    mant = d[0] + ("." + d[1:] if k > 1 else "")
    return f"{sign}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def float_str(f: float) -> str:
    """Exact, round-tripping text of a float holding a dtype value: repr (shortest digits)."""
    return repr(float(f))


_SIG = re.compile(r"^-?(\d)(?:\.(\d+))?e[+-]\d+$")


def sig_digits(s: str) -> int:
    """Significant digits of a ``format_sig`` string (0 for '0', 'inf', 'nan')."""
    m = _SIG.match(s)
    return 0 if not m else 1 + len(m.group(2) or "")


# ----------------------------------------------------------------------------- agreement


def _agreed_digits(lo: Any, hi: Any) -> float:
    """Significant digits on which two evaluations agree (inf when identical, -1 when their
    kinds differ: finite vs non-finite, zero vs nonzero, or opposite signs)."""
    if mp.isnan(lo) or mp.isnan(hi):
        return float("inf") if mp.isnan(lo) and mp.isnan(hi) else -1.0
    if mp.isinf(lo) or mp.isinf(hi):
        return float("inf") if lo == hi else -1.0
    if lo == hi:
        return float("inf")
    if lo == 0 or hi == 0 or (lo > 0) != (hi > 0):
        return -1.0
    rel = abs(lo - hi) / abs(hi)
    return float(mp.floor(-mp.log10(rel)))


def _flat(a: Any) -> list[Any]:
    if a is None:
        return []
    if isinstance(a, np.ndarray):
        return list(a.ravel())
    return [a]


def certify_fn(
    fn: Callable[[int], dict[str, list[Any]]], digits: int = 34, dtypes: tuple[str, ...] = DTYPES
) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]], int, tuple[int, int]]:
    """Certify every number ``fn(dps)`` returns (named flat lists of mpf).

    Returns (strings per name, {dtype: rounded repr strings per name}, fewest digits shown,
    (low dps, high dps)).  Raises CertificationError when agreement stays below MIN_AGREED.
    """
    if digits < 1:
        raise SpecError(f"digits must be >= 1, got {digits}")
    lo_dps = digits + GUARD
    worst_seen = 0.0
    for _ in range(MAX_RAISES + 1):
        hi_dps = 2 * lo_dps
        lo_vals, hi_vals = fn(lo_dps), fn(hi_dps)
        ok = True
        worst = float("inf")
        with mp.workdps(hi_dps):
            for name, hv in hi_vals.items():
                for lo, hi in zip(lo_vals[name], hv, strict=True):
                    d = _agreed_digits(lo, hi)
                    worst = min(worst, d)
                    if d < max(MIN_AGREED, min(digits, lo_dps - 5)):
                        ok = False
                    elif any(round_mpf(lo, t) != round_mpf(hi, t) and not _both_nan(lo, hi) for t in dtypes):
                        ok = False
            if ok:
                strings: dict[str, list[str]] = {}
                rounded: dict[str, dict[str, list[str]]] = {t: {} for t in dtypes}
                shown = digits
                for name, hv in hi_vals.items():
                    strings[name] = []
                    for lo, hi in zip(lo_vals[name], hv, strict=True):
                        k = int(min(digits, _agreed_digits(lo, hi)))
                        s = format_sig(hi, k)
                        if sig_digits(s):
                            shown = min(shown, k)
                        strings[name].append(s)
                    for t in dtypes:
                        rounded[t][name] = [float_str(round_mpf(h, t)) for h in hv]
                return strings, rounded, shown, (lo_dps, hi_dps)
        worst_seen = worst
        lo_dps *= 2
    raise CertificationError(
        f"precisions {lo_dps // 2} and {lo_dps} digits agree on only {worst_seen:g} significant digits"
    )


def _both_nan(lo: Any, hi: Any) -> bool:
    return bool(mp.isnan(lo) and mp.isnan(hi))


# ----------------------------------------------------------------------------- public API


def _shape_like(flat: list[Any], shape: tuple[int, ...]) -> Any:
    """Flat list -> nested lists of ``shape`` (a bare scalar for shape ())."""
    if not shape:
        return flat[0]
    arr = np.empty(len(flat), dtype=object)
    arr[:] = flat
    return arr.reshape(shape).tolist()


def _evaluator(
    variant: Variant, inputs: Any, targets: Any, reduction: LibraryReduction | None = None
) -> tuple[Callable[[int], dict[str, list[Any]]], dict]:
    """fn(dps) -> the flat numbers of a case, in whatever arithmetic ``ref.mp`` is at the call
    (mpmath here; intervals in focalspec.certified.prove); ``reduction``: a library's named one,
    applied to the variant's per-element losses (the variant's own reduction must be 'none')."""
    if reduction is not None and variant.reduction != "none":
        raise SpecError(f"a library reduction ({reduction.name}) replaces the reduction {variant.reduction!r}")
    shapes: dict[str, tuple[int, ...]] = {}

    def fn(dps: int) -> dict[str, list[Any]]:
        r = ref.evaluate(variant, inputs, targets, dps=dps)
        shapes.update(losses=r.losses.shape, grad=r.grad.shape)
        value, grad, scale = r.value, r.grad, r.grad_scale
        if reduction is not None:
            with ref.mp.workdps(dps):
                value, grad, scale = apply_reduction(
                    reduction, ref.mp, r.losses, r.grad, r.grad_scale, variant.activation == "softmax", targets
                )
        shapes["value"] = np.shape(value) if isinstance(value, np.ndarray) else ()
        return {"losses": _flat(r.losses), "value": _flat(value), "grad": _flat(grad), "grad_scale": _flat(scale)}

    return fn, shapes


def certify(
    variant: Variant, inputs: Any, targets: Any, digits: int = 34, reduction: LibraryReduction | None = None
) -> Certified:
    """Certified losses, reduced value, gradient and gradient scale of one case."""
    fn, shapes = _evaluator(variant, inputs, targets, reduction)
    strings, rounded, shown, dps = certify_fn(fn, digits)
    has_value = variant.reduction != "none" or reduction is not None

    def pack(d: dict[str, list[str]]) -> dict[str, Any]:
        return {
            "losses": _shape_like(d["losses"], shapes["losses"]),
            "value": _shape_like(d["value"], shapes["value"]) if has_value else None,
            "grad": _shape_like(d["grad"], shapes["grad"]),
        }

    main = pack(strings)
    return Certified(
        losses=main["losses"],
        value=main["value"],
        grad=main["grad"],
        grad_scale=_shape_like(strings["grad_scale"], shapes["grad"]),
        rounded={t: pack(r) for t, r in rounded.items()},
        digits=shown,
        dps=dps,
    )


def _headline(r: ref.MpResult) -> list[Any]:
    """The reported loss(es): the reduced value, or every element's loss."""
    return [r.value] if r.value is not None else _flat(r.losses)


def ratio_evaluator(
    numerator: Variant, denominator: Variant, inputs: Any, targets: Any
) -> Callable[[int], dict[str, list[Any]]]:
    """fn(dps) -> the ratios and both parts, in the arithmetic ``ref.mp`` is at the call."""

    def fn(dps: int) -> dict[str, list[Any]]:
        num = _headline(ref.evaluate(numerator, inputs, targets, dps=dps))
        den = _headline(ref.evaluate(denominator, inputs, targets, dps=dps))
        ctx = ref.mp
        with ctx.workdps(dps):
            ratio = [n / d if d != 0 else (ctx.nan if n == 0 else ctx.inf) for n, d in zip(num, den, strict=True)]
        return {"value": ratio, "numerator": num, "denominator": den}

    return fn


def certify_ratio(
    numerator: Variant, denominator: Variant, inputs: Any, targets: Any, digits: int = 34
) -> dict[str, Any]:
    """Certified loss(numerator) / loss(denominator) on the same inputs (element-wise for
    reduction 'none'), with both parts: the ratios and factors the articles print."""

    fn = ratio_evaluator(numerator, denominator, inputs, targets)
    strings, rounded, shown, _ = certify_fn(fn, digits)

    def one(v: list[Any]) -> Any:
        return v[0] if len(v) == 1 else v

    return {
        "value": one(strings["value"]),
        "numerator": one(strings["numerator"]),
        "denominator": one(strings["denominator"]),
        "rounded": {t: one(r["value"]) for t, r in rounded.items()},
        "digits": shown,
    }


def variant_of(spec: Any, own: Variant) -> Variant:
    """A quantity's part: "self" is the case's own variant, a dict is a Variant."""
    return own if spec == "self" else Variant.from_dict(spec)


__all__ = [
    "DTYPES",
    "FORMATS",
    "MIN_AGREED",
    "CertificationError",
    "Certified",
    "certify",
    "certify_fn",
    "certify_ratio",
    "float_str",
    "format_sig",
    "sig_digits",
    "variant_of",
]
