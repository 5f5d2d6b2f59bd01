"""Causes of failing checks (SPEC.md §10.7): from "it fails" to "why, and how to fix it".

A failing check is classified from its *measured evidence* only -- the failing elements'
inputs, targets, expected and got values and errors in units of roundoff, the dtype, the
variant's parameters, the failure tier and the isolation layer's ``fault`` -- never from the
adapter's name.  Each failing element is explained by the first rule that fits it; a check
takes the most serious cause among its elements (``PRIORITY``) and names the smallest input
(|x| nearest 0: where the error starts) that shows it.  A check no rule explains is
``unclassified``, and counted as such.

Evidence comes either from the full arrays of a check while it runs (``from_arrays``, used by
the runner) or, offline, from a results-JSON entry's worst element (``from_entry``: coarser,
one element).  The taxonomy, each cause's explanation and its stable-form fix: ``CAUSES``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from focalspec.reference.rounding import get_format


@dataclass(frozen=True)
class Cause:
    name: str
    title: str
    explanation: str
    fix: str
    spec: str

    @property
    def short(self) -> str:
        """A label that fits a matrix cell."""
        return SHORT.get(self.name, self.name)


SHORT = {"fault": "fault", "nonfinite_at_finite": "NaN@finite", "convention": "convention",
         "low_precision_compute": "low prec.", "clip_epsilon": "clip/ε", "one_minus_p_cancellation": "1−p",
         "bce_cancellation": "BCE canc.", "underflow_flush": "flush 0", "nonfinite_input_policy": "±∞ input",
         "unclassified": "unclassified"}  # fmt: skip


CAUSES: dict[str, Cause] = {c.name: c for c in (
    Cause("fault", "raised, hung, crashed or wrong shape",
          "The call produced no gradable result: it raised, crashed the worker, hung past the timeout, "
          "blew the memory limit, returned the wrong shape or dtype, or broke a contract (mutated its "
          "inputs, non-deterministic). The isolation layer names which.",
          "Fix the code path named in the message; support the variant or reject it up front with a clear error.",
          "§10.6"),
    Cause("nonfinite_at_finite", "NaN/Inf at a finite input",
          "NaN or ±Inf value or gradient where the input is finite and the exact result is finite. "
          "Typical: autodiff of (1 − p_t)^γ gives γ·0^(γ−1)·0 = ∞·0 = NaN for 0 < γ < 1 once 1 − p_t "
          "rounds to 0; −log(σ(x)) = −log(0) = ∞; exp overflow. A training hazard: one such element "
          "poisons the whole batch's gradient.",
          "Evaluate 1 − p_t as σ(−s·x) and −log p_t as softplus(−s·x); give (1 − p_t)^γ a finite "
          "derivative (custom backward, or exp(−γ·softplus(s·x))).",
          "§1, §4, §8"),
    Cause("convention", "different convention or formula",
          "Wrong by a constant factor or in form across elements, at moderate inputs where no rounding "
          "effect can explain it: α on the wrong class, another soft-target form, another reduction "
          "normaliser (mean over rows, sum / N instead of max(1, #positives)), a detached factor.",
          "Declare the convention the implementation follows (SPEC §9 options) or compute the spec's form.",
          "§2, §4, §7, §9"),
    Cause("low_precision_compute", "computed in a lower precision",
          "float64 inputs computed in float32 (errors ~2^-24 relative, results exactly representable in "
          "float32, float32 underflow), or float16/bfloat16 computed in the half type itself, so the "
          "roundings of σ, log and the power are those of an 8- or 11-bit significand.",
          "Compute in the input dtype (float64 stays float64); compute half types in float32 and round once.",
          "§10.1, §10.3"),
    Cause("clip_epsilon", "clip or epsilon",
          "The result equals the loss at a clipped probability or logit, or with ε added inside the log "
          "(−log(p + ε), clip(p, ε, 1 − ε), clamp(x, −L, L)): the loss saturates at −log ε, the gradient "
          "is 0 beyond the clip, finite where the true loss is +∞.",
          "Work on logits with softplus/log-sigmoid, which need no ε; if a clip is intended declare it "
          "(--clip-eps, --clip-scope).",
          "§3"),
    Cause("one_minus_p_cancellation", "1 − p_t formed as 1 − p",
          "For a confident correct prediction (t = 1, x ≫ 0 or t = 0, x ≪ 0) 1 − p_t is formed by "
          "subtracting p from 1: the absolute error u of p becomes a relative error u·e^{|x|} of 1 − p_t, "
          "amplified γ-fold by the power, and 1 − p_t = 0 once σ(x) rounds to 1 (x ≳ 16.6 float32).",
          "1 − p_t = σ(−s·x) with s = 2t − 1, or t·σ(−x) + (1 − t)·σ(x) for soft targets.",
          "§1, §2.1"),
    Cause("bce_cancellation", "cross-entropy formed as log(σ) / log(1 − σ)",
          "The cross-entropy is formed from a rounded probability: log(1 − σ(x)) or log(σ(x)) loses "
          "relative precision like e^{|x|} where the probability is near 1 (for t = 0, x < 0 the loss "
          "log1p(e^x) is tiny and is computed as a difference of O(1) numbers), and is −log(0) = ∞ "
          "once σ saturates.",
          "BCE with logits: max(x, 0) − x·t + log1p(e^{−|x|}), i.e. t·softplus(−x) + (1 − t)·softplus(x); "
          "on probabilities log1p(−p) for log(1 − p).",
          "§1, §2.1, §3"),
    Cause("underflow_flush", "flushed to 0",
          "0 where the exact result is a normal number of the dtype: an intermediate (e^{−|x|}, a power "
          "of 1 − p_t, a product of small factors) underflowed although the result itself is representable.",
          "Keep small quantities in log space (exp(γ·log σ(−s·x) + log softplus(−s·x))) or order the "
          "products so that no intermediate leaves the dtype's range.",
          "§1.1, §10.1"),
    Cause("nonfinite_input_policy", "±∞ / NaN input policy",
          "Only ±∞ or NaN inputs (or probabilities outside [0, 1], empty tensors) disagree: the "
          "implementation returns NaN where the spec gives the limit (FL(+∞, t = 1) = 0), or does not "
          "propagate NaN. Extended tier: reported, not required by default.",
          "Return the limits of SPEC §1.1 (multiply by 0 through where(), not 0·∞) and propagate NaN.",
          "§1.1, §10.5"),
    Cause("unclassified", "unclassified",
          "No rule explains the evidence: a defect of its own, or a gap in the taxonomy.",
          "Read the worst element and the reproducer.",
          "§10.7"),
)}  # fmt: skip

# most serious first: a check takes the first of these among its elements' causes
PRIORITY = ("fault", "nonfinite_at_finite", "convention", "low_precision_compute", "clip_epsilon",
            "one_minus_p_cancellation", "bce_cancellation", "underflow_flush", "nonfinite_input_policy",
            "unclassified")  # fmt: skip
MAX_ELEMENTS = 48  # failing elements examined per check: the smallest |x| first, ...
MAX_NONFINITE = 16  # ... and this many more with a NaN/Inf result, wherever they lie
EPSILONS = (1e-7, 1e-6, 1e-8, 1e-5, 1e-4, 1e-10, 1e-12, 1e-15, 2.0**-23, 2.0**-52, 1.1754943508222875e-38)
LOGIT_CLAMPS = (10.0, 15.0, 16.0, 20.0, 30.0, 50.0, 80.0, 88.0, 100.0)
_FAULT_WORDS = re.compile(r" raised |did not return|has shape|returned shape|returned a loss of shape|"
                          r"no gradient|returned torch\.|returned a |not run|crashed|exited|memory limit")  # fmt: skip


@dataclass
class Element:
    """One failing element: input x (None: a reduced value), target, expected, got, error in u."""

    x: float | None
    t: float | None
    expected: float
    got: float
    err_u: float
    which: str  # value | grad
    margin: float | None = None  # softmax: z_target - max of the other logits of the element's row
    row: tuple[float, ...] | None = None  # softmax value: the row's logits (target index in ``t``)


@dataclass
class Evidence:
    check: str  # value | grad | invariant | contract
    dtype: str
    variant: dict[str, Any]
    failure_tier: str | None = None
    fault: str | None = None
    message: str = ""
    elements: list[Element] = field(default_factory=list)
    arrays: dict[str, np.ndarray] | None = None  # x, t, got, exact of a value check (for simulations)
    reduced_bound: float | None = None  # a reduced value: the largest error (u) rounding of its elements explains


@dataclass
class Verdict:
    cause: str
    detail: str
    example: dict[str, Any] | None = None


# ----------------------------------------------------------------------------- evidence


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def from_entry(entry: dict[str, Any]) -> Evidence:
    """Evidence from a results-JSON test entry: its worst element (and ``cause_example`` if any)."""
    els = []
    for w in (entry.get("worst"), entry.get("cause_example")):
        if not isinstance(w, dict):
            continue
        e, g = _num(w.get("expected")), _num(w.get("got"))
        if e is None or g is None:
            continue
        err = _num(w.get("err_u"))
        row, tgt = w.get("input"), w.get("target")
        margin = None
        if isinstance(row, list) and isinstance(tgt, int) and 0 <= tgt < len(row) and len(row) > 1:
            zs = [_num(z) for z in row]
            if all(z is not None for z in zs):
                margin = zs[tgt] - max(z for j, z in enumerate(zs) if j != tgt)  # type: ignore[operator,type-var]
        which = str(w.get("which") or entry.get("check"))
        rowv = tuple(float(z) for z in row) if margin is not None else None  # type: ignore[union-attr,arg-type]
        els.append(Element(_num(w.get("input")), _num(w.get("target")), e, g,
                           math.inf if err is None else err, which, margin, rowv))  # fmt: skip
    return Evidence(
        check=str(entry.get("check")),
        dtype=str(entry.get("dtype")),
        variant=dict(entry.get("variant") or {}),
        failure_tier=entry.get("failure_tier") or entry.get("tier"),
        fault=entry.get("fault"),
        message=str(entry.get("message") or ""),
        elements=els,
    )


def from_arrays(
    check: str, dtype: str, variant: dict[str, Any], which: str, x: np.ndarray, t: np.ndarray,
    got: np.ndarray, exact: np.ndarray, err: np.ndarray, limit: float, failure_tier: str | None,
    sim: tuple[np.ndarray, np.ndarray] | None = None,
) -> Evidence:  # fmt: skip
    """Evidence from a value or gradient check's arrays: every failing element (up to MAX_ELEMENTS).
    ``sim``: (got, exact) per-element loss values of the same call (the gradient check's too),
    compared with simulated naive forms."""
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(err <= limit)
    got = np.broadcast_to(np.asarray(got, dtype=np.float64), err.shape)
    exact = np.broadcast_to(np.asarray(exact, dtype=np.float64), err.shape)
    elementwise = err.shape == np.shape(x) and variant.get("activation") == "sigmoid"
    idx = np.flatnonzero(bad)
    els: list[Element] = []
    if elementwise:
        xf, tf = np.ravel(x), np.ravel(np.broadcast_to(t, np.shape(x)))
        with np.errstate(invalid="ignore"):
            order = np.argsort(np.where(np.isnan(xf[idx]), np.inf, np.abs(xf[idx])), kind="stable")
        ordered = idx[order]
        nonfin = ordered[MAX_ELEMENTS:][~np.isfinite(got.flat[ordered[MAX_ELEMENTS:]])][:MAX_NONFINITE]
        for i in np.concatenate([ordered[:MAX_ELEMENTS], nonfin]).astype(np.int64):
            els.append(Element(float(xf[i]), float(tf[i]), float(exact.flat[i]), float(got.flat[i]),
                               float(err.flat[i]), which))  # fmt: skip
    else:  # a reduced value or softmax rows: no single input per element
        margins = _softmax_margins(x, t, err.shape) if variant.get("activation") == "softmax" else None
        rows = np.reshape(np.asarray(x, dtype=np.float64), (-1, np.shape(x)[-1])) if margins is not None else None
        for i in idx[:MAX_ELEMENTS]:
            rowv, tv = None, None
            if rows is not None and err.shape == np.shape(x)[:-1] and rows.shape[1] <= 64:
                rowv, tv = tuple(float(z) for z in rows[i]), float(np.ravel(t)[i])
            els.append(Element(None, tv, float(exact.flat[i]), float(got.flat[i]), float(err.flat[i]), which,
                               None if margins is None else float(margins.flat[i]), rowv))  # fmt: skip
    bound = None
    if not elementwise and variant.get("activation") == "sigmoid" and np.size(x):
        # a sum of non-negative terms is no less accurate, relatively, than its worst term
        xf, tf = np.ravel(x), np.ravel(np.broadcast_to(t, np.shape(x)))
        g = float(variant.get("gamma") or 0.0)
        kind = str(variant.get("input_kind") or "logits")
        fin = np.isfinite(xf)
        if fin.all():
            bound = max(_rounding_bound(Element(float(a), float(b), 0.0, 0.0, 0.0, which), g, kind)
                        for a, b in zip(xf[fin], tf[fin], strict=True))  # fmt: skip
    arrays = None
    if elementwise and sim is not None:  # the values of the failing elements, for ``_simulated``
        sg, se = (np.ravel(np.broadcast_to(np.asarray(a, dtype=np.float64), np.shape(x))) for a in sim)
        arrays = {"x": np.ravel(x)[idx], "t": np.ravel(np.broadcast_to(t, np.shape(x)))[idx],
                  "got": sg[idx], "exact": se[idx]}  # fmt: skip
    return Evidence(check, dtype, variant, failure_tier, None, "", els, arrays, bound)


def for_measures(check: str, dtype: str, variant: dict[str, Any], bad: list[Any], failure_tier: str | None) -> Verdict:
    """The runner's entry: the cause of a graded failure from its failing ``grading.Measure``s
    (full arrays where the measure carries them in ``extra``, else its worst element)."""
    ev = Evidence(check, dtype, variant, failure_tier)
    for m in bad:
        x = m.extra.get("x")
        limit = getattr(m.budget, m.required)
        if x is not None:
            sim = m.extra.get("loss_got"), m.extra.get("loss_exact")
            sub = from_arrays(check, dtype, variant, m.which, x, m.extra["t"], m.extra["got"], m.extra["exact"],
                              m.err, limit, failure_tier, None if sim[0] is None else sim)  # fmt: skip
            ev.elements += sub.elements
            ev.arrays = ev.arrays or sub.arrays
            ev.reduced_bound = ev.reduced_bound or sub.reduced_bound
        elif m.worst:
            ev.elements += from_entry({"worst": {**m.worst, "which": m.which}, "check": check}).elements
    ev.elements.sort(key=lambda e: math.inf if e.x is None or math.isnan(e.x) else abs(e.x))
    return classify(ev)


def _softmax_margins(x: np.ndarray, t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Per element of ``shape`` (rows, or rows x classes): z_target - max other z of its row, for
    class-index targets (the confident-correct margin); None otherwise."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t)
    if x.ndim < 1 or t.shape != x.shape[:-1] or x.shape[-1] < 2:
        return None
    c = np.clip(t.astype(np.int64), 0, x.shape[-1] - 1)
    zt = np.take_along_axis(x, c[..., None], axis=-1)[..., 0]
    other = np.where(np.arange(x.shape[-1]) == c[..., None], -np.inf, x).max(axis=-1)
    m = zt - other
    if shape == m.shape:
        return m
    if shape == x.shape:
        return np.broadcast_to(m[..., None], x.shape)
    return None


# ----------------------------------------------------------------------------- rules


def _rel(e: Element) -> float:
    return abs(e.got - e.expected) / abs(e.expected) if e.expected else math.inf


def _simple_ratio(e: Element, dtype: str) -> Fraction | None:
    """got / expected as p/q (q <= 64) when it is one to the dtype's accuracy, and not 1."""
    if not e.expected or not e.got or not (math.isfinite(e.got) and math.isfinite(e.expected)):
        return None
    r = e.got / e.expected
    if r <= 0 or abs(r - 1.0) < 1e-4:
        return None
    tol, den = {"float64": (1e-9, 1024), "float32": (2e-6, 128)}.get(dtype, (0.0, 0))
    if not den:
        return None
    f = Fraction(r).limit_denominator(den)
    if f.denominator > 8 and abs(r - 1.0) < 0.02:  # 118/117: a coincidence, not a convention
        return None
    return f if f.numerator <= 4096 and abs(float(f) - r) <= tol * r else None


def _long(v: float) -> bool:
    """A number with more than 8 significant bits (0.25 or 5.0 are representable by chance)."""
    m = math.frexp(v)[0] * 2.0**8
    return v != 0.0 and m != int(m)


def _correct_side(e: Element, kind: str) -> bool | None:
    """True for a confident correct prediction of a hard target, False for a wrong one, None otherwise."""
    if e.x is None or e.t not in (0.0, 1.0):
        return None
    s = 1.0 if e.t == 1.0 else -1.0
    z = e.x - 0.5 if kind == "probs" else e.x
    return s * z > 0


def _margin(e: Element, kind: str) -> float:
    """|x| in logit units (probabilities: |logit p|, the e^{|x|} = 1/min(p, 1 - p) scale)."""
    if e.x is None:
        return 0.0
    if kind != "probs":
        return abs(e.x)
    q = min(e.x, 1.0 - e.x)
    return math.inf if q <= 0 else -math.log(q)


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _log(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf


def _clip_candidates(v: dict[str, Any], t: float) -> list[tuple[str, Any, Any]]:
    """(label, loss as a function of the input) for each clip / epsilon / clamp a real
    implementation uses (canonical sigmoid form; the factor 1 - p_t always formed stably)."""
    g = float(v.get("gamma") or 0.0)
    a = v.get("alpha")
    at = 1.0 if a is None else a * t + (1 - a) * (1 - t)
    probs = v.get("input_kind") == "probs"

    def parts(z: float) -> tuple[float, float, float]:  # p, 1 - p, 1 - p_t: each accurate
        if probs:
            p, q = z, 1.0 - z
        else:
            p, q = _sig(z), _sig(-z)
        return p, q, t * q + (1 - t) * p

    def fl(m: float, ce: float) -> float:
        return at * (m**g if g else 1.0) * ce

    def clipped_ce(p: float, q: float, eps: float) -> float:
        pc, qc = min(max(p, eps), 1 - eps), min(max(q, eps), 1 - eps)
        lp = math.log1p(-qc) if pc > 0.5 else _log(pc)
        lq = math.log1p(-pc) if qc > 0.5 else _log(qc)
        return -t * lp - (1 - t) * lq

    out: list[tuple[str, Any]] = []
    for eps in EPSILONS:
        def active(z: float, eps: float = eps) -> bool:
            p, q, _ = parts(z)
            return min(p, q) < eps

        def clip_all(z: float, eps: float = eps) -> float:
            p, q, _ = parts(z)
            pc, qc = min(max(p, eps), 1 - eps), min(max(q, eps), 1 - eps)
            return fl(t * qc + (1 - t) * pc, clipped_ce(p, q, eps))

        def clip_ce(z: float, eps: float = eps) -> float:
            p, q, m = parts(z)
            return fl(m, clipped_ce(p, q, eps))

        def add_eps(z: float, eps: float = eps) -> float:
            p, q, m = parts(z)  # -log(p + eps) = -log1p(eps - q): no cancellation of its own
            return fl(m, -t * math.log1p(eps - q) - (1 - t) * math.log1p(eps - p))

        out += [(f"p clipped to [{eps:.3g}, 1 - {eps:.3g}]", clip_all, active),
                (f"p clipped to [{eps:.3g}, 1 - {eps:.3g}] inside the log", clip_ce, active),
                (f"{eps:.3g} added inside the log", add_eps, lambda z: True)]  # fmt: skip
    if not probs:
        for lim in LOGIT_CLAMPS:
            def clamp(z: float, lim: float = lim) -> float:
                zc = min(max(z, -lim), lim)
                _, _, m = parts(zc)
                return fl(m, t * _softplus(-zc) + (1 - t) * _softplus(zc))

            out.append((f"logits clamped to [-{lim:g}, {lim:g}]", clamp, lambda z, lim=lim: abs(z) > lim))
    return out


def _softmax_clip_match(e: Element, v: dict[str, Any], dtype: str) -> str | None:
    """Softmax value rows (class-index target): the clip of p_target to [ε, 1 − ε], with the
    bound as the dtype rounds it (Keras clips in float32: 1 − 1e−7 → 1 − 2^−23), reproduces got."""
    if e.row is None or e.t is None or e.which != "value" or not e.expected:
        return None
    c = int(e.t)
    zs = np.asarray(e.row, dtype=np.float64)
    zmax = zs.max()
    w = np.exp(zs - zmax)
    p = float(w[c] / w.sum())
    q = float(np.delete(w, c).sum() / w.sum())  # 1 - p_target, accurate
    g = float(v.get("gamma") or 0.0)

    def loss(pp: float, qq: float) -> float:
        return qq**g * -math.log(pp) if pp < 0.5 else qq**g * -math.log1p(-qq)

    declared = v.get("clip_eps")  # the spec's loss of a declared clip has the exact bounds
    if declared:
        d = float(declared)
        exact = loss(min(max(p, d), 1 - d), min(max(q, d), 1 - d))
    else:
        exact = loss(p, q)
    if not exact:
        return None
    r_got = e.got / e.expected
    tol = min(0.1 * abs(r_got - 1.0), 0.05 * abs(r_got)) + 16 * get_format(dtype).unit_roundoff * abs(r_got)
    npt = get_format(dtype).numpy_type
    for eps in EPSILONS:
        for rounded in (False, True):
            hi = float(np.asarray(1 - eps, dtype=npt)) if rounded else 1 - eps
            if not (p > hi or p < eps):
                continue
            qc = 1.0 - hi if p > hi else 1.0 - eps
            pc = hi if p > hi else eps
            cand = loss(pc, qc)
            if abs(cand / exact - r_got) <= tol:
                return f"p clipped to [{eps:.3g}, {hi!r}]" + (f" (1 - {eps:.3g} rounded to {dtype})" if rounded else "")
    return None


def _declared_clip_match(e: Element, v: dict[str, Any], dtype: str) -> str | None:
    """A declared clip (``clip_eps``) whose bounds the implementation forms in the dtype
    (1 − 1e−7 → 1 − 2^−23 in float32): got/expected equals the rounded bounds' loss over the exact ones'."""
    eps = v.get("clip_eps")
    if not eps or e.x is None or e.t is None or not math.isfinite(e.x) or e.which != "value" or not e.expected:
        return None
    eps = float(eps)
    npt = get_format(dtype).numpy_type
    lo, hi = float(np.asarray(eps, dtype=npt)), float(np.asarray(1 - eps, dtype=npt))
    if (lo, hi) == (eps, 1 - eps):
        return None
    t = e.t
    p = e.x if v.get("input_kind") == "probs" else _sig(e.x)
    q = 1.0 - e.x if v.get("input_kind") == "probs" else _sig(-e.x)
    if not (min(p, q) < max(eps, 1 - hi)):
        return None  # the clip does not act here
    g = float(v.get("gamma") or 0.0)
    scope_all = v.get("clip_scope", "all") != "ce"

    def loss(a: float, b: float) -> float:
        pc, qc = min(max(p, a), b), min(max(q, 1 - b), 1 - a)
        ce = -t * (math.log1p(-qc) if pc > 0.5 else _log(pc)) - (1 - t) * (math.log1p(-pc) if qc > 0.5 else _log(qc))
        m = t * qc + (1 - t) * pc if scope_all else t * q + (1 - t) * p
        return (m**g if g else 1.0) * ce

    try:
        base, cand = loss(eps, 1 - eps), loss(lo, hi)
    except (OverflowError, ValueError, ZeroDivisionError):
        return None
    if not base:
        return None
    r_got = e.got / e.expected
    tol = min(0.1 * abs(r_got - 1.0), 0.05 * abs(r_got)) + 16 * get_format(dtype).unit_roundoff * abs(r_got)
    if abs(cand / base - r_got) <= tol:
        return f"the declared clip's bound 1 - {eps:.3g} formed in {dtype} ({hi!r})"
    return None


def _exact_loss(v: dict[str, Any], t: float) -> Any:
    """The canonical loss as a function of the input, in float64 stable forms (for ratios)."""
    g = float(v.get("gamma") or 0.0)
    a = v.get("alpha")
    at = 1.0 if a is None else a * t + (1 - a) * (1 - t)
    if v.get("input_kind") == "probs":
        return lambda p: at * (t * (1 - p) + (1 - t) * p) ** g * (-t * _log(p) - (1 - t) * math.log1p(-p))
    return lambda z: at * (t * _sig(-z) + (1 - t) * _sig(z)) ** g * (t * _softplus(-z) + (1 - t) * _softplus(z))


def _clip_match(e: Element, v: dict[str, Any], dtype: str) -> str | None:
    """The clip/epsilon whose loss (or its derivative) reproduces ``got`` (canonical sigmoid).
    Compared as ratios to the unclipped loss, so a reduction's factor (1/n, 1/#positives) cancels."""
    if e.x is None or e.t is None or not math.isfinite(e.x) or v.get("activation") != "sigmoid":
        return None
    if v.get("soft_target", "canonical") != "canonical" or v.get("clip_eps") is not None or not e.expected:
        return None
    x, probs = e.x, v.get("input_kind") == "probs"
    if probs and not 0.0 < x < 1.0 and e.which == "grad":
        return None
    u = get_format(dtype).unit_roundoff
    h = 1e-7 * min(x, 1 - x) if probs else 1e-6 * max(1.0, abs(x))

    def at(f: Any) -> float:
        return f(x) if e.which == "value" else (f(x + h) - f(x - h)) / (2 * h)

    try:
        base = at(_exact_loss(v, e.t))
    except (OverflowError, ValueError, ZeroDivisionError):
        return None
    if not base or not math.isfinite(base):
        return None
    r_got = e.got / e.expected
    # the candidate must explain the error (90 % of it) and reproduce got (to 5 %, or exactly 0)
    tol = min(0.1 * abs(r_got - 1.0), 0.05 * abs(r_got)) + 16 * u * abs(r_got)
    for label, f, active in _clip_candidates(v, e.t):
        try:
            # only where the clip acts, on both sides of a difference quotient (no kink inside)
            if not (active(x) and (e.which == "value" or (active(x - h) and active(x + h)))):
                continue
            val = at(f) / base
        except (OverflowError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(val) and abs(val - r_got) <= tol:
            return label
    return None


def _rounding_bound(e: Element, gamma: float, kind: str) -> float:
    """The largest error (u) rounding can explain: u |x| in a quantity of size e^{-|x|} (hard
    targets: 1 - p, or terms of size |x| cancelling as in BCE-with-logits' (1 - t) x + max(-x, 0)),
    u / min(t, 1 - t) (soft targets: t x cancelling against x)."""
    k = 4.0 * max(gamma, 1.0)
    if e.t is not None and 0.0 < e.t < 1.0:
        return k / min(e.t, 1.0 - e.t) + 64.0
    m = _margin(e, kind)
    return k * (math.exp(min(m, 700.0)) + 1.0) * max(1.0, m) + 64.0


def _cancellation_fits(e: Element, dtype: str, gamma: float, kind: str) -> bool:
    """The error is what an absolute error of ~u in a quantity of size e^{-|x|} gives (it grows
    like e^{|x|}), or the result is 0 where that quantity rounds to 0."""
    fmt = get_format(dtype)
    m = _margin(e, kind)
    if e.x is None or m < 1.0:
        return False
    if e.got == 0.0:
        return bool(_correct_side(e, kind)) and m >= (fmt.precision - 2) * math.log(2.0)
    return e.err_u <= _rounding_bound(e, gamma, kind) and e.err_u >= 1e-4 * math.exp(min(m, 700.0))


def _simulated(ev: Evidence, dtype: str) -> str | None:
    """Value checks: which naive form -- 1 - fl(p) in the factor, or log(fl(p_t)) in the
    cross-entropy -- reproduces the failing values (σ rounded to the dtype, ±1 ulp), or None."""
    if ev.arrays is None or ev.variant.get("input_kind") == "probs":
        return None
    x, t, got, exact = (ev.arrays[k] for k in ("x", "t", "got", "exact"))
    g = float(ev.variant.get("gamma") or 0.0)
    hard = np.isin(t, (0.0, 1.0)) & np.isfinite(x) & np.isfinite(got) & (exact != 0) & (got != exact)
    if not hard.any() or g == 0:
        return None
    x, t, got, exact = x[hard], t[hard], got[hard], exact[hard]
    npt = get_format(dtype).numpy_type
    xl = x.astype(np.longdouble)
    s = np.where(t == 1, 1.0, -1.0).astype(np.longdouble)
    with np.errstate(all="ignore"):
        m_true = 1 / (1 + np.exp(s * xl))  # 1 - p_t
        ce_true = np.where(s * xl > 0, np.log1p(np.exp(-s * xl)), -s * xl + np.log1p(np.exp(s * xl)))
        pt = (1 / (1 + np.exp(-s * xl))).astype(npt).astype(np.float64)  # p_t rounded to the dtype
        ulp = np.exp2(np.floor(np.log2(np.where(pt > 0, pt, 1.0))) - (get_format(dtype).precision - 1))
        best = {"1p": np.full(x.shape, np.inf), "bce": np.full(x.shape, np.inf)}
        for k in (-1.0, -0.5, 0.0, 1.0):  # the implementation's σ may be an ulp off (below 1: half an ulp)
            p64 = np.minimum(pt + k * ulp, 1.0).astype(np.longdouble)
            ratio = exact / (m_true**g * ce_true)  # alpha_t
            for key, c in (("1p", (1 - p64) ** g * ce_true), ("bce", m_true**g * -np.log(p64))):
                d = np.abs(got - (ratio * c).astype(np.float64))
                best[key] = np.minimum(best[key], d)
    err = np.abs(got - exact)
    f1 = np.mean(best["1p"] <= 0.25 * err)
    f2 = np.mean(best["bce"] <= 0.25 * err)
    if max(f1, f2) < 0.5 or abs(f1 - f2) < 0.2:
        return None
    return "one_minus_p_cancellation" if f1 > f2 else "bce_cancellation"


def _element_cause(e: Element, ev: Evidence, simulated: str | None) -> tuple[str, str]:
    """(cause, why) of one failing element."""
    v, dtype = ev.variant, ev.dtype
    kind = str(v.get("input_kind") or "logits")
    gamma = float(v.get("gamma") or 0.0)
    fmt = get_format(dtype)
    finite_in = e.x is None or math.isfinite(e.x)
    if (e.x is not None and not finite_in) or (e.x is None and ev.failure_tier == "extended"):
        return "nonfinite_input_policy", ""
    if kind == "probs" and e.x is not None and not 0.0 <= e.x <= 1.0:
        return "nonfinite_input_policy", ""
    if not math.isfinite(e.got) and math.isfinite(e.expected):
        return "nonfinite_at_finite", ""
    if math.isfinite(e.got) and math.isinf(e.expected):
        return "clip_epsilon", "finite where the exact loss is infinite (a cap)"
    if math.isnan(e.got) and math.isinf(e.expected):
        return "nonfinite_at_finite", "NaN where the exact result is an infinity"
    if not math.isfinite(e.got):
        return "unclassified", "infinity of the wrong sign or NaN mismatch"
    ratio = _simple_ratio(e, dtype)
    # a power of two is also what 1 - p quantised to ulps gives (1 - fl(p) = k ulp): not a convention then
    pow2 = ratio is not None and math.log2(ratio).is_integer()
    if ratio is not None and not (pow2 and _correct_side(e, kind) and _cancellation_fits(e, dtype, gamma, kind)):
        return "convention", f"got = {ratio} × expected"
    rel = _rel(e)
    tiny32 = 0.0 < abs(e.got) < get_format("float32").smallest_normal  # a float32 subnormal
    in32 = dtype == "float64" and e.got == float(np.float32(e.got))
    if in32 and (rel <= 2.0**-20 or ((_long(e.got) or tiny32) and rel <= 0.5)):
        return "low_precision_compute", "float64 result exactly representable in float32"
    side = _correct_side(e, kind)
    fits = side is not None and _cancellation_fits(e, dtype, gamma, kind)
    # rounding explains it: an ε of the right size would too (ε/CE ~ ε e^|x| is a continuum), so
    # only what rounding cannot explain is tried against the clips; a 0 or a frozen value on the
    # wrong side is the clip's alone, and the check's other elements decide between them
    clip = None if fits else (_clip_match(e, v, dtype) or _declared_clip_match(e, v, dtype))
    if clip:
        return "clip_epsilon", clip
    if fits:
        if simulated:
            return simulated, "reproduced by the naive form with σ rounded to the dtype"
        if side and gamma > 0:
            return "one_minus_p_cancellation", "confident correct prediction, error grows like e^|x|"
        return "bce_cancellation", "error grows like e^|x|" + ("" if side else " on the wrong side (large loss)")
    if e.expected == 0.0 and abs(e.got) >= fmt.smallest_normal:
        return "convention", "nonzero where the exact loss is 0 (an element weighted by α_t = 0?)"
    bound = _rounding_bound(e, gamma, kind)
    if e.got == 0.0 and e.expected != 0.0 and abs(e.expected) >= fmt.smallest_normal:
        if abs(e.expected) < fmt.unit_roundoff:
            return "underflow_flush", "0 where the exact result is a normal number"
        if e.which == "grad":
            return "clip_epsilon", "gradient 0 where the exact one is not small: the zero derivative of a clip"
    if e.which == "grad" and abs(e.got) <= 1e-6 * abs(e.expected) and abs(e.expected) >= fmt.unit_roundoff:
        return "clip_epsilon", "the gradient vanishes where the exact one is not small: a clip's derivative"
        return "convention", "0 where the exact loss is not small"
    sclip = _softmax_clip_match(e, v, dtype) if v.get("activation") == "softmax" else None
    if sclip:
        return "clip_epsilon", sclip
    if e.x is None and e.margin is not None and e.margin > 1.0 and math.isfinite(e.margin):
        growth = math.exp(min(e.margin, 700.0))
        if e.err_u <= 4.0 * max(gamma, 1.0) * (growth + 1.0) * 4 + 64.0 and (e.got == 0.0 or e.err_u >= 1e-4 * growth):
            name = "one_minus_p_cancellation" if gamma > 0 else "bce_cancellation"
            return name, f"softmax row dominated by its target (margin {e.margin:.3g}): error grows like e^margin"
    moderate = e.x is not None and (abs(e.x) <= 4.0 if kind != "probs" else 0.02 <= e.x <= 0.98)
    if (moderate or e.x is None or e.err_u > bound) and rel > max(1e-3, 32 * fmt.unit_roundoff):
        where = "at a moderate input" if moderate else "in a reduced value" if e.x is None else "beyond rounding"
        return "convention", f"{rel:.3g} relative error {where}: another formula or normaliser"
    if e.x is None and e.margin is None and ev.reduced_bound is not None and e.err_u > ev.reduced_bound:
        return "convention", (f"{rel:.3g} relative error in a reduced value, beyond what rounding of its elements "
                              f"explains ({ev.reduced_bound:.3g} u): another formula")  # fmt: skip
    if dtype in ("float16", "bfloat16"):
        return "low_precision_compute", f"{dtype} computed in {dtype}"
    if dtype == "float64" and 2.0**-32 <= rel <= 2.0**-16:
        return "low_precision_compute", f"relative error {rel:.2g} ~ 2^-24: a float32 step (or constant) in float64"
    return "unclassified", ""


def classify(ev: Evidence) -> Verdict:
    """The cause of one failing check (see module docstring)."""
    if ev.fault or ev.check == "contract":
        return Verdict("fault", f"{ev.fault or 'contract'}: {_first(ev.message)}")
    if not ev.elements:  # nothing was graded: the call gave no usable result
        if ev.failure_tier == "extended" and not _FAULT_WORDS.search(ev.message):
            return Verdict("nonfinite_input_policy", f"at ±inf/NaN/empty inputs, {ev.dtype}: {_first(ev.message)}")
        return Verdict("fault", _first(ev.message))
    simulated = _simulated(ev, ev.dtype)
    found: dict[str, tuple[Element, str]] = {}
    for e in ev.elements:  # smallest |x| first: the first element of a cause is where it starts
        cause, why = _element_cause(e, ev, simulated)
        found.setdefault(cause, (e, why))
    cause = next(c for c in PRIORITY if c in found)
    e, why = found[cause]
    return Verdict(cause, describe(cause, e, ev, why), example(e, str(ev.variant.get("input_kind") or "logits")))


def _first(message: str) -> str:
    line = (message or "").strip().splitlines()
    text = line[0] if line else ""
    return text.split(": ", 1)[1][:160] if ": " in text else text[:160]


def _fmt(v: float | None) -> str:
    if v is None:
        return "?"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    return f"{v:.6g}"


def describe(cause: str, e: Element, ev: Evidence, why: str = "") -> str:
    """A short human line, e.g. 'NaN gradient at x=17.5 (finite, saturation tier), t=1, float32'."""
    what = "gradient" if e.which == "grad" else "value"
    if e.x is None:
        where = "in a reduced value"
    else:
        tier = ev.failure_tier or "?"
        fin = "finite" if math.isfinite(e.x) else "non-finite"
        where = f"at {'p' if ev.variant.get('input_kind') == 'probs' else 'x'}={_fmt(e.x)} ({fin}, {tier} tier)"
        if e.t is not None:
            where += f", t={_fmt(e.t)}"
    g = ev.variant.get("gamma")
    head = {
        "nonfinite_at_finite": f"{_fmt(e.got)} {what}",
        "underflow_flush": f"{what} 0",
        "nonfinite_input_policy": f"{what} {_fmt(e.got)}",
    }.get(cause, f"{what} {_fmt(e.got)}")
    line = f"{head} {where}, γ={g}, {ev.dtype}: expected {_fmt(e.expected)}"
    if math.isfinite(e.err_u):
        line += f" ({e.err_u:.3g} u)"
    return f"{line}; {why}" if why else line


def example(e: Element, kind: str = "logits") -> dict[str, Any]:
    """The element as JSON; ``size``: how far out it lies (|x|, or |logit p| for probabilities),
    what 'the smallest input' of a cause minimises."""

    def j(v: float | None) -> Any:
        if v is None:
            return None
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))

    size = None
    if e.x is not None and not math.isnan(e.x):
        size = _margin(e, kind) if kind == "probs" and 0.0 <= e.x <= 1.0 else abs(e.x)
        size = size - math.log(2.0) if kind == "probs" and math.isfinite(size) else size  # |logit p| ~ margin
    return {"input": j(e.x), "target": j(e.t), "expected": j(e.expected), "got": j(e.got),
            "err_u": j(e.err_u), "which": e.which, "size": j(size)}  # fmt: skip


def classify_entry(entry: dict[str, Any]) -> Verdict:
    """Offline: the cause of a failing results-JSON entry (its own ``cause`` if it has one)."""
    if entry.get("cause") in CAUSES:
        return Verdict(entry["cause"], str(entry.get("cause_detail") or ""), entry.get("cause_example"))
    return classify(from_entry(entry))


# ----------------------------------------------------------------------------- summaries


def example_size(ex: Any) -> float:
    """How far out an example lies: its ``size`` (|x|, |logit p|), else |input|; inf if unknown."""
    if not isinstance(ex, dict):
        return math.inf
    x = _num(ex.get("size")) if ex.get("size") is not None else _num(ex.get("input"))
    return math.inf if x is None or math.isnan(x) else abs(x)


def tally(entries: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Per adapter, per cause: {"n": failing checks, "detail": the line of its smallest input}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for e in entries:
        if e.get("outcome") not in ("failed", "error"):
            continue
        v = classify_entry(e)
        row = out.setdefault(str(e.get("adapter")), {})
        slot = row.setdefault(v.cause, {"n": 0, "detail": v.detail, "size": math.inf, "example": v.example})
        slot["n"] += 1
        size = example_size(v.example)
        if size < slot["size"]:
            slot.update(size=size, detail=v.detail, example=v.example)
    return out


def summary_lines(entries: Any) -> list[str]:
    """Per adapter: failing checks per cause (most first) with the smallest input that shows it."""
    lines = []
    for adapter, row in tally(entries).items():
        total = sum(s["n"] for s in row.values())
        unc = row.get("unclassified", {}).get("n", 0)
        lines.append(f"{adapter}: {total} failing checks, {unc} unclassified")
        for cause, slot in sorted(row.items(), key=lambda kv: (-kv[1]["n"], PRIORITY.index(kv[0]))):
            lines.append(f"  {cause} ({slot['n']}): {slot['detail'][:200]}")
            if cause != "unclassified":
                lines.append(f"    fix: {CAUSES[cause].fix[:200]}")
    return lines
