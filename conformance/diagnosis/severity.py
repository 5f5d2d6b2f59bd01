"""Severity of a failure (SPEC.md §10.8): how much a defect matters for training, not how often it shows.

Counts say how many checks a cause spoils; a maintainer and a team choosing a library need to
know which defect to fix or fear first.  Every failing check, finding and cause therefore gets
one of four levels, most harmful first:

- ``critical``: no usable number where training needs one -- NaN/±Inf at a finite input, a
  raise/crash/hang, or 0 where the exact value is a normal number -- in a required tier;
- ``major``: a finite but wrong number large enough to move a realistic batch beyond the
  rounding floor of its own reduction (a convention, a precision defect that shows in training);
- ``minor``: a precision defect whose effect on a realistic batch stays below that floor;
- ``policy``: only ±∞/NaN inputs or another tier that is not required, or a declared convention.

Without measured impact (``impact_exceeds_floor`` is None) the level follows the harm order of
the cause alone: non-finite at a finite input > large error > below the rounding floor > ±∞
policy.  The impact measurement (conformance/diagnosis/impact.py, SPEC §10.9) refines ``major`` against
``minor`` per implementation and dtype: a precision cause whose implementation moves no
realistic batch of that dtype beyond its rounding floor is ``minor``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

SEVERITIES: tuple[str, ...] = ("critical", "major", "minor", "policy")
RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

# the level of each cause (conformance.causes.CAUSES) when nothing else is known, in a required tier
_BY_CAUSE: dict[str, str] = {
    "fault": "critical",
    "nonfinite_at_finite": "critical",
    "underflow_flush": "major",
    "convention": "major",
    "low_precision_compute": "major",
    "clip_epsilon": "major",
    "one_minus_p_cancellation": "major",
    "bce_cancellation": "major",
    "unclassified": "major",
    "nonfinite_input_policy": "policy",
}
# precision causes: their level is decided by the measured impact where there is one
PRECISION_CAUSES = frozenset({"low_precision_compute", "clip_epsilon", "one_minus_p_cancellation",
                              "bce_cancellation", "underflow_flush", "unclassified"})  # fmt: skip


def severity(cause: str | None, *, required: bool = True, impact_exceeds_floor: bool | None = None,
             nonfinite: bool = False) -> str:
    """The level of a failure with ``cause`` (None: unknown) in a required tier or not.

    ``impact_exceeds_floor``: whether the defect moves a realistic batch's reduced loss or gradient
    beyond that batch's own rounding floor (None where it was not measured).  ``nonfinite``: the
    failure returned NaN/±Inf at a finite input where the exact value is finite -- critical whatever
    mechanism produced it (−log(0) after a cancellation is named for the cancellation, one defect
    one cause, but it is still a number training cannot use).
    """
    if not required:
        return "policy"
    if nonfinite:
        return "critical"
    level = _BY_CAUSE.get(cause or "unclassified", "major")
    if level == "major" and cause in PRECISION_CAUSES and impact_exceeds_floor is False:
        return "minor"
    return level


def rank(level: str) -> int:
    """Sort key: 0 for the most harmful level; an unknown level sorts last."""
    return RANK.get(level, len(SEVERITIES))


def worst(levels: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The most harmful of ``levels`` (None if empty)."""
    return min(levels, key=rank) if levels else None


def required_tiers(tiers: Iterable[str], required: Iterable[str] | None = None) -> bool:
    """Whether any of a failure's ``tiers`` is required (default: SPEC §10.5's finite, saturation, compile)."""
    from focalspec.spec.tolerance import DEFAULT_REQUIRED

    need = set(DEFAULT_REQUIRED if required is None else required)
    return any(t in need for t in tiers)


def summary_key(level: str, count: int, name: str = "") -> tuple[int, int, str]:
    """How every summary orders its rows (SPEC §10.8): by severity, then by count, then by name --
    the worst defect first."""
    return rank(level), -count, name


def table(rows: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """Per implementation, failing checks per level, from (implementation, level, checks) rows."""
    out: dict[str, dict[str, int]] = {}
    for name, level, n in rows:
        counts = out.setdefault(name, dict.fromkeys(SEVERITIES, 0))
        counts[level] = counts.get(level, 0) + n
    return out


def nonfinite_example(example: Any) -> bool:
    """Whether a cause's example (``cause_example``: input, expected, got) is a NaN/±Inf result at a
    finite input where the exact value is finite."""
    if not isinstance(example, dict):
        return False

    def num(v: Any) -> float | None:
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    x, expected, got = num(example.get("input")), num(example.get("expected")), num(example.get("got"))
    return (x is not None and math.isfinite(x) and expected is not None and math.isfinite(expected)
            and got is not None and not math.isfinite(got))  # fmt: skip
