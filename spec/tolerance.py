"""The tolerance policy of SPEC.md §10: error in units of the dtype's unit roundoff, and grades.

The error of an element is |got - exact| / max(u * scale, smallest normal), where ``exact``
is the reference at the dtype-rounded input, ``scale`` is |exact| for values and the
reference's gradient scale for gradients, and u = 2**-p: the relative error in units of u,
with an absolute floor of one smallest normal N (a result within N of the exact value --
a flushed or rounded subnormal -- costs at most 1).  A correctly rounded result has error
<= 1.  Non-finite results are never graded by size: NaN or Inf where the reference is
finite (after rounding to the dtype), or a finite value where it is infinite or NaN, is an
error of +inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from focalspec.spec.rounding import get_format

# SPEC §10.5: the requirement tiers, and those a check must pass unless the caller says otherwise (±∞/NaN
# inputs, the extended tier, are reported but not required by default)
TIERS = ("finite", "saturation", "extended", "compile")
DEFAULT_REQUIRED = ("finite", "saturation", "compile")

GRADES: tuple[str, ...] = ("exact", "faithful", "accurate", "acceptable", "fail")
# float64 gradings compare against a float64 copy of the certified value (0.5 u away at most)


@dataclass(frozen=True)
class Budget:
    """Largest error (in u) allowed for each passing grade of one dtype."""

    exact: float
    faithful: float
    accurate: float
    acceptable: float

    def grade(self, err: float) -> str:
        if not err <= self.acceptable:  # NaN counts as failure
            return "fail"
        for name in ("exact", "faithful", "accurate"):
            if err <= getattr(self, name):
                return name
        return "acceptable"


def budget(dtype: str, gamma: float = 2.0, n_reduced: int = 1) -> Budget:
    """The budget of SPEC.md §10.3 for one dtype.

    exact (<= 1 u): what correct rounding gives.  faithful (<= 2 u): one of the two
    neighbours.  accurate: a careful evaluation in the dtype itself -- a few roundings in
    sigmoid/softplus, amplified by gamma in the power (1 - p_t)**gamma, so 8 + 4*gamma u,
    plus 2*log2(n) u for a pairwise reduction of n elements.  acceptable: at most
    floor(0.4 p) of the p significand bits lost -- anything worse is a defect, whatever
    its cause (a naive 1 - p, clipping, float32 arithmetic under float64 inputs).
    """
    fmt = get_format(dtype)
    red = 2.0 * math.ceil(math.log2(n_reduced)) if n_reduced > 1 else 0.0
    accurate = 8.0 + 4.0 * gamma + red
    acceptable = max(2.0 ** math.floor(0.4 * fmt.precision), accurate)
    return Budget(exact=1.0, faithful=2.0, accurate=accurate, acceptable=acceptable)


def error_in_u(got: np.ndarray, exact: np.ndarray, scale: np.ndarray, dtype: str) -> np.ndarray:
    """Element-wise error in units of u (see module docstring); +inf for a non-finite mismatch.

    ``exact`` and ``scale`` are float64 arrays from the reference; ``exact`` must already be
    rounded to ``dtype`` where it overflows (so an expected +inf in float16 is +inf).
    """
    fmt = get_format(dtype)
    got = np.asarray(got, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    scale = np.abs(np.asarray(scale, dtype=np.float64))
    got, exact, scale = np.broadcast_arrays(got, exact, scale)
    err = np.full(got.shape, np.inf)
    both_nan = np.isnan(got) & np.isnan(exact)
    both_inf = np.isinf(got) & np.isinf(exact) & (np.sign(got) == np.sign(exact))
    finite = np.isfinite(got) & np.isfinite(exact)
    err[both_nan | both_inf] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        # relative error in u above the underflow threshold; below it an absolute floor of one
        # smallest normal, so flushing a subnormal result (or input-sized noise) costs <= 1 u
        rel_scale = np.where(np.isfinite(scale), scale, np.abs(exact)) * fmt.unit_roundoff
        denom = np.maximum(rel_scale, fmt.smallest_normal)
        err[finite] = np.abs(got[finite] - exact[finite]) / denom[finite]
    return err


def worst(err: np.ndarray) -> tuple[float, int]:
    """(max error, flat index of the worst element); (0, -1) for an empty array."""
    if err.size == 0:
        return 0.0, -1
    flat = np.asarray(err).ravel()
    i = int(np.argmax(np.where(np.isnan(flat), np.inf, flat)))
    return float(flat[i]), i


def rms(err: np.ndarray) -> float:
    """Root mean square of the finite errors (inf when any is infinite)."""
    if err.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(err))))
