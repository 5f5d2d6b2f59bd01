"""The smallest input that shows a cause: bisection between a passing and a failing element.

The run's failing element nearest 0 is only as near as the catalogue's grid reaches.  For a
cause whose defect grows with |x| (1 − p cancellation, NaN once σ saturates, flushes, clips),
bisection over the dtype's representable numbers between a start that passes (0 for logits,
1/2 for probabilities, on the failing input's side) and that element finds a *boundary*: an
input that fails with the same cause next to one that passes, each graded as one element
against the mpmath reference at that dtype value.  Monotonicity is not assumed, so the result
is a boundary, not always the global minimum; it is never worse than the run's own element.

Each process shrinks, at the end of its session, the smallest failing element of every
(implementation, cause, dtype) it found (float32 first), within ``BUDGET_S`` seconds, and hands back a record with a
``focalspec check ... --point X:T --variant ...`` reproducer that grades exactly that element.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.adapters.base import DTYPES, Output
from focalspec.adapters.claims import resolve_variant
from focalspec.conformance.diagnosis import causes
from focalspec.conformance.suite import grading, tiers
from focalspec.conformance.suite.record import CheckRecord
from focalspec.reference.rounding import get_format
from focalspec.spec.variant import SpecError, Variant, variant_text

# the causes whose defect starts at some |x| and stays beyond it
SHRINKABLE = ("nonfinite_at_finite", "one_minus_p_cancellation", "bce_cancellation", "underflow_flush",
              "clip_epsilon")  # fmt: skip
MAX_PROBES = 72  # > 63: a float64 interval bisects to adjacent numbers
BUDGET_S = 30.0  # per process, for all its shrinks together
_BITS: dict[str, Any] = {"float64": np.int64, "float32": np.int32, "float16": np.int16, "bfloat16": np.int16}


@dataclass
class Candidate:
    """The failing element a shrink starts from, with what it takes to call it again."""

    adapter: Any
    device: str
    dtype: str
    mode: str
    case_variant: Variant
    required: str
    check: str  # value | grad
    cause: str
    x: float
    t: float
    nodeid: str

    @property
    def rank(self) -> tuple[float, int, int]:
        kind = self.case_variant.input_kind
        size = abs(_logit(self.x)) if kind == "probs" else abs(self.x)
        return size, _dtype_rank(self.dtype), self.mode != "eager"


def record_size(m: dict[str, Any]) -> float:
    """How far out a shrink record's input lies (|x|, or |logit p| for probabilities)."""
    x = m.get("input")
    if not isinstance(x, int | float) or math.isnan(x):
        return math.inf
    return abs(_logit(x)) if (m.get("variant") or {}).get("input_kind") == "probs" else abs(x)


def best(records: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (implementation, cause), the record with the smallest input (several processes of one
    run, or several environments, each shrink their own)."""
    return _best(records, lambda m: (str(m.get("adapter")), str(m.get("cause"))))  # type: ignore[return-value]


def best_by_dtype(records: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (implementation, cause, dtype): where the defect starts in each dtype (the smallest
    input overall is often a half type's; the float32 boundary is the one training meets)."""
    return _best(records, lambda m: (str(m.get("adapter")), str(m.get("cause")), str(m.get("dtype"))))  # type: ignore[return-value]


def _best(records: Any, key_of: Any) -> dict[tuple[str, ...], dict[str, Any]]:
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for m in records or []:
        key = key_of(m)
        have = out.get(key)
        if have is None or (m.get("converged"), -record_size(m)) > (have.get("converged"), -record_size(have)):
            out[key] = m
    return out


def _dtype_rank(dtype: str) -> int:
    return DTYPES.index(dtype) if dtype in DTYPES else len(DTYPES)


def boundaries(by_dtype: dict[tuple[str, str, str], dict[str, Any]], adapter: str, cause: str) -> list[dict[str, Any]]:
    """The converged records of one (implementation, cause), one per dtype, in DTYPES order."""
    keys = sorted((k for k in by_dtype if k[:2] == (adapter, cause)), key=lambda k: _dtype_rank(k[2]))
    return [by_dtype[k] for k in keys if by_dtype[k].get("converged")]


def also_lines(m: dict[str, Any], by_dtype: dict[tuple[str, str, str], dict[str, Any]]) -> list[str]:
    """Where the same cause starts in the record's other dtypes (one line), and the float32
    reproducer when the headline is another dtype's."""
    name = "p" if (m.get("variant") or {}).get("input_kind") == "probs" else "x"
    mine = boundaries(by_dtype, str(m.get("adapter")), str(m.get("cause")))
    others = [o for o in mine if o["dtype"] != m.get("dtype")]
    if not others:
        return []
    out = ["in the other dtypes: " + "; ".join(f"{o['dtype']} from {name}={o['input']!r} (passes at {o['passes_at']!r})"
                                               for o in others)]  # fmt: skip
    f32 = next((o for o in others if o.get("dtype") == "float32"), None)
    if f32 is not None:
        out.append(f"reproduce (float32): {f32.get('reproducer')}")
    return out


def lines(m: dict[str, Any]) -> list[str]:
    """The terminal lines of one record: the bisected element and its reproducer."""
    what = "gradient" if m.get("check") == "grad" else "value"
    name = "p" if (m.get("variant") or {}).get("input_kind") == "probs" else "x"
    head = f"smallest (bisected, {m.get('probes')} probes): {what} at {name}={m.get('input')!r}, "
    head += f"t={m.get('target')!r}, "
    head += f"{m.get('dtype')}: got {m.get('got')}, expected {m.get('expected')}"
    if m.get("passes_at") is not None:
        head += f"; passes at {name}={m['passes_at']!r}"
    if m.get("note"):
        head += f" ({m['note']})"
    return [head, f"reproduce: {m.get('reproducer')}"]


def _logit(p: float) -> float:
    return math.inf if p in (0.0, 1.0) else math.log(p / (1.0 - p))


def ordinal(a: float, dtype: str) -> int:
    """The position of a non-negative ``a`` among the dtype's numbers (its bit pattern)."""
    return int(np.array([a], dtype=get_format(dtype).numpy_type).view(_BITS[dtype])[0])


def from_ordinal(k: int, dtype: str) -> float:
    return float(np.array([k], dtype=_BITS[dtype]).view(get_format(dtype).numpy_type)[0])


def example_candidate(p: Any, rec: CheckRecord, nodeid: str) -> Candidate | None:
    """The shrink a failing value/grad check offers, or None when its cause or evidence has no |x|
    to shrink (a reduced value, a softmax row, a non-finite input)."""
    ex = rec.cause_example or {}
    x, t = ex.get("input"), ex.get("target")
    ok = (p.check in ("value", "grad") and rec.cause in SHRINKABLE and p.case.variant.activation == "sigmoid"
          and isinstance(x, int | float) and isinstance(t, int | float) and math.isfinite(x) and p.dtype in _BITS
          and ex.get("which") in ("value", "grad", None))  # fmt: skip
    if not ok:
        return None
    return Candidate(p.adapter, p.device, p.dtype, p.mode, p.case.variant, p.required, p.check, str(rec.cause),
                     float(x), float(t), nodeid)  # fmt: skip


class Shrinker:
    """Keeps the smallest candidate per (implementation, cause, dtype) and bisects each at the end."""

    def __init__(self, suite: Any) -> None:
        self.suite = suite
        self.best: dict[tuple[str, str, str], Candidate] = {}

    def offer(self, c: Candidate | None) -> None:
        if c is None:
            return
        key = (c.adapter.name, c.cause, c.dtype)
        have = self.best.get(key)
        if have is None or c.rank < have.rank:
            self.best[key] = c

    def run(self, budget_s: float = BUDGET_S) -> list[dict[str, Any]]:
        """One record per candidate, within ``budget_s`` (the rest keep the run's element)."""
        deadline = time.monotonic() + budget_s
        out = []
        first = ("float32", "float64", "bfloat16", "float16")  # the budget goes to the training dtype first
        for c in sorted(self.best.values(), key=lambda c: first.index(c.dtype) if c.dtype in first else 9):
            try:
                out.append(self.shrink(c, deadline))
            except Exception as exc:  # a shrink must never cost the run its results
                out.append(self.record(c, c.x, None, None, 0, False, f"not shrunk: {type(exc).__name__}: {exc}"))
        return out

    # -------------------------------------------------------------- probing

    def probe(self, c: Candidate, x: float) -> tuple[bool, causes.Verdict | None]:
        """Whether the one element (x, c.t) fails with ``c.cause``, and its verdict when it fails."""
        xs, ts = np.array([x]), np.array([c.t])
        try:
            v = resolve_variant(c.adapter, c.case_variant, c.dtype, xs)
        except SpecError:
            return False, None
        res = self.suite._call(c.adapter, v, xs, ts, c.dtype, c.device, c.mode, c.check == "grad")
        if not isinstance(res, Output):
            return False, None
        m = grading.measure_output(c.check, res, v, xs, ts, c.dtype, c.required)
        if isinstance(m, str) or m.passed:
            return False, None
        tier = tiers.failure_tier(xs, v.input_kind, c.dtype, c.mode, tiers.bad_mask(m))
        verdict = causes.safely(lambda: causes.for_measures(c.check, c.dtype, v.to_dict(), [m], tier))
        return verdict.cause == c.cause, verdict

    def shrink(self, c: Candidate, deadline: float) -> dict[str, Any]:
        """Bisect between the passing start and ``c.x`` (see module docstring)."""
        fails, verdict = self.probe(c, c.x)
        if not fails:  # one element alone does not show it (the batch's context did): keep the run's
            return self.record(c, c.x, None, None, 1, False, "the element alone does not fail with this cause")
        probs = c.case_variant.input_kind == "probs"
        start = 0.5 if probs else math.copysign(0.0, c.x)
        sign = 1.0 if probs else math.copysign(1.0, c.x)
        n = 2
        start_fails, start_verdict = self.probe(c, start)
        if start_fails:
            return self.record(c, start, None, start_verdict, n, True, "fails from the start of the domain")
        lo, hi = ordinal(abs(start), c.dtype), ordinal(abs(c.x), c.dtype)  # lo passes, hi fails
        while abs(hi - lo) > 1 and n < MAX_PROBES and time.monotonic() < deadline:
            mid = (lo + hi) // 2
            f, vd = self.probe(c, sign * from_ordinal(mid, c.dtype))
            n += 1
            if f:
                hi, verdict = mid, vd
            else:
                lo = mid
        converged = abs(hi - lo) <= 1
        return self.record(c, sign * from_ordinal(hi, c.dtype), sign * from_ordinal(lo, c.dtype), verdict, n,
                           converged, "" if converged else "probes or time spent before adjacent numbers")  # fmt: skip

    def record(self, c: Candidate, x: float, passes_at: float | None, verdict: causes.Verdict | None, probes: int,
               converged: bool, note: str) -> dict[str, Any]:  # fmt: skip
        """The JSON record of a shrink, with the one-line reproducer of its element."""
        ex = (verdict.example if verdict else None) or {}
        point = ["--point", f"{x!r}:{c.t!r}", "--variant", variant_text(c.case_variant)]
        point += ["--mode", c.mode] if c.mode == "eager" else []  # exactly this check (compiled is named anyway)
        repro = grading.reproducer(c.adapter, "point", c.dtype, c.device, c.mode, False, "default", 0, point)
        return {
            "adapter": c.adapter.name, "cause": c.cause, "dtype": c.dtype, "device": c.device, "mode": c.mode,
            "check": c.check, "variant": c.case_variant.to_dict(), "input": x, "target": c.t,
            "expected": ex.get("expected"), "got": ex.get("got"), "err_u": ex.get("err_u"),
            "passes_at": passes_at, "started_from": c.x, "probes": probes, "converged": converged,
            "detail": verdict.detail if verdict else "", "note": note, "reproducer": repro, "source": c.nodeid,
        }  # fmt: skip
