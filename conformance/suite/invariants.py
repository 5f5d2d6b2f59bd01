"""Invariants: identities an implementation must satisfy with *itself*, evaluated twice or more.

Each invariant builds its evaluations from seeded inputs rounded to the dtype (so that the
identity holds exactly between the rounded inputs: -x and 0 - x are exact), runs them all on
the same adapter, and compares one side with the other.  The reference supplies only the
*scale* of the error (|loss| or the gradient scale, from ``reference.float64``), never a value.

Grading: both sides carry the error the grade allows, so the difference may reach twice the
budget in an implementation that passes every value check; the invariant's error is therefore
half the difference, in u of the dtype at the reference scale, graded with the same budget
(gamma = the largest gamma involved, n = the number of terms reduced).  An implementation at a
grade passes its invariants at that grade; a broken identity (wrong alpha side, a reduction
that divides by the wrong count, a detached gradient) does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.conformance.suite.cases import Evaluation, InvariantCase, log_uniform_logits, round_to
from focalspec.conformance.suite.grading import Measure, expected, measure, measure_grad, measure_value
from focalspec.reference.rounding import round_mpf
from focalspec.spec.tolerance import budget
from focalspec.spec.variant import Variant

Outputs = list[Any]  # adapters.base.Output, one per evaluation


def evaluations(inv: InvariantCase, dtype: str) -> list[Evaluation]:
    """The calls the invariant needs, in the dtype (inputs exact there)."""
    rng = np.random.default_rng(inv.seed)
    n = inv.n
    v = inv.variant
    p = inv.params
    x = round_to(log_uniform_logits(rng, n), dtype)
    ones, zeros = np.ones(n), np.zeros(n)
    hard = rng.integers(0, 2, size=n).astype(np.float64)
    if inv.kind == "symmetry":
        a = p["alpha"]
        return [Evaluation(v, x, ones), Evaluation(v.with_(alpha=None if a is None else 1.0 - a), -x, zeros)]
    if inv.kind == "alpha":
        return [Evaluation(v, x, hard), Evaluation(v.with_(alpha=None), x, hard)]
    if inv.kind == "gamma0_bce":
        return [Evaluation(v, x, zeros), Evaluation(v, x, ones)]
    if inv.kind == "gamma0_linear":
        t = round_to(rng.random(n), dtype)
        return [Evaluation(v, x, t), Evaluation(v, x, ones), Evaluation(v, x, zeros)]
    if inv.kind == "softmax_c2":
        cls = rng.integers(0, 2, size=n)
        rows = np.stack([np.zeros(n), x], axis=-1)
        a = p["alpha"]
        sig = Variant(gamma=v.gamma, alpha=a)
        pos = cls == 1
        return [
            Evaluation(v, rows, cls.astype(np.int64)),
            Evaluation(sig, x[pos], ones[pos]),
            Evaluation(sig.with_(alpha=None if a is None else 1.0 - a), x[~pos], zeros[~pos]),
        ]
    if inv.kind == "monotone":
        return [Evaluation(v.with_(gamma=float(g)), x, hard) for g in p["gammas"]]
    if inv.kind == "reduction":
        shape = (max(1, n // 8), 8)
        x2, t2 = x[: shape[0] * 8].reshape(shape), hard[: shape[0] * 8].reshape(shape)
        return [Evaluation(v, x2, t2), Evaluation(v.with_(reduction="none"), x2, t2)]
    if inv.kind == "normalized_nopos":
        return [Evaluation(v, x, zeros), Evaluation(v.with_(reduction="sum"), x, zeros)]
    raise ValueError(f"unknown invariant kind {inv.kind!r}")


def _scale(ev: Evaluation, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(|value|, gradient scale) of the reference at this evaluation: the error's denominator
    (mpmath: a scale lost to underflow in a float64 evaluation would inflate the error)."""
    exp = expected(ev.variant, ev.inputs, ev.targets, dtype, "mp")
    return np.abs(exp.value), exp.grad_scale


def compare(
    inv: InvariantCase, evals: list[Evaluation], outs: Outputs, dtype: str, required: str
) -> tuple[Measure, Measure | None]:
    """(value measure, gradient measure or None) of the identity, errors halved (module doc)."""
    fn = _COMPARE[inv.kind]
    mv, mg = fn(inv, evals, outs, dtype, required)
    for m in (mv, mg):
        if m is not None and not m.passed:
            m.extra["evals"] = against_reference(m.which, evals, outs, dtype, required)
    return mv, mg


def against_reference(
    which: str, evals: list[Evaluation], outs: Outputs, dtype: str, required: str
) -> list[dict[str, Any]]:
    """Each evaluation of a broken identity graded on its own against the exact values at its
    dtype-rounded inputs: what the cause is read from (``causes.for_measures``).  The twin call is
    no reference: a NaN or a cancellation in it must be named as what it is, not as the other
    side's convention."""
    recs = []
    for ev, out in zip(evals, outs, strict=True):
        raw = out.loss if which == "value" else out.grad
        if raw is None:
            continue
        exp = expected(ev.variant, ev.inputs, ev.targets, dtype, "mp")
        got = np.asarray(raw, dtype=np.float64)
        if got.shape != (exp.value if which == "value" else exp.grad).shape:
            continue
        grade = measure_value if which == "value" else measure_grad
        m = grade(got, exp, ev.variant, ev.inputs, ev.targets, dtype, required)
        sim = None
        if out.loss is not None and np.shape(out.loss) == exp.value.shape:
            sim = (np.asarray(out.loss, dtype=np.float64), exp.value)
        recs.append({"variant": ev.variant.to_dict(), "which": which, "x": ev.inputs, "t": ev.targets, "got": got,
                     "exact": exp.value if which == "value" else exp.grad, "err": m.err,
                     "limit": getattr(m.budget, required), "sim": sim})  # fmt: skip
    return recs


def _grade(
    which: str,
    lhs: np.ndarray,
    rhs: np.ndarray,
    scale: np.ndarray,
    dtype: str,
    gamma: float,
    n_red: int,
    required: str,
    describe: Callable[[int], dict[str, Any]],
) -> Measure:
    bud = budget(dtype, gamma, n_red)
    lhs = np.asarray(lhs, dtype=np.float64)
    rhs = np.asarray(rhs, dtype=np.float64)
    m = measure(which, lhs, rhs, scale, dtype, bud, required, describe, halve=True)
    return m


def _elementwise(x: np.ndarray, t: np.ndarray) -> Callable[[int], dict[str, Any]]:
    def loc(i: int) -> dict[str, Any]:
        idx = np.unravel_index(i, x.shape)
        return {"index": [int(k) for k in idx], "input": float(x[idx]), "target": float(t[idx])}

    return loc


def _cmp_symmetry(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    e0 = evals[0]
    sv, sg = _scale(e0, dtype)
    g = float(inv.variant.gamma)
    loc = _elementwise(e0.inputs, e0.targets)
    mv = _grade("value", outs[0].loss, outs[1].loss, sv, dtype, g, 1, required, loc)
    mg = _grade("grad", outs[0].grad, -outs[1].grad, sg, dtype, g, 1, required, loc)
    return mv, mg


def _alpha_t(alpha: float | None, t: np.ndarray) -> np.ndarray:
    return np.ones_like(t) if alpha is None else alpha * t + (1.0 - alpha) * (1.0 - t)


def _cmp_alpha(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    e0 = evals[0]
    w = _alpha_t(e0.variant.alpha, e0.targets)
    sv, sg = _scale(e0, dtype)
    g = float(inv.variant.gamma)
    loc = _elementwise(e0.inputs, e0.targets)
    mv = _grade("value", outs[0].loss, w * outs[1].loss, sv, dtype, g, 1, required, loc)
    mg = _grade("grad", outs[0].grad, w * outs[1].grad, sg, dtype, g, 1, required, loc)
    return mv, mg


def _cmp_gamma0_bce(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    a = evals[0].variant.alpha
    w0, w1 = (1.0, 1.0) if a is None else (1.0 - a, a)
    x = evals[0].inputs
    s0v, s0g = _scale(evals[0], dtype)
    s1v, s1g = _scale(evals[1], dtype)
    loc = _elementwise(x, evals[0].targets)
    lhs_v = outs[0].loss / w0 - outs[1].loss / w1
    mv = _grade("value", lhs_v, x, s0v / w0 + s1v / w1, dtype, 0.0, 2, required, loc)
    lhs_g = outs[0].grad / w0 - outs[1].grad / w1
    mg = _grade("grad", lhs_g, np.ones_like(x), s0g / w0 + s1g / w1, dtype, 0.0, 2, required, loc)
    return mv, mg


def _cmp_gamma0_linear(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    t = evals[0].targets
    x = evals[0].inputs
    s1v, s1g = _scale(evals[1], dtype)
    s2v, s2g = _scale(evals[2], dtype)
    loc = _elementwise(x, t)
    rhs_v = t * outs[1].loss + (1.0 - t) * outs[2].loss
    mv = _grade("value", outs[0].loss, rhs_v, t * s1v + (1.0 - t) * s2v, dtype, 0.0, 2, required, loc)
    rhs_g = t * outs[1].grad + (1.0 - t) * outs[2].grad
    mg = _grade("grad", outs[0].grad, rhs_g, t * s1g + (1.0 - t) * s2g, dtype, 0.0, 2, required, loc)
    return mv, mg


def _cmp_softmax_c2(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    e0 = evals[0]
    rows, cls = e0.inputs, e0.targets
    pos = cls == 1
    n = rows.shape[0]
    rhs_v = np.empty(n)
    rhs_v[pos], rhs_v[~pos] = outs[1].loss, outs[2].loss
    sig_g = np.empty(n)
    sig_g[pos], sig_g[~pos] = outs[1].grad, outs[2].grad
    rhs_g = np.stack([-sig_g, sig_g], axis=-1)
    sv, sg = _scale(e0, dtype)
    g = float(inv.variant.gamma)

    def loc_row(i: int) -> dict[str, Any]:
        return {"index": [int(i)], "input": [0.0, float(rows[i, 1])], "target": int(cls[i])}

    def loc_el(i: int) -> dict[str, Any]:
        r, j = np.unravel_index(i, rows.shape)
        return {"index": [int(r), int(j)], "input": float(rows[r, j]), "target": 1.0 if int(cls[r]) == j else 0.0}

    mv = _grade("value", outs[0].loss, rhs_v, sv, dtype, g, 2, required, loc_row)
    mg = _grade("grad", outs[0].grad, rhs_g, sg, dtype, g, 2, required, loc_el)
    return mv, mg


def _cmp_monotone(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    vals = np.stack([np.asarray(o.loss, dtype=np.float64) for o in outs])
    scales = np.stack([_scale(e, dtype)[0] for e in evals])
    with np.errstate(invalid="ignore"):
        got = np.maximum(vals[1:], vals[:-1])  # equal to vals[:-1] unless the loss grew with gamma
    x, t = evals[0].inputs, evals[0].targets
    gammas = inv.params["gammas"]

    def loc(i: int) -> dict[str, Any]:
        k, j = np.unravel_index(i, got.shape)  # the loss at gammas[k + 1] exceeds the one at gammas[k]
        return {
            "index": [int(k), int(j)],
            "input": float(x[j]),
            "target": float(t[j]),
        }

    mv = _grade("value", got, vals[:-1], scales[:-1], dtype, float(max(gammas)), 1, required, loc)
    return mv, None


def _cmp_reduction(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    e0 = evals[0]
    red = e0.variant.reduction
    per = np.asarray(outs[1].loss, dtype=np.float64)
    total = math.fsum(per.ravel().tolist())
    npos = int(np.count_nonzero(e0.targets == 1))
    count = per.size if red == "mean" else (max(1, npos) if red == "normalized" else 1)
    sv, sg = _scale(e0, dtype)
    g = float(e0.variant.gamma)
    n_red = int(per.size)

    def loc_scalar(i: int) -> dict[str, Any]:
        return {"index": [], "input": f"<{per.size} elements reduced>", "target": None}

    reduced = total / count
    rounded = round_mpf(reduced, dtype)
    if not math.isfinite(rounded):  # beyond the dtype's range: the rounded value is +-inf
        reduced = rounded
    mv = _grade("value", np.asarray(outs[0].loss), np.asarray(reduced), sv, dtype, g, n_red, required, loc_scalar)
    mg = _grade(
        "grad", outs[0].grad, outs[1].grad / count, sg, dtype, g, 1, required, _elementwise(e0.inputs, e0.targets)
    )
    return mv, mg


def _cmp_normalized_nopos(inv, evals, outs, dtype, required):  # type: ignore[no-untyped-def]
    e0 = evals[0]
    sv, sg = _scale(e0, dtype)
    g = float(e0.variant.gamma)
    n_red = int(e0.inputs.size)

    def loc_scalar(i: int) -> dict[str, Any]:
        return {"index": [], "input": f"<{n_red} elements reduced>", "target": None}

    mv = _grade("value", np.asarray(outs[0].loss), np.asarray(outs[1].loss), sv, dtype, g, n_red, required, loc_scalar)
    mg = _grade("grad", outs[0].grad, outs[1].grad, sg, dtype, g, 1, required, _elementwise(e0.inputs, e0.targets))
    return mv, mg


_COMPARE: dict[str, Callable[..., tuple[Measure, Measure | None]]] = {
    "symmetry": _cmp_symmetry,
    "alpha": _cmp_alpha,
    "gamma0_bce": _cmp_gamma0_bce,
    "gamma0_linear": _cmp_gamma0_linear,
    "softmax_c2": _cmp_softmax_c2,
    "monotone": _cmp_monotone,
    "reduction": _cmp_reduction,
    "normalized_nopos": _cmp_normalized_nopos,
}

NEEDS_GRAD: dict[str, bool] = {k: k != "monotone" for k in _COMPARE}
