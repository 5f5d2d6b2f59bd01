"""The evidence of a failing check and the measurements the cause rules make on it (causes.py).

``Element`` is one failing element (input, target, expected, got, error in u); ``Evidence`` a
check's elements with its dtype, variant, tier and fault, built from a check's arrays
(``from_arrays``, in the runner) or from a results entry's worst element (``from_entry``).
The helpers below serve what the catalogue of mechanisms (mechanisms.py) cannot run on: reduced
values and softmax rows (``simple_ratio``, ``softmax_clip_match``, ``rounding_bound`` of a sum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from focalspec.reference.rounding import get_format

MAX_ELEMENTS = 48  # failing elements examined per check: the smallest |x| first, ...
MAX_NONFINITE = 16  # ... and this many more with a NaN/Inf result, wherever they lie
EPSILONS = (1e-7, 1e-6, 1e-8, 1e-5, 1e-4, 1e-10, 1e-12, 1e-15, 2.0**-23, 2.0**-52, 1.1754943508222875e-38)


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


# ----------------------------------------------------------------------------- evidence


def num(v: Any) -> float | None:
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
        e, g = num(w.get("expected")), num(w.get("got"))
        if e is None or g is None:
            continue
        err = num(w.get("err_u"))
        row, tgt = w.get("input"), w.get("target")
        margin = None
        if isinstance(row, list) and isinstance(tgt, int) and 0 <= tgt < len(row) and len(row) > 1:
            zs = [num(z) for z in row]
            if all(z is not None for z in zs):
                margin = zs[tgt] - max(z for j, z in enumerate(zs) if j != tgt)  # type: ignore[operator,type-var]
        which = str(w.get("which") or entry.get("check"))
        rowv = tuple(float(z) for z in row) if margin is not None else None  # type: ignore[union-attr,arg-type]
        els.append(Element(num(w.get("input")), num(w.get("target")), e, g,
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
        softmax = variant.get("activation") == "softmax"
        t = class_index(x, t) if softmax else t
        probs = variant.get("input_kind") == "probs"
        margins = softmax_margins(x, t, err.shape) if softmax else None
        rows = np.reshape(np.asarray(x, dtype=np.float64), (-1, np.shape(x)[-1])) if margins is not None else None
        margins = None if probs else margins  # a margin of logits: probabilities have none
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
            bound = max(rounding_bound(Element(float(a), float(b), 0.0, 0.0, 0.0, which), g, kind)
                        for a, b in zip(xf[fin], tf[fin], strict=True))  # fmt: skip
    arrays = None
    if elementwise and sim is not None:  # the values of the failing elements, for ``simulated``
        sg, se = (np.ravel(np.broadcast_to(np.asarray(a, dtype=np.float64), np.shape(x))) for a in sim)
        arrays = {"x": np.ravel(x)[idx], "t": np.ravel(np.broadcast_to(t, np.shape(x)))[idx],
                  "got": sg[idx], "exact": se[idx]}  # fmt: skip
    return Evidence(check, dtype, variant, failure_tier, None, "", els, arrays, bound)


def class_index(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Softmax targets as class indices where they are exactly one-hot rows (else as given)."""
    t = np.asarray(t)
    if t.shape == np.shape(x) and t.ndim >= 1 and np.all((t == 0) | (t == 1)) and np.all(t.sum(-1) == 1):
        return np.argmax(t, axis=-1)
    return t


def softmax_margins(x: np.ndarray, t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
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


def relative_error(e: Element) -> float:
    return abs(e.got - e.expected) / abs(e.expected) if e.expected else math.inf


def simple_ratio(e: Element, dtype: str) -> Fraction | None:
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


def normaliser_epsilon(e: Element) -> float | None:
    """The ε of a normaliser n + ε (``EPSILONS``, e.g. mmdet's weight_reduce_loss: avg_factor +
    torch.finfo(float32).eps; n a small count) when got/expected is exactly 1/(1 + ε/n), to a float64
    ulp or two: a constant factor that no rounding produces (a float32 step in float64 gives a
    different relative error at each element)."""
    if not e.expected or not (math.isfinite(e.got) and math.isfinite(e.expected)):
        return None
    r = e.got / e.expected
    for eps in EPSILONS:
        for n in (1, 2, 4, 8, 16, 32, 64, 128, 256):
            if abs(r * (1.0 + eps / n) - 1.0) <= 1e-15:
                return eps / n
    return None


def in_float32(v: float) -> bool:
    """Whether a float64 value is exactly a float32 one."""
    return v == float(np.float32(v))


def long_significand(v: float) -> bool:
    """A number with more than 8 significant bits (0.25 or 5.0 are representable by chance)."""
    m = math.frexp(v)[0] * 2.0**8
    return v != 0.0 and m != int(m)


def correct_side(e: Element, kind: str) -> bool | None:
    """True for a confident correct prediction of a hard target, False for a wrong one, None otherwise."""
    if e.x is None or e.t not in (0.0, 1.0):
        return None
    s = 1.0 if e.t == 1.0 else -1.0
    z = e.x - 0.5 if kind == "probs" else e.x
    return s * z > 0


def logit_margin(e: Element, kind: str) -> float:
    """|x| in logit units (probabilities: |logit p|, the e^{|x|} = 1/min(p, 1 - p) scale)."""
    if e.x is None:
        return 0.0
    if kind != "probs":
        return abs(e.x)
    q = min(e.x, 1.0 - e.x)
    return math.inf if q <= 0 else -math.log(q)


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def safe_log(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf



def softmax_clip_match(e: Element, v: dict[str, Any], dtype: str) -> str | None:
    """Softmax value rows (class-index target): the clip of p_target to [ε, 1 − ε], with the
    bound as the dtype rounds it (Keras clips in float32: 1 − 1e−7 → 1 − 2^−23), reproduces got."""
    if e.row is None or e.t is None or e.which != "value" or not e.expected:
        return None
    c = int(e.t)
    zs = np.asarray(e.row, dtype=np.float64)
    if v.get("input_kind") == "probs":  # a row of probabilities, renormalised to sum 1 (Keras)
        w = zs
        log_p = safe_log(float(w[c] / w.sum())) if w.sum() > 0 else -math.inf
    else:
        zmax = zs.max()
        w = np.exp(zs - zmax)
        log_p = float(zs[c] - zmax - math.log(w.sum()))  # finite where p underflows to 0 (a target far below)
    if not w.sum() > 0:
        return None
    p = float(w[c] / w.sum())
    q = float(np.delete(w, c).sum() / w.sum())  # 1 - p_target, accurate
    g = float(v.get("gamma") or 0.0)

    def loss(pp: float, qq: float) -> float:
        if pp < 0.5:
            return qq**g * -(math.log(pp) if pp > 0.0 else log_p)
        return qq**g * -math.log1p(-qq) if qq < 1.0 else math.inf

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




def rounding_bound(e: Element, gamma: float, kind: str) -> float:
    """The largest error (u) rounding can explain: u |x| in a quantity of size e^{-|x|} (hard
    targets: 1 - p, or terms of size |x| cancelling as in BCE-with-logits' (1 - t) x + max(-x, 0)),
    u / min(t, 1 - t) (soft targets: t x cancelling against x)."""
    k = 4.0 * max(gamma, 1.0)
    if e.t is not None and 0.0 < e.t < 1.0:
        return k / min(e.t, 1.0 - e.t) + 64.0
    m = logit_margin(e, kind)
    return k * (math.exp(min(m, 700.0)) + 1.0) * max(1.0, m) + 64.0



