"""Impact of an implementation's defects on realistic workloads (SPEC.md §10.9).

A failing check says *that* an element is wrong; a maintainer needs to know whether it matters
for training.  This module runs any adapter (built-in, third-party, a user's callable) through
the ordinary adapter interface on the fixed, seeded workloads of SPEC §10.9 -- a detection batch
early and late in training at γ = 2 and γ = 0.5, a dense segmentation batch (sigmoid and
softmax) -- and measures per dtype:

- the NaN/±Inf gradients (and zero gradients where the exact one is a normal number) per batch;
- the relative change of the reduced loss and the relative 2-norm change of the gradient
  against the exact values at the dtype-rounded inputs, next to that batch's own *rounding
  floor* in the dtype: the largest change that honest arithmetic in the dtype makes (the exact
  elements correctly rounded and reduced in several orders, and the spec's stable form
  evaluated in the dtype);
- a short deterministic training run of a logistic detection head (the model's algebra in
  float64, the loss and its gradient from the implementation): the first step with a
  non-finite gradient and the final loss against the same run driven by the spec's form.

The "exact" values are the vectorised reference (reference/float64.py) evaluated in extended
precision (numpy longdouble, 64-bit significand on x86), far below every floor it is compared
with (float64's included).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from focalspec.adapters.base import Adapter, AdapterError
from focalspec.conformance.diagnosis.impact_file import (  # noqa: F401  (re-exported: impact.load, ...)
    DEFAULT_FILE,
    IMPACT_DTYPES,
    SCHEMA,
    SCHEMA_VERSION,
    _finite_number,
    _fmt_ratio,
    exceeds_floor,
    impact_line,
    load,
)
from focalspec.reference import float64 as ref
from focalspec.spec.variant import SpecError, Variant

# the reductions tried in this order: relative measures do not depend on the normaliser
REDUCTIONS: tuple[str, ...] = ("mean", "normalized", "sum", "none")
ORDERS = 4  # shuffled reduction orders in the rounding floor (plus the natural one)
# a change within 1 % of the floor is the floor itself: the honest evaluations it is made of differ
# in their last (subnormal) roundings, e.g. float16 gradients of a mean over 100,000 elements
FLOOR_TIE = 1.01
UNIT_ROUNDOFF: dict[str, float] = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}


@dataclass(frozen=True)
class Workload:
    """One realistic batch (SPEC §10.9): its size, class balance, logit distributions and loss."""

    name: str
    what: str
    n: int  # anchors / pixels
    positives: float  # fraction of elements with t = 1 (sigmoid) or not of class 0 (softmax)
    pos: tuple[float, float]  # (mean, sd) of the logits of positives (softmax: of the true class)
    neg: tuple[float, float]  # (mean, sd) of the logits of negatives (softmax: of the other classes)
    gamma: float
    alpha: float | None = 0.25
    classes: int = 1  # 1: sigmoid; more: softmax over that many classes with class-index targets
    seed: int = 0

    @property
    def activation(self) -> str:
        return "sigmoid" if self.classes == 1 else "softmax"

    def variant(self, reduction: str) -> Variant:
        return Variant(activation=self.activation, gamma=self.gamma, alpha=self.alpha, reduction=reduction)  # type: ignore[arg-type]

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """(logits, targets) in float64, deterministic from the seed."""
        rng = np.random.default_rng(self.seed)
        k = round(self.n * self.positives)
        if self.classes == 1:
            x = np.concatenate([rng.normal(*self.pos, k), rng.normal(*self.neg, self.n - k)])
            t = np.concatenate([np.ones(k), np.zeros(self.n - k)])
            return x, t
        cls = np.concatenate([np.zeros(self.n - k, dtype=np.int64), rng.integers(1, self.classes, k)])
        z = rng.normal(*self.neg, (self.n, self.classes))
        z[np.arange(self.n), cls] = rng.normal(*self.pos, self.n)
        return z, cls


WORKLOADS: tuple[Workload, ...] = (
    Workload("detection-early-g2", "detection, early: 100,000 anchors, 0.1 % positives N(1, 2), negatives N(-4, 2)",
             100_000, 0.001, (1.0, 2.0), (-4.0, 2.0), 2.0, seed=1),
    Workload("detection-early-g0.5", "the same batch with γ = 0.5",
             100_000, 0.001, (1.0, 2.0), (-4.0, 2.0), 0.5, seed=1),
    Workload("detection-late-g2", "detection, later in training: negatives N(-10, 3)",
             100_000, 0.001, (1.0, 2.0), (-10.0, 3.0), 2.0, seed=2),
    Workload("detection-late-g0.5", "the later batch with γ = 0.5",
             100_000, 0.001, (1.0, 2.0), (-10.0, 3.0), 0.5, seed=2),
    Workload("segmentation-sigmoid", "dense binary segmentation: 256×256 pixels, 25 % foreground N(4, 3), "
             "background N(-6, 3)", 65_536, 0.25, (4.0, 3.0), (-6.0, 3.0), 2.0, seed=3),
    Workload("segmentation-softmax", "dense 5-class segmentation: 128×128 pixels, 40 % not background, true "
             "class N(4, 2), others N(-2, 2)", 16_384, 0.4, (4.0, 2.0), (-2.0, 2.0), 2.0, classes=5, seed=4),
)  # fmt: skip


@dataclass(frozen=True)
class Training:
    """A short deterministic training run (SPEC §10.9): a logistic detection head on synthetic
    features, SGD with momentum on the implementation's mean-reduced loss."""

    name: str
    gamma: float
    n: int = 16_384
    features: int = 8
    positives: int = 64
    informative: int = 4  # features shifted by ``shift`` on positives
    shift: float = 2.5
    bias0: float = -4.0  # the RetinaNet prior initialisation, -log((1 - π)/π) at π ≈ 0.018
    lr: float = 50.0  # on the mean: lr·#positives/n ≈ 0.2 on the normalised reduction
    momentum: float = 0.9
    steps: int = 300
    alpha: float | None = 0.25
    seed: int = 7


TRAININGS: tuple[Training, ...] = (Training("train-detection-g2", 2.0), Training("train-detection-g0.5", 0.5))


# ----------------------------------------------------------------------------- dtype arithmetic


def _np_dtype(dtype: str) -> Any:
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype).type


def rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """float64 array of the dtype-rounded values (what an adapter is handed)."""
    return np.asarray(a, dtype=np.float64).astype(_np_dtype(dtype)).astype(np.float64)


def _compute_dtype(dtype: str) -> Any:
    """Where the spec's form is evaluated for the floor: half types in float32, rounded once (SPEC §10.3)."""
    return np.float64 if dtype == "float64" else np.float32


def _exact(
    w: Workload, v: Variant, x: np.ndarray, t: np.ndarray, kind: Any = np.longdouble
) -> tuple[np.ndarray, np.ndarray]:
    """Per-element losses (rows for softmax) and d(sum)/dx, evaluated in ``kind`` arithmetic."""
    xe = x.astype(kind)
    if w.classes == 1:
        loss, grad, _ = ref.sigmoid_logits(xe, t.astype(kind), v)
    else:
        onehot = np.zeros(x.shape, dtype=kind)
        onehot[np.arange(len(t)), t] = 1
        loss, grad, _ = ref.softmax_rows(xe, onehot, v)
    return loss, grad


def _divisor(v: Variant, t: np.ndarray, n: int) -> int:
    if v.reduction == "mean":
        return n
    if v.reduction == "normalized":
        return max(1, int(np.count_nonzero(t == 1)))
    return 1


def _rel(got: float, exact: float) -> float:
    if not math.isfinite(got):
        return math.inf
    return abs(got - exact) / abs(exact) if exact else abs(got)


def _rel_norm(got: np.ndarray, exact: np.ndarray) -> float:
    if not np.all(np.isfinite(got)):
        return math.inf
    d = float(np.linalg.norm((got - exact).ravel()))
    e = float(np.linalg.norm(exact.ravel()))
    return d / e if e else d


def rounding_floor(w: Workload, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str,
                   loss_ex: np.ndarray, grad_ex: np.ndarray) -> tuple[float, float, float, float]:  # fmt: skip
    """(loss floor, gradient floor, their measured parts): the relative change of this batch's
    reduced loss and gradient that rounding in ``dtype`` accounts for.  Measured: the largest
    change among honest evaluations -- the exact elements correctly rounded and pairwise-summed
    in the dtype (float32 accumulation for half types) in the natural and ``ORDERS`` shuffled
    orders, and the spec's stable form evaluated in the dtype (half types: in float32, rounded
    once).  The floor is the larger of that and the accurate grade's allowance (SPEC §10.3),
    what a careful implementation may differ by however it orders its arithmetic."""
    dt, acc = _np_dtype(dtype), _compute_dtype(dtype)
    div = _divisor(v, t, len(t))
    total_ex = float(np.sum(loss_ex) / div)
    g_ex = np.asarray(grad_ex / div, dtype=np.float64)

    def reduce(elements: np.ndarray, order: np.ndarray | None) -> float:
        e = elements.astype(dt).astype(acc)
        s = (e if order is None else e[order]).sum(dtype=acc)
        return float(np.asarray(s / acc(div), dtype=acc).astype(dt))

    loss64 = np.asarray(loss_ex, dtype=np.float64)
    rng = np.random.default_rng(12345)
    totals = [reduce(loss64, None)]
    totals += [reduce(loss64, rng.permutation(len(loss64))) for _ in range(ORDERS)]
    spec_loss, spec_grad = _exact(w, v, x, t, kind=acc)
    totals.append(reduce(np.asarray(spec_loss, dtype=np.float64), None))
    measured_loss = max(_rel(s, total_ex) for s in totals)
    grads = [rounded(g_ex, dtype),
             np.asarray((spec_grad / acc(div)).astype(dt), dtype=np.float64)]  # fmt: skip
    measured_grad = max(_rel_norm(g, g_ex) for g in grads)
    budget_loss, budget_grad = accurate_budget(v.gamma, len(t), dtype)
    return max(measured_loss, budget_loss), max(measured_grad, budget_grad), measured_loss, measured_grad


def accurate_budget(gamma: float, n: int, dtype: str) -> tuple[float, float]:
    """The accurate grade of SPEC §10.3 as relative changes: (8 + 4γ + 2⌈log₂ n⌉)·u for the
    loss reduced over n elements, (8 + 4γ)·u for each gradient element (so for its 2-norm)."""
    u = UNIT_ROUNDOFF[dtype]
    return (8 + 4 * gamma + 2 * math.ceil(math.log2(max(n, 1)))) * u, (8 + 4 * gamma) * u


# ----------------------------------------------------------------------------- one batch


def request(adapter: Adapter, v: Variant, dtype: str, x: np.ndarray) -> tuple[Variant, Variant] | str:
    """(the variant to ask the adapter for, the variant it computes for it) -- the workload's
    variant, or the adapter's declared form of it where it refuses the plain one (Keras'
    categorical loss only runs with its clip), or the variant without α where it has none --
    or the reason it runs none of them."""
    from focalspec.adapters.claims import resolve_variant

    try:
        declared = resolve_variant(adapter, v, dtype, x)
    except SpecError as exc:
        return str(exc)
    first = None
    # an implementation without α (focal-loss's BinaryFocalLoss) is measured without it: the
    # changes are relative, and α only rescales the classes
    for asked in (v, declared, *([v.with_(alpha=None)] if v.alpha is not None else [])):
        why = adapter.clip_scope_reason(asked) or adapter.supports(asked, dtype, "cpu", "eager")
        if why is None:
            try:
                return asked, resolve_variant(adapter, asked, dtype, x)
            except SpecError as exc:
                why = str(exc)
        first = first or why
    return first or "not supported"


def _first_supported(adapter: Adapter, w: Workload, dtype: str, x: np.ndarray) -> tuple[Variant, Variant] | str:
    """The first reduction of REDUCTIONS the adapter runs for the workload (see ``request``)."""
    reasons = []
    for r in REDUCTIONS:
        if r == "normalized" and w.classes > 1:  # defined for sigmoid only (SPEC §7)
            continue
        got = request(adapter, w.variant(r), dtype, x)
        if not isinstance(got, str):
            return got
        reasons.append(got)
    return reasons[0]


@functools.lru_cache(maxsize=32)
def _prepared(
    w: Workload, v: Variant, dtype: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, ...]]:
    """The batch in the dtype, its exact losses and gradient, and its floors (shared by every adapter)."""
    x0, t = w.data()
    x = rounded(x0, dtype)
    loss_ex, grad_ex = _exact(w, v, x, t)
    return x, t, loss_ex, grad_ex, rounding_floor(w, v, x, t, dtype, loss_ex, grad_ex)


def measure_batch(adapter: Adapter, w: Workload, dtype: str) -> dict[str, Any]:
    """The impact numbers of one workload in one dtype (see the module docstring)."""
    out: dict[str, Any] = {"workload": w.name, "dtype": dtype}
    chosen = _first_supported(adapter, w, dtype, rounded(w.data()[0], dtype))
    if isinstance(chosen, str):
        return {**out, "skipped": chosen}
    asked, v = chosen
    x, t, loss_ex, grad_ex, floors = _prepared(w, v, dtype)
    if v != asked or v != w.variant(v.reduction):  # its convention's own effect on the batch
        canon_loss, canon_grad = _prepared(w, w.variant(v.reduction), dtype)[2:4]
        div0 = _divisor(v, t, len(t))
        out["convention"] = {"declared": _variant_diff(v, w.variant(v.reduction)),
                             "loss_rel": _rel(float(np.sum(loss_ex) / div0), float(np.sum(canon_loss) / div0)),
                             "grad_rel": _rel_norm(np.asarray(grad_ex, dtype=np.float64),
                                                   np.asarray(canon_grad, dtype=np.float64))}  # fmt: skip
    t0 = time.perf_counter()
    try:
        got = adapter.run(asked, x, t, dtype, want_grad=True)
    except AdapterError as exc:
        return {**out, "reduction": v.reduction, "error": str(exc)[:300]}
    div = _divisor(v, t, len(t))
    total_ex = float(np.sum(loss_ex) / div)
    g_ex = np.asarray(grad_ex / div, dtype=np.float64)
    loss_got = np.asarray(got.loss, dtype=np.float64)
    total_got = float(loss_got.sum() / div) if v.reduction == "none" else float(loss_got.reshape(-1)[0])
    grad = np.asarray(got.grad, dtype=np.float64).reshape(g_ex.shape) if got.grad is not None else None
    floor_loss, floor_grad, measured_loss, measured_grad = floors
    tiny = float(np.finfo(_np_dtype(dtype)).tiny)
    out.update(reduction=v.reduction, elements=int(x.size), loss_exact=total_ex, loss=total_got,
               loss_rel=_rel(total_got, total_ex), floor_loss=floor_loss, floor_loss_measured=measured_loss,
               floor_grad_measured=measured_grad, seconds=0.0)  # fmt: skip
    if grad is None:
        out.update(grad_rel=None, floor_grad=floor_grad, nonfinite_grad=None, zero_grad=None)
    else:
        finite = np.isfinite(grad)
        out.update(
            nonfinite_grad=int(np.count_nonzero(~finite)),
            zero_grad=int(np.count_nonzero((grad == 0) & (np.abs(g_ex) >= tiny))),
            grad_rel=_rel_norm(grad, g_ex),
            grad_rel_finite=_rel_norm(np.where(finite, grad, g_ex), g_ex),
            floor_grad=floor_grad,
        )
    out["loss_ratio"] = _ratio(out["loss_rel"], floor_loss)
    out["grad_ratio"] = _ratio(out.get("grad_rel_finite"), floor_grad)
    out["exceeds_floor"] = _exceeds(out)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _variant_diff(v: Variant, base: Variant) -> dict[str, Any]:
    """The fields of ``v`` that differ from ``base`` (what a declared convention changes)."""
    a, b = v.to_dict(), base.to_dict()
    return {k: a[k] for k in a if a[k] != b.get(k)}


def _ratio(rel: float | None, floor: float) -> float | None:
    if rel is None or not math.isfinite(rel):
        return None if rel is None else math.inf
    return rel / floor if floor > 0 else (0.0 if rel == 0 else math.inf)


def _exceeds(b: dict[str, Any]) -> bool:
    """Whether the finite part of the result moves the batch beyond its floor: the reduced loss
    (where finite) or the gradient at its finite elements.  Non-finite elements are counted
    apart (``nonfinite_grad``): they are the critical defect, not a precision one."""
    loss_bad = math.isfinite(b["loss_rel"]) and b["loss_rel"] > FLOOR_TIE * b["floor_loss"]
    grad_bad = b.get("grad_rel_finite") is not None and b["grad_rel_finite"] > FLOOR_TIE * b["floor_grad"]
    return bool(loss_bad or grad_bad)


# ----------------------------------------------------------------------------- training


def _training_data(tr: Training) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(tr.seed)
    f = rng.normal(0.0, 1.0, (tr.n, tr.features))
    f[: tr.positives, : tr.informative] += tr.shift
    t = np.zeros(tr.n)
    t[: tr.positives] = 1.0
    return f, t


def train(tr: Training, grad_of: Any, dtype: str) -> dict[str, Any]:
    """Run ``tr`` with ``grad_of(variant, logits, targets) -> d(mean loss)/d logits``; the head's
    algebra is float64, the logits are rounded to ``dtype`` before each call."""
    f, t = _training_data(tr)
    v = Variant(gamma=tr.gamma, alpha=tr.alpha, reduction="mean")
    w, b = np.zeros(tr.features), tr.bias0
    mw, mb = np.zeros(tr.features), 0.0
    first = None
    for step in range(tr.steps):
        g = np.asarray(grad_of(v, rounded(f @ w + b, dtype), t), dtype=np.float64).reshape(-1)
        if first is None and not np.all(np.isfinite(g)):
            first = step
            break
        mw, mb = tr.momentum * mw + f.T @ g, tr.momentum * mb + float(g.sum())
        w, b = w - tr.lr * mw, b - tr.lr * mb
    x = rounded(f @ w + b, dtype)
    final = float(np.mean(_exact(Workload("", "", tr.n, 0, (0, 0), (0, 0), tr.gamma, tr.alpha), v, x, t)[0]))
    return {"first_nonfinite_step": first, "final_loss": final if first is None else None,
            "min_logit": float(x.min()) if first is None else None}  # fmt: skip


@functools.lru_cache(maxsize=16)
def _spec_run(tr: Training, dtype: str) -> dict[str, Any]:
    """The run driven by the spec's stable form evaluated in the dtype (half types in float32, rounded once)."""
    acc = _compute_dtype(dtype)

    def spec(var: Variant, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        _, g, _ = ref.sigmoid_logits(x.astype(acc), t.astype(acc), var)
        return rounded(np.asarray(g / acc(len(t)), dtype=np.float64), dtype)

    return train(tr, spec, dtype)


def measure_training(adapter: Adapter, tr: Training, dtype: str) -> dict[str, Any]:
    """The run driven by the implementation next to the same run driven by the spec's form in the dtype."""
    out: dict[str, Any] = {"training": tr.name, "dtype": dtype, "steps": tr.steps}
    f, t_train = _training_data(tr)
    chosen = None
    for r in REDUCTIONS:  # the first reduction it runs; its gradient is rescaled to the mean's
        chosen = request(adapter, Variant(gamma=tr.gamma, alpha=tr.alpha, reduction=r), dtype, f[:, 0])  # type: ignore[arg-type]
        if not isinstance(chosen, str):
            break
        out.setdefault("skipped", chosen)
    if chosen is None or isinstance(chosen, str):
        return out
    out.pop("skipped", None)
    asked = chosen[0]
    scale = _divisor(asked, t_train, tr.n) / tr.n
    out["reduction"] = asked.reduction
    t0 = time.perf_counter()

    def impl(var: Variant, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        got = adapter.run(asked, x, t, dtype, want_grad=True)
        return got.grad * scale if got.grad is not None else np.full(x.shape, np.nan)

    try:
        got = train(tr, impl, dtype)
    except AdapterError as exc:
        return {**out, "error": str(exc)[:300]}
    want = _spec_run(tr, dtype)
    out.update(got, spec_final_loss=want["final_loss"], spec_first_nonfinite_step=want["first_nonfinite_step"])
    fl, sl = got["final_loss"], want["final_loss"]
    out["final_loss_rel"] = None if fl is None or sl is None else _rel(fl, sl)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# ----------------------------------------------------------------------------- per adapter


def measure(
    adapter: Adapter,
    dtypes: tuple[str, ...] = IMPACT_DTYPES,
    workloads: tuple[Workload, ...] = WORKLOADS,
    trainings: tuple[Training, ...] = TRAININGS,
) -> dict[str, Any]:
    """Every workload and training run of ``adapter`` in each of its ``dtypes`` it claims."""
    why = adapter.unavailable_reason()
    doc: dict[str, Any] = {"adapter": adapter.name, "implementation": adapter.implementation,
                           "framework": adapter.framework, "framework_version": adapter.framework_version() if not why
                           else None, "package_version": adapter.package_version()}  # fmt: skip
    if why:
        return {**doc, "unavailable": why}
    doc["dtypes"] = {}
    for d in dtypes:
        if d not in adapter.dtypes:
            continue
        batches = [_guarded(measure_batch, adapter, w, d, {"workload": w.name}) for w in workloads]
        runs = [_guarded(measure_training, adapter, tr, d, {"training": tr.name}) for tr in trainings]
        doc["dtypes"][d] = {"batches": batches, "training": runs, "summary": summarize(batches, runs)}
    return doc


def _guarded(fn: Any, adapter: Adapter, what: Any, dtype: str, label: dict[str, Any]) -> dict[str, Any]:
    """``fn(adapter, what, dtype)``; what it raises is one line in the results, and the rest carries on."""
    try:
        return fn(adapter, what, dtype)
    except Exception as exc:  # an implementation's own exception type, a reference refusal ...
        return {
            **label,
            "dtype": dtype,
            "error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300],
        }


def summarize(batches: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What severity needs from one dtype: the worst non-finite count, whether any batch's
    finite part exceeds its floor, the largest ratio to the floor, the first non-finite step."""
    ran = [b for b in batches if "loss_rel" in b]
    worst_nf = max(ran, key=lambda b: b.get("nonfinite_grad") or 0, default=None)
    # the finite part only: a NaN loss or gradient is counted apart (nonfinite_grad), not as an ∞ ratio
    ratios = [r for b in ran for r in (b.get("loss_ratio"), b.get("grad_ratio")) if _finite_number(r)]
    steps = [(r["first_nonfinite_step"], r["training"]) for r in runs if r.get("first_nonfinite_step") is not None]
    return {
        "batches": len(ran),
        "nonfinite_grad": (worst_nf.get("nonfinite_grad") or 0) if worst_nf else 0,
        "nonfinite_workload": worst_nf["workload"] if worst_nf and worst_nf.get("nonfinite_grad") else None,
        "zero_grad": max((b.get("zero_grad") or 0 for b in ran), default=0),
        "exceeds_floor": any(b["exceeds_floor"] for b in ran) if ran else None,
        "max_floor_ratio": max(ratios) if ratios else None,
        "first_nonfinite_step": min(steps)[0] if steps else None,
        "first_nonfinite_training": min(steps)[1] if steps else None,
    }


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="ADAPTER_OR_MODULE:CALLABLE",
                        help="adapters by name (focalspec adapters), or a callable PKG.MODULE:FN")  # fmt: skip
    parser.add_argument(
        "--dtype", default=None, help="comma-separated dtypes (default: every dtype the adapter claims)"
    )
    parser.add_argument("--framework", default=None, help="a callable's framework: torch, jax or tensorflow")
    parser.add_argument("--no-training", action="store_true", help="the batches only, no training runs")
    parser.add_argument("--out", default=None, metavar="FILE", help="write the impact JSON here (default: stdout)")


def _adapters(targets: list[str], framework: str | None) -> list[Adapter]:
    from focalspec.adapters.registry import get_adapter

    out = []
    for name in targets:
        if ":" in name:
            from focalspec.adapters import callable_adapter as ca

            if not framework:
                raise SpecError(f"{name}: a callable needs --framework (torch, jax or tensorflow)")
            out.append(ca.make_callable_adapter(name, ca.Convention(framework=framework)))
            continue
        try:
            out.append(get_adapter(name))
        except KeyError as exc:
            raise SpecError(str(exc.args[0])) from None
    return out


def run(args: argparse.Namespace) -> int:
    dtypes = tuple(d.strip() for d in args.dtype.split(",")) if args.dtype else IMPACT_DTYPES
    bad = [d for d in dtypes if d not in IMPACT_DTYPES]
    if bad:
        raise SpecError(f"--dtype {','.join(bad)}: not one of {', '.join(IMPACT_DTYPES)}")
    adapters = _adapters(list(args.targets), args.framework)
    results = []
    for a in adapters:
        t0 = time.perf_counter()
        doc = measure(a, dtypes, trainings=() if args.no_training else TRAININGS)
        doc["seconds"] = round(time.perf_counter() - t0, 2)
        results.append(doc)
        for line in describe(doc):
            print(line, file=sys.stderr, flush=True)
        if args.out:  # after each implementation: a long run that is stopped keeps what it measured
            _write(Path(args.out), results)
    if args.out:
        print(f"impact of {len(results)} implementation(s): wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(_text(results))
    return 0


def _text(results: list[dict[str, Any]]) -> str:
    return json.dumps(document(results), indent=1, allow_nan=False, default=_json_default) + "\n"


def _write(path: Path, results: list[dict[str, Any]]) -> None:
    try:
        path.write_text(_text(results), encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot write ({exc.strerror or exc})") from None


def document(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The impact JSON: the workloads and training runs as data, then one entry per adapter."""
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "spec": "SPEC.md §10.9",
            "workloads": [asdict(w) for w in WORKLOADS], "trainings": [asdict(t) for t in TRAININGS],
            "adapters": _finite(results)}  # fmt: skip


def _finite(o: Any) -> Any:
    """JSON without NaN/Infinity: ∞ ratios and relative changes are written as the string "inf"."""
    if isinstance(o, float) and not math.isfinite(o):
        return "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def describe(doc: dict[str, Any]) -> list[str]:
    """A short human summary of one adapter's impact (printed on stderr by the CLI)."""
    if doc.get("unavailable"):
        return [f"{doc['adapter']}: unavailable ({doc['unavailable']})"]
    lines = []
    for d, r in doc.get("dtypes", {}).items():
        s = r["summary"]
        lines.append(f"{doc['adapter']} {d}: {s['batches']} batches, worst non-finite gradients "
                     f"{s['nonfinite_grad']} ({s['nonfinite_workload'] or '-'}), beyond floor: {s['exceeds_floor']} "
                     f"(largest {_fmt_ratio(s['max_floor_ratio'])}), first non-finite training step: "
                     f"{s['first_nonfinite_step']}")  # fmt: skip
    return lines
