"""Verdicts: expected values from the reference, errors in u, grades, failure messages, reproducers.

Expected values are always computed by the reference at the *dtype-rounded* inputs, never
taken from code under test: ``reference.exact`` (60 digits, ~0.1 ms an element) for every case
except big sigmoid random batches (``NP_MIN_ELEMENTS`` and more: the deep depth) and the
sweeps graded in float32 / bfloat16 / float16, which use ``reference.float64`` (float64,
vectorised), whose own error (``NP_ERROR_BOUND_U`` float64 u, under 2**-24 of a float32 u)
cannot move a grade.  Anything graded in float64 uses mpmath on every element: a float64
reference a few float64 u off cannot grade float64 code.  Softmax always uses mpmath
(``reference.float64`` loses -log p of a dominant class, log of a row sum next to 1, to 0).
Results are memoised per (variant, rounded inputs, targets): value and gradient checks of
every adapter share one reference evaluation.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focalspec.adapters.base import Output
from focalspec.conformance.suite import refcache
from focalspec.reference import exact as ref_mp
from focalspec.reference import float64 as ref_np
from focalspec.reference.rounding import get_format, round_mpf
from focalspec.spec.tolerance import GRADES, Budget, budget, error_in_u, rms, worst
from focalspec.spec.variant import Variant

RANK: dict[str, int] = {g: i for i, g in enumerate(GRADES)}
OWN_GRADE = "accurate"  # focalspec's own adapters: a careful evaluation in the dtype itself
THIRD_PARTY_GRADE = "acceptable"  # shipped implementations and user callables: no defect


def default_required_grade(adapter: Any) -> str:
    """'accurate' for focalspec's own implementations, 'acceptable' for everything else."""
    impl = str(getattr(adapter, "implementation", ""))
    name = str(getattr(adapter, "name", ""))
    own = impl.startswith("focalspec.") or name.startswith("focalspec-")
    return OWN_GRADE if own else THIRD_PARTY_GRADE


def passes(grade: str | None, required: str) -> bool:
    return grade is not None and grade != "fail" and RANK[grade] <= RANK[required]


# ----------------------------------------------------------------------------- expected values


@dataclass(frozen=True)
class Expected:
    """The reference at dtype-rounded inputs, as float64: ``value`` is the per-element (or per-row)
    losses for reduction 'none', else a 0-d array of the reduced loss; the gradient is that of
    the reported loss (element-wise, or the reduced scalar), with its scale."""

    value: np.ndarray
    grad: np.ndarray
    grad_scale: np.ndarray
    source: str  # "mp" | "np"


_CACHE: OrderedDict[Any, Expected] = OrderedDict()
_CACHE_MAX = 4096


def _key(v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, source: str) -> Any:
    return (v, dtype, source, x.shape, x.tobytes(), t.shape, str(t.dtype), t.tobytes())


NP_MIN_ELEMENTS = 1024


def reference_source(family: str, dtype: str, n_elements: int, activation: str = "sigmoid") -> str:
    """mp everywhere except big sigmoid random batches and sweeps graded coarser than float64."""
    if dtype == "float64" or activation != "sigmoid":
        return "mp"
    if family == "sweep" or (family == "random" and n_elements >= NP_MIN_ELEMENTS):
        return "np"
    return "mp"


def expected(v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, source: str = "mp") -> Expected:
    """Reference value and gradient at the rounded inputs ``x`` (float64 array of dtype values)."""
    key = _key(v, x, t, dtype, source)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    disk = None
    small = x.size < refcache.MIN_ELEMENTS
    if source == "mp":
        request = repr((v, dtype, source, x.shape, t.shape, str(t.dtype))).encode()
        disk = refcache.key(request + x.tobytes() + t.tobytes())
        stored = refcache.load_small(disk) if small else refcache.load(disk)
        if stored is not None:
            exp = Expected(value=stored["value"], grad=stored["grad"], grad_scale=stored["scale"], source=source)
            _CACHE[key] = exp
            return exp
    if source == "mp":
        r = ref_mp.evaluate(v, x, t)
        value_mp = r.losses if r.value is None else np.array(r.value, dtype=object)
        value = _to_dtype_range(value_mp, dtype)
        grad = _to_dtype_range(r.grad, dtype)
        scale = _f64(r.grad_scale)
        if disk is not None:
            arrays = {"value": np.asarray(value), "grad": np.asarray(grad), "scale": np.asarray(scale)}
            (refcache.store_small if small else refcache.store)(disk, arrays)
    else:
        rn = ref_np.evaluate(v, x, t)
        value = _overflow(np.asarray(rn.losses if rn.value is None else rn.value, dtype=np.float64), dtype)
        grad = _overflow(np.asarray(rn.grad, dtype=np.float64), dtype)
        scale = np.asarray(rn.grad_scale, dtype=np.float64)
    exp = Expected(value=value, grad=grad, grad_scale=scale, source=source)
    _CACHE[key] = exp
    if len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return exp


def _overflow_threshold(dtype: str) -> float:
    """Magnitudes at or past (2 - 2**-p) 2**emax round to infinity in the dtype."""
    fmt = get_format(dtype)
    if dtype == "float64":
        return math.inf  # float64 itself: the mpf -> float conversion already rounded
    return (2.0 - 2.0 ** (-fmt.precision)) * 2.0**fmt.emax


def _f64(a: np.ndarray) -> np.ndarray:
    out = np.empty(np.shape(a), dtype=np.float64)
    for idx, val in np.ndenumerate(np.asarray(a, dtype=object)):
        out[idx] = float(val)
    return out


def _to_dtype_range(a: np.ndarray, dtype: str) -> np.ndarray:
    """float64 copy of mpf values, with +-inf where the dtype overflows (SPEC.md §10.1)."""
    return _overflow(_f64(a), dtype)


def _overflow(a: np.ndarray, dtype: str) -> np.ndarray:
    thr = _overflow_threshold(dtype)
    if not math.isfinite(thr):
        return a
    with np.errstate(invalid="ignore"):
        big = np.isfinite(a) & (np.abs(a) >= thr)
    if big.any():
        a = a.copy()
        a[big] = np.copysign(np.inf, a[big])
    return a


# ----------------------------------------------------------------------------- measuring


@dataclass
class Measure:
    """Errors of one quantity (value or gradient) against the reference, graded."""

    which: str
    err: np.ndarray
    budget: Budget
    required: str
    max_err: float = 0.0
    rms_err: float = 0.0
    n_bad: int = 0
    n: int = 0
    grade: str = "exact"
    worst: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "max_err_u": err_json(self.max_err),
            "rms_err_u": err_json(self.rms_err),
            "n_bad": self.n_bad,
            "n": self.n,
        }

    @property
    def passed(self) -> bool:
        return passes(self.grade, self.required)


def n_reduced(v: Variant, x: np.ndarray, which: str) -> int:
    """How many terms a correct evaluation adds up for one reported number (the budget's n)."""
    classes = int(x.shape[-1]) if v.activation == "softmax" and x.ndim else 1
    if which == "grad":
        return classes
    return max(1, int(x.size)) if v.reduction != "none" else classes


def measure(
    which: str,
    got: np.ndarray,
    exact: np.ndarray,
    scale: np.ndarray,
    dtype: str,
    bud: Budget,
    required: str,
    locate: Any = None,
    halve: bool = False,
) -> Measure:
    """Grade ``got`` against ``exact`` (errors in u of ``dtype`` relative to ``scale``).

    ``locate(flat_index) -> dict`` describes an element (index, input, target) for messages.
    ``halve``: the error is half the difference (two evaluations that may each carry the budget).
    """
    err = error_in_u(got, exact, scale, dtype)
    if halve:
        err = err / 2.0
    m = Measure(which=which, err=err, budget=bud, required=required, n=int(err.size))
    if err.size == 0:
        return m
    max_err, i = worst(err)
    m.max_err = max_err
    with np.errstate(over="ignore"):
        m.rms_err = rms(err)
    limit = getattr(bud, required)
    m.n_bad = int(np.count_nonzero(~(err <= limit)))
    m.grade = bud.grade(max_err)
    where = locate(i) if locate else {"index": list(np.unravel_index(i, err.shape))}
    m.worst = {
        **where,
        "expected": _json_num(float(np.ravel(np.broadcast_to(exact, err.shape))[i])),
        "got": _json_num(float(np.ravel(np.broadcast_to(got, err.shape))[i])),
        "err_u": err_json(max_err),
        "which": which,
    }
    return m


def _json_num(v: Any) -> Any:
    """Finite floats as numbers; inf / nan as the strings 'inf', '-inf', 'nan' (strict JSON)."""
    if v is None:
        return None
    if isinstance(v, list | tuple):
        return [_json_num(u) for u in v]
    f = float(v)
    if math.isfinite(f):
        return f
    return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")


def err_json(v: float) -> float | None:
    """An error in u for JSON: null when infinite (a non-finite mismatch)."""
    return float(v) if math.isfinite(v) else None


def locator(v: Variant, x: np.ndarray, t: np.ndarray, which: str, shape: tuple[int, ...]) -> Any:
    """Element description for the worst element of a value/grad error array of ``shape``."""

    def row(a: np.ndarray) -> Any:
        vals = [float(u) for u in np.ravel(a)]
        return _json_num(vals) if len(vals) <= 16 else f"<row of {len(vals)} values>"

    def loc(i: int) -> dict[str, Any]:
        if not shape:  # a reduced scalar
            return {"index": [], "input": f"<{x.size} elements reduced>", "target": None}
        idx = tuple(int(k) for k in np.unravel_index(i, shape))
        if v.activation == "sigmoid":
            return {"index": list(idx), "input": _json_num(float(x[idx])), "target": _json_num(float(t[idx]))}
        if which == "value":  # a softmax row
            tgt = int(t[idx]) if t.ndim == x.ndim - 1 else row(t[idx])
            return {"index": list(idx), "input": row(x[idx]), "target": tgt}
        r = idx[:-1]
        tgt = (1.0 if int(t[r]) == idx[-1] else 0.0) if t.ndim == x.ndim - 1 else float(t[idx])
        return {"index": list(idx), "input": _json_num(float(x[idx])), "target": _json_num(tgt)}

    return loc


def measure_value(
    got: np.ndarray, exp: Expected, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, required: str
) -> Measure:
    bud = budget(dtype, float(v.gamma), n_reduced(v, x, "value"))
    scale = np.abs(exp.value)
    return measure("value", got, exp.value, scale, dtype, bud, required, locator(v, x, t, "value", exp.value.shape))


def measure_grad(
    got: np.ndarray, exp: Expected, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, required: str
) -> Measure:
    bud = budget(dtype, float(v.gamma), n_reduced(v, x, "grad"))
    kink = on_clip_bound(v, x, dtype)
    if kink is not None and np.shape(got) == np.shape(exp.grad):  # either one-sided derivative is right there
        got = np.where(kink, exp.grad, np.asarray(got, dtype=np.float64))
    return measure("grad", got, exp.grad, exp.grad_scale, dtype, bud, required, locator(v, x, t, "grad", x.shape))


def on_clip_bound(v: Variant, x: np.ndarray, dtype: str) -> np.ndarray | None:
    """Probability inputs that lie on a clip bound as ``dtype`` represents it (SPEC §3): the
    clipped loss has a kink there, and an implementation that forms the bound in its working
    precision (1 - 1e-7 in float64 is the float 0.9999999) decides the side differently from
    the exact bound; the gradient there is not graded.  None: no clip on probabilities."""
    if v.clip_eps is None or v.input_kind != "probs":
        return None
    lo = float(v.clip_eps)
    exact = [lo, 1.0 - lo, *([float(v.clip_upper)] if v.clip_upper is not None else [])]
    bounds = np.array([round_mpf(b, dtype) for b in exact])
    xs = np.asarray(x, dtype=np.float64)
    return np.isin(xs, bounds)


# ----------------------------------------------------------------------------- words


def fmt_num(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(fmt_num(u) for u in v) + "]"
    return str(v)


def fmt_err(e: float) -> str:
    if not math.isfinite(e):
        return "inf (non-finite mismatch)"
    return f"{e:.3g}"


def failure_message(m: Measure, what: str) -> str:
    """One paragraph naming the case, the worst element and how many are bad."""
    limit = getattr(m.budget, m.required)
    head = (
        f"{m.which} of {what}: {m.n_bad} of {m.n} element(s) beyond the {m.required} budget ({limit:g} u); "
        f"grade {m.grade}"
    )
    w = m.worst
    if not w:
        return head
    loc = f"index {tuple(w['index'])}" if w["index"] else "the reduced value"
    tgt = f", target {fmt_num(w['target'])}" if w.get("target") is not None else ""
    return (
        f"{head}. Worst at {loc}: input {fmt_num(w['input'])}{tgt}: expected {fmt_num(w['expected'])}, "
        f"got {fmt_num(w['got'])}, error {fmt_err(m.max_err)} u"
    )


def reproducer(
    adapter: Any,
    case_id: str,
    dtype: str,
    device: str,
    mode: str,
    generated: bool,
    depth: str,
    seed: int,
    point: list[str] | None = None,
) -> str:
    """A runnable one-line command that re-runs exactly this check (``point``: the
    ``--point X:T --variant ...`` arguments that select a one-element case instead of ``--case``)."""
    target = getattr(adapter, "reproducer_args", None)
    args = list(target()) if callable(target) else [adapter.name]
    args += [*(point or ["--case", case_id]), "--dtype", dtype]
    if device != "cpu":
        args += ["--device", device]
    if mode != "eager":
        args += ["--mode", mode]
    if generated:
        args += ["--depth", depth]
        if seed:
            args += ["--seed", str(seed)]
    return "focalspec check " + " ".join(_shell_quote(a) for a in args)


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def measure_output(
    check: str, res: Output, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, required: str, source: str = "mp"
) -> Measure | str:
    """The graded value or gradient of one call, with the arrays its cause is read from in
    ``extra`` (``causes.for_measures``); a string says why there is nothing to grade."""
    exp = expected(v, x, t, dtype, source)
    if check == "value":
        got = np.asarray(res.loss, dtype=np.float64)
        if got.shape != exp.value.shape:
            return f"the loss has shape {got.shape}, the spec gives {exp.value.shape}"
        m = measure_value(got, exp, v, x, t, dtype, required)
        m.extra.update(x=x, t=t, got=got, exact=exp.value, loss_got=got, loss_exact=exp.value)
        return m
    if res.grad is None:
        return "no gradient came back"
    got = np.asarray(res.grad, dtype=np.float64)
    if got.shape != x.shape:
        return f"the gradient has shape {got.shape}, the inputs {x.shape}"
    m = measure_grad(got, exp, v, x, t, dtype, required)
    m.extra.update(x=x, t=t, got=got, exact=exp.grad)
    if res.loss is not None and np.shape(res.loss) == np.shape(exp.value):
        m.extra.update(loss_got=np.asarray(res.loss, dtype=np.float64), loss_exact=exp.value)
    return m
