"""Argument checks shared by every own implementation (torch, JAX, TF, Paddle, Triton, Pallas).

Framework-free on purpose: a bad α, γ, ε or reduction must be refused with the same one-line
message whichever framework the caller uses, before any tensor is touched.
"""

from __future__ import annotations

import math
import numbers

REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def real(
    name: str,
    value: object,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """``value`` as a float, refused unless it is a finite real Python number in the interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo:g}, {hi:g}{right}, got {value!r}")
    return v


def real_or_none(
    name: str, value: object, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float | None:
    """``None`` (the option is off) or a checked real."""
    return None if value is None else real(name, value, lo, hi, lo_open=lo_open, hi_open=hi_open)


def choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a one-line error listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")
    return value
