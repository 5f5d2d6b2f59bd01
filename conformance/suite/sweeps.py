"""Error against the logit over the whole range: the data of the report's accuracy plots.

For every adapter x device x dtype x mode that ran in the session: 301 logits on a
symmetric-log grid (0 and +-10**k, k uniform in [-8, 4]), rounded to the dtype, at gamma
0.5 and 2, y = 0 and 1, alpha 0.25 (as the adapter declares it).  Errors are in u of the
dtype against the reference at the rounded logits (mpmath in float64, ``reference.float64``
otherwise, see ``grading``); non-finite errors (NaN/inf where the reference is finite)
are stored as null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focalspec.conformance.suite import grading
from focalspec.conformance.suite.cases import round_to
from focalspec.spec.tolerance import error_in_u
from focalspec.spec.variant import SpecError, Variant

GAMMAS: tuple[float, ...] = (0.5, 2.0)
TARGETS: tuple[float, ...] = (0.0, 1.0)
ALPHA = 0.25


def grid(points_per_side: int = 150) -> np.ndarray:
    """0 and +-logspace(-8, 4): 2 * points_per_side + 1 logits, ascending."""
    pos = np.logspace(-8.0, 4.0, points_per_side)
    return np.concatenate([-pos[::-1], [0.0], pos])


def sweep_one(suite: Any, adapter: Any, device: str, dtype: str, mode: str) -> list[dict[str, Any]]:
    """The sweeps of one adapter combination ([] when the adapter has no sigmoid-on-logits variant).
    One call per gamma covers both targets (the grid twice), so compiled modes compile once per gamma."""
    from focalspec.adapters.claims import resolve_variant, supports

    x1 = round_to(grid(), dtype)
    n = x1.size
    x = np.concatenate([x1] * len(TARGETS))
    t = np.repeat(np.asarray(TARGETS, dtype=np.float64), n)
    out = []
    for g in GAMMAS:
        try:
            v = resolve_variant(adapter, Variant(gamma=g, alpha=ALPHA), dtype, x)
        except SpecError:
            continue
        if supports(adapter, v, x, t, dtype, device, mode):
            continue
        res = suite._call(adapter, v, x, t, dtype, device, mode, True)
        if isinstance(res, BaseException):
            verr: list[float | None] = [None] * x.size
            gerr: list[float | None] = [None] * x.size
        else:
            exp = grading.expected(v, x, t, dtype, grading.reference_source("sweep", dtype, x.size))
            verr = _errs(res.loss, exp.value, np.abs(exp.value), dtype, x.size)
            gerr = _errs(res.grad, exp.grad, exp.grad_scale, dtype, x.size)
        for k, y in enumerate(TARGETS):
            part = slice(k * n, (k + 1) * n)
            out.append(
                {
                    "adapter": adapter.name,
                    "device": device,
                    "dtype": dtype,
                    "mode": mode,
                    "gamma": g,
                    "target": y,
                    "alpha": v.alpha if not isinstance(v.alpha, tuple) else list(v.alpha),
                    "x": [float(u) for u in x1],
                    "value_err_u": verr[part],
                    "grad_err_u": gerr[part],
                }
            )
    return out


def _errs(got: Any, exact: np.ndarray, scale: np.ndarray, dtype: str, n: int) -> list[float | None]:
    if got is None or np.shape(got) != exact.shape:
        return [None] * n
    err = error_in_u(np.asarray(got, dtype=np.float64), exact, scale, dtype)
    return [grading.err_json(float(e)) for e in err]


def all_sweeps(suite: Any) -> list[dict[str, Any]]:
    """The sweeps of every combination that ran; at --focal-depth quick not of the compiled mode,
    whose two new shapes would cost two more compilations (seconds each) per dtype."""
    by_name = {a.name: a for a in suite.adapters}
    out: list[dict[str, Any]] = []
    for name, device, dtype, mode in sorted(suite.combos_run):
        if mode != "eager" and suite.o.depth == "quick":
            continue
        adapter = by_name.get(name)
        if adapter is not None:
            out.extend(sweep_one(suite, adapter, device, dtype, mode))
    return out
