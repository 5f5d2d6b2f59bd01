"""Requirement tiers (SPEC.md §10.5): which part of the domain a check, and a failure, belongs to.

A loss that is NaN at a finite saturated logit breaks training; one whose only defect is NaN at
x = +inf does not.  So every check carries a *tier*, and the gate's exit code follows the tiers
that are *required* (default: finite, saturation, compile; extended is reported, not failing).

- ``finite``: finite inputs inside the range where sigma(x) is not yet rounded to 0/1 in the
  dtype (logits |x| <= saturation_bound(dtype); probabilities 0 < p < 1).
- ``saturation``: finite inputs beyond it (|x| > saturation_bound; p exactly 0 or 1).
- ``extended``: +-inf or NaN inputs, probabilities outside [0, 1], empty tensors.
- ``compile``: a check in the compiled mode (torch.compile / jax.jit / tf.function) whose
  failing elements are not all in ``extended``.

The tier of a *failure* is decided from the evidence: the lowest tier among the elements that
fail (a NaN at a finite x in a case that also holds +inf is a finite-domain failure); a failure
with no per-element evidence (raised, hung, wrong shape, a reduced value) takes the check's tier.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from focalspec.reference.rounding import get_format

# defined with the tolerance policy (SPEC §10.5); the suite's options and the report read them here
from focalspec.spec.tolerance import DEFAULT_REQUIRED as DEFAULT_REQUIRED
from focalspec.spec.tolerance import TIERS as TIERS
from focalspec.spec.variant import SpecError

RANK = {"finite": 0, "saturation": 1, "extended": 2}
# the xfail reason of a failure in a tier that is not required (plugin / gate recognise it)
# a failure in a tier that is not required: reported as an xfail whose words (for people: pytest's
# -rx line, JUnit) start with UNREQUIRED_TEXT; the plugin marks the report with UNREQUIRED_ATTR
# (the tier), which is what the gate and the plugin read -- the words are never parsed
UNREQUIRED_TEXT = "focalspec: not required tier "
UNREQUIRED_ATTR = "focalspec_unrequired_tier"


def parse_require(value: str | None) -> tuple[str, ...]:
    """The required tiers from 'finite,saturation,...' (None: the default); SpecError if unknown."""
    if value is None or not str(value).strip():
        return DEFAULT_REQUIRED
    items = tuple(dict.fromkeys(p.strip() for p in str(value).split(",") if p.strip()))
    bad = [i for i in items if i not in TIERS]
    if bad:
        raise SpecError(f"--focal-require: unknown tier {', '.join(bad)}; expected among {', '.join(TIERS)}")
    return items


def saturation_bound(dtype: str) -> float:
    """|x| beyond which sigma(x) rounds to 1 in ``dtype``: e^-x < 2^-(p+1), x > (p+1) ln 2."""
    return (get_format(dtype).precision + 1) * math.log(2.0)


def element_tiers(x: np.ndarray, input_kind: str, dtype: str) -> np.ndarray:
    """Tier rank (0 finite, 1 saturation, 2 extended) of every element of the rounded inputs."""
    a = np.asarray(x, dtype=np.float64)
    out = np.zeros(a.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        if input_kind == "probs":
            out[(a == 0.0) | (a == 1.0)] = 1
            out[~np.isfinite(a) | (a < 0.0) | (a > 1.0)] = 2
        else:
            out[np.abs(a) > saturation_bound(dtype)] = 1
            out[~np.isfinite(a)] = 2
    return out


_NAMES = {v: k for k, v in RANK.items()}


def input_tier(x: np.ndarray, input_kind: str, dtype: str) -> str:
    """The tier of a set of inputs: the highest element tier (an empty tensor is extended)."""
    r = element_tiers(x, input_kind, dtype)
    return "extended" if r.size == 0 else _NAMES[int(r.max())]


def _with_mode(tier: str, mode: str) -> str:
    return "compile" if mode == "compiled" and tier != "extended" else tier


def check_tier(x: np.ndarray | None, input_kind: str, dtype: str, mode: str) -> str:
    """The tier of a check (from all of its inputs); ``x`` None: no inputs known (finite)."""
    base = "finite" if x is None else input_tier(x, input_kind, dtype)
    return _with_mode(base, mode)


def failure_tier(
    x: np.ndarray, input_kind: str, dtype: str, mode: str, bad: np.ndarray | None, softmax: bool = False
) -> str:
    """The tier of a failure: the lowest tier among the failing elements (see module docstring).

    ``bad``: boolean mask of failing elements, of x's shape or (softmax rows) x.shape[:-1];
    None or another shape: the check's tier."""
    r = element_tiers(x, input_kind, dtype)
    if bad is not None and r.size:
        if softmax and bad.shape == r.shape[:-1] and r.ndim:
            r = r.max(axis=-1)
        if bad.shape == r.shape and bad.any():
            return _with_mode(_NAMES[int(r[bad].min())], mode)
    return check_tier(x, input_kind, dtype, mode)


def bad_mask(measure: Any) -> np.ndarray | None:
    """The failing elements of a ``grading.Measure`` (err beyond its required budget)."""
    err = getattr(measure, "err", None)
    if err is None:
        return None
    limit = getattr(measure.budget, measure.required)
    with np.errstate(invalid="ignore"):
        return ~(np.asarray(err) <= limit)


def param_inputs(p: Any) -> np.ndarray | None:
    """All rounded inputs of a params.Param (a value/grad case or an invariant's evaluations)."""
    case = p.case
    if getattr(case, "id", None) == "all-cases":
        return None
    if hasattr(case, "rounded"):
        try:
            return case.rounded(p.dtype)[0]
        except Exception:
            return None
    evals = getattr(p, "evals", None) or []
    if not evals:
        return None
    return np.concatenate([np.ravel(np.asarray(e.inputs, dtype=np.float64)) for e in evals])


def param_tier(p: Any) -> str:
    if getattr(p, "members", ()):  # a collapsed skip: the highest tier of the checks it stands for
        return max((param_tier(m) for m in p.members), key=TIERS.index)
    v = p.variant or p.case.variant
    return check_tier(param_inputs(p), v.input_kind, p.dtype, p.mode)


def summarize(entries: Any) -> dict[str, dict[str, list[int]]]:
    """Per adapter, per tier: [checks run, checks failed] (a failure counts in its failure tier)."""
    out: dict[str, dict[str, list[int]]] = {}
    for e in entries:
        if e.get("outcome") not in ("passed", "failed", "error", "xpassed"):
            continue
        row = out.setdefault(e["adapter"], {t: [0, 0] for t in TIERS})
        failed = e["outcome"] in ("failed", "error")
        tier = (e.get("failure_tier") if failed else None) or e.get("tier") or "finite"
        row[tier][0] += 1
        row[tier][1] += int(failed)
    return out


def summary_lines(entries: Any, required: tuple[str, ...]) -> list[str]:
    """One line per adapter: each tier's verdict, marking the required ones with '*'."""
    lines = []
    for adapter, row in summarize(entries).items():
        parts = []
        for t in TIERS:
            n, bad = row[t]
            mark = "*" if t in required else ""
            if not n:
                if t in required:  # say so: a required tier with no check is not a passed one
                    parts.append(f"{t}{mark} not run")
                continue
            parts.append(f"{t}{mark} {'FAIL' if bad else 'ok'} ({n - bad}/{n})")
        lines.append(f"{adapter}: " + ", ".join(parts))
    return lines
