"""Is a timed output right?  The suite's one grader (``conformance.suite.grading.measure``) applied
to the output of the last timed repetition, against the float64 reference at the same inputs.

A fast wrong answer is not a result: anything beyond the tolerance policy's 'acceptable' grade
(the grade a shipped implementation must reach in the suite) is ``correct: false`` with the
reason; NaN/Inf where the reference is finite is always wrong.  Budgets are the suite's: an
n-element reduction for the reduced loss, one element for each loss element and gradient
element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.conformance.suite import grading
from focalspec.reference.rounding import get_format
from focalspec.spec.tolerance import budget
from focalspec.spec.variant import Variant

REQUIRED = grading.THIRD_PARTY_GRADE  # 'acceptable': the bar for every timed output, own or shipped


@dataclass
class OutputCheck:
    correct: bool
    max_err_u: float
    reason: str | None


def _grade(
    what: str, got: np.ndarray, exact: np.ndarray, scale: np.ndarray, dtype: str, gamma: float, n: int
) -> tuple[float, str | None]:
    """Worst error in u and, if it fails 'acceptable', the one-line reason naming the element."""
    m = grading.measure(what, got, exact, scale, dtype, budget(dtype, gamma, n), REQUIRED)
    if m.passed:
        return m.max_err, None
    w = m.worst or {}
    index = tuple(int(k) for k in w.get("index") or ())
    i = int(np.ravel_multi_index(index, m.err.shape)) if index else 0
    at = f" at {index}" if m.err.size > 1 else ""
    limit = getattr(m.budget, REQUIRED)
    return m.max_err, (
        f"wrong {what}{at}: {float(np.ravel(got)[i])!r} vs reference {float(np.ravel(exact)[i])!r} "
        f"({_u(m.max_err)} > {REQUIRED} {limit:g} u)"
    )


def check_output(loss: Any, grad: Any, ref: Any, dtype: str, variant: Variant, n: int, backward: bool) -> OutputCheck:
    """Grade the timed output against the float64 reference (``reference.float64.NpResult``):
    'acceptable' or better for the reduced loss (budget of an n-element reduction) and for
    every gradient element; NaN/Inf where the reference is finite is always wrong."""
    loss = np.asarray(loss, dtype=np.float64)
    gamma = float(variant.gamma)
    if variant.reduction == "none":
        if loss.shape != ref.losses.shape:
            return OutputCheck(False, math.inf, f"wrong output: loss of shape {loss.shape}, inputs {ref.losses.shape}")
        err_v, why = _grade("loss", loss, ref.losses, np.abs(ref.losses), dtype, gamma, 1)
    else:
        if loss.size != 1:
            return OutputCheck(False, math.inf, f"wrong output: expected a scalar loss, got shape {loss.shape}")
        exact = float(ref.value)
        with np.errstate(over="ignore"):
            rounded = float(np.asarray(exact).astype(get_format(dtype).numpy_type).astype(np.float64))
        if math.isinf(rounded) and math.isfinite(exact):
            exact = rounded  # the dtype's own answer for an overflowing sum is +inf (tolerance.error_in_u)
        got = loss.reshape(1)
        err_v, why = _grade("loss", got, np.array([exact]), np.array([abs(exact)]), dtype, gamma, n)
    if why is not None:
        return OutputCheck(False, err_v, why)
    if not backward:
        return OutputCheck(True, err_v, None)
    if grad is None:
        return OutputCheck(False, math.inf, "wrong output: forward+backward returned no gradient")
    g = np.asarray(grad, dtype=np.float64)
    if g.shape != ref.grad.shape:
        return OutputCheck(False, math.inf, f"wrong output: gradient of shape {g.shape}, inputs {ref.grad.shape}")
    err_g, why = _grade("gradient", g, ref.grad, ref.grad_scale, dtype, gamma, 1)
    if why is not None:
        return OutputCheck(False, err_g, why)
    return OutputCheck(True, max(err_v, err_g), None)


def _u(err: float) -> str:
    return "non-finite" if not math.isfinite(err) else f"{err:.3g} u"
