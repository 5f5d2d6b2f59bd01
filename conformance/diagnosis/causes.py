"""Causes of failing checks (SPEC.md §10.7): from "it fails" to "why, and how to fix it".

A failing check is classified from its *measured evidence* only -- the failing elements'
inputs, targets, expected and got values and errors in units of roundoff, the dtype, the
variant's parameters, the failure tier and the isolation layer's ``fault`` -- never from the
adapter's name.  Each failing element is explained by reproduction: the catalogue of
mechanisms (mechanisms.py) is run on it in its dtype and the cause is the mechanism of the
reproducing model that carries the error; elements the catalogue does not cover (reduced values,
softmax rows, non-finite inputs) go through a few fallback rules.  One defect, one cause: a check
takes the cause most of its elements carry (a NaN/Inf at a finite input first) and names the
smallest input (|x| nearest 0: where the error starts) that shows it.  What nothing reproduces
is ``unclassified``, and counted as such.  Accuracy on the labelled audit set:
conformance/diagnosis/audit_accuracy.json (tests/test_audit.py).

Evidence comes either from the full arrays of a check while it runs (``from_arrays``, used by
the runner) or, offline, from a results-JSON entry's worst element (``from_entry``: coarser,
one element).  The taxonomy, each cause's explanation and its stable-form fix: ``CAUSES``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.conformance.diagnosis import cause_evidence as cev
from focalspec.conformance.diagnosis import mechanisms as mech
from focalspec.conformance.diagnosis import severity
from focalspec.conformance.diagnosis.cause_evidence import Element, Evidence, from_arrays, from_entry
from focalspec.reference.rounding import get_format

__all__ = ["CAUSES", "PRIORITY", "Element", "Evidence", "Verdict", "classify", "classify_entry", "from_arrays",
           "from_entry", "summary_lines", "tally"]  # fmt: skip


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
          "NaN or ±Inf value or gradient where the input is finite and the exact result is finite, produced "
          "by the implementation's own arithmetic: typically autodiff of (1 − p_t)^γ, γ·0^(γ−1)·0 = ∞·0 = NaN "
          "for 0 < γ < 1 once 1 − p_t is 0 (formed as 1 − p it is 0 from x ≈ 16.6 in float32). A training "
          "hazard: one such element poisons the whole batch's gradient.",
          "Compute (1 − p_t)^γ as σ(−s·x)^γ with a bounded derivative: a custom backward (torch.autograd."
          "Function), jax.custom_jvp or tf.custom_gradient giving −s·γ·(1 − p_t)^γ·p_t (0 at 1 − p_t = 0). Not "
          "exp(−γ·softplus(s·x)): it multiplies the exponent's rounding by γ·|x| and misses the accurate grade.",
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
          "Return the limits of SPEC §1.1 and propagate NaN: the value by selecting with where() (0 where "
          "(1 − p_t)^γ is 0, not 0·∞); the gradient's limit needs a custom derivative (custom backward, "
          "jax.custom_jvp, tf.custom_gradient), as where() differentiates both branches.",
          "§1.1, §10.5"),
    Cause("unclassified", "unclassified",
          "No rule explains the evidence: a defect of its own, or a gap in the taxonomy.",
          "Read the worst element and the reproducer.",
          "§10.7"),
)}  # fmt: skip

# most serious first: the order of summaries and the tie-break among a check's elements' causes (check_cause)
PRIORITY = ("fault", "nonfinite_at_finite", "convention", "low_precision_compute", "clip_epsilon",
            "one_minus_p_cancellation", "bce_cancellation", "underflow_flush", "nonfinite_input_policy",
            "unclassified")  # fmt: skip
_FAULT_WORDS = re.compile(r" raised |did not return|has shape|returned shape|returned a loss of shape|"
                          r"no gradient|returned torch\.|returned a |not run|crashed|exited|memory limit")  # fmt: skip


# an empty input whose loss came back with an empty shape other than the spec's (extended tier, SPEC §2.3)
_EMPTY_SHAPE = re.compile(r"has shape \((?:\d+, )*0(?:, \d+)*,?\), the spec gives \(")


@dataclass
class Verdict:
    cause: str
    detail: str
    example: dict[str, Any] | None = None
    fix: str | None = None  # the reproducing mechanism's own fix, where one was found


def for_measures(check: str, dtype: str, variant: dict[str, Any], bad: list[Any], failure_tier: str | None) -> Verdict:
    """The runner's entry: the cause of a graded failure from its failing ``grading.Measure``s
    (full arrays where the measure carries them in ``extra``, else its worst element)."""
    per_eval = [r for m in bad for r in m.extra.get("evals", ())]
    if per_eval:  # an invariant: each evaluation against the exact values, not against its twin
        verdict = _from_evaluations(check, dtype, per_eval, failure_tier)
        if verdict is not None:
            return verdict
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
    ev.elements.sort(key=_size_key)
    return classify(ev)


def _from_evaluations(check: str, dtype: str, recs: list[dict[str, Any]], failure_tier: str | None) -> Verdict | None:
    """The cause of a broken invariant from the elements where one of its evaluations (each in
    its own variant) misses the exact value; None where every evaluation is within its budget
    (the identity alone breaks: the elements of the twin comparison decide)."""
    found: list[tuple[Element, tuple[str, str, str], Evidence]] = []
    for r in recs:
        sub = from_arrays(check, dtype, r["variant"], r["which"], r["x"], r["t"], r["got"], r["exact"], r["err"],
                          r["limit"], failure_tier, r.get("sim"))  # fmt: skip
        sub.elements.sort(key=_size_key)
        found += [(e, c, sub) for e, c in zip(sub.elements, element_causes(sub), strict=True)]
    if not found:
        return None
    found.sort(key=lambda f: _size_key(f[0]))
    return _verdict(found)


def _normaliser_marks(elements: list[Element], ev: Evidence) -> dict[int, tuple[str, str, str]]:
    """The elements of a reduced float64 check that are expected / (1 + ε) for one library ε: a normaliser
    n + ε (a convention, e.g. mmdet's avg_factor + float32 eps), not a working dtype, whose error differs
    from element to element."""
    if ev.variant.get("reduction", "none") == "none" or ev.dtype != "float64":
        return {}
    out: dict[int, tuple[str, str, str]] = {}
    for i, e in enumerate(elements):
        if (eps := cev.normaliser_epsilon(e)) is not None:
            out[i] = ("convention", f"expected / (1 + {eps:.3g}): the normaliser has an ε added (n + ε, e.g. mmdet's "
                                    "avg_factor + float32 eps)", "")  # fmt: skip
    return out


def _size_key(e: Element) -> float:
    return math.inf if e.x is None or math.isnan(e.x) else abs(e.x)


def _verdict(found: list[tuple[Element, tuple[str, str, str], Evidence]]) -> Verdict:
    """One defect, one cause: the verdict of a check's elements (smallest input first) and their causes."""
    by: dict[str, list[tuple[Element, str, str, Evidence]]] = {}
    for e, (cause, why, key), ev in found:
        by.setdefault(cause, []).append((e, why, key, ev))
    worst = {c: max((e.err_u if math.isfinite(e.err_u) else math.inf) for e, *_ in v) for c, v in by.items()}
    cause = check_cause({c: len(v) for c, v in by.items()}, worst)
    # the example shows the cause at its smallest input, or where it breaks training: a NaN/∞ at a finite
    # input among its elements is the one shown (the check's severity is read off its example)
    nonfinite = (f for f in by[cause] if not math.isfinite(f[0].got) and math.isfinite(f[0].expected))
    e, why, key, ev = next(nonfinite, by[cause][0])
    ex = example(e, str(ev.variant.get("input_kind") or "logits"))
    if key:
        ex["mechanism"] = key
    return Verdict(cause, describe(cause, e, ev, why), ex, mech.BY_KEY[key].fix if key else None)


def _fallback_cause(e: Element, ev: Evidence) -> tuple[str, str]:
    """(cause, why) of an element no mechanism of the catalogue was run on or reproduced: the
    symptoms that need no model (non-finite inputs, NaN at a finite input), the reduced values'
    normaliser, a large error at a moderate input; else unclassified."""
    v, dtype = ev.variant, ev.dtype
    kind = str(v.get("input_kind") or "logits")
    finite_in = e.x is None or math.isfinite(e.x)
    if (e.x is not None and not finite_in) or (e.x is None and ev.failure_tier == "extended"):
        return "nonfinite_input_policy", ""
    if kind == "probs" and e.x is not None and not 0.0 <= e.x <= 1.0:
        return "nonfinite_input_policy", ""
    if not math.isfinite(e.got) and math.isfinite(e.expected):
        return "nonfinite_at_finite", "no mechanism of the catalogue reproduces it"
    if math.isfinite(e.got) and math.isinf(e.expected):
        return "clip_epsilon", "finite where the exact loss is infinite (a cap)"
    if not math.isfinite(e.got):
        return "unclassified", "infinity of the wrong sign or NaN mismatch"
    fmt = get_format(dtype)
    rel = cev.relative_error(e)
    if e.x is None:  # a reduced value or a softmax row
        sclip = cev.softmax_clip_match(e, v, dtype) if v.get("activation") == "softmax" else None
        if sclip:
            return "clip_epsilon", sclip
        if e.margin is not None and e.margin > 1.0 and math.isfinite(e.margin):
            growth = math.exp(min(e.margin, 700.0))
            gamma = float(v.get("gamma") or 0.0)
            if e.err_u <= 16.0 * max(gamma, 1.0) * (growth + 1.0) + 64.0 and (e.got == 0.0 or e.err_u >= 1e-4 * growth):
                name = "one_minus_p_cancellation" if gamma > 0 else "bce_cancellation"
                return name, f"softmax row dominated by its target (margin {e.margin:.3g}): error grows like e^margin"
        ratio = cev.simple_ratio(e, dtype)
        if ratio is not None and e.margin is None:
            return "convention", f"reduced value = {ratio} × expected: another normaliser"
        if dtype == "float64" and cev.in_float32(e.got) and (cev.long_significand(e.got) or rel <= 2.0**-20):
            return "low_precision_compute", "float64 result exactly representable in float32"
        if ev.reduced_bound is not None and e.err_u > ev.reduced_bound and rel > max(1e-3, 32 * fmt.unit_roundoff):
            return "convention", (f"{rel:.3g} relative error in a reduced value, beyond what rounding of its "
                                  f"elements explains ({ev.reduced_bound:.3g} u): another formula")  # fmt: skip
        if dtype in ("float16", "bfloat16"):
            return "low_precision_compute", f"{dtype} rounding beyond the budget in a reduced value"
        if dtype == "float64" and 2.0**-32 <= rel <= 2.0**-16:
            return "low_precision_compute", f"relative error {rel:.2g} ~ 2^-24: a float32 step in float64"
        return "unclassified", ""
    if e.expected == 0.0 and abs(e.got) >= fmt.smallest_normal:
        return "convention", "nonzero where the exact loss is 0 (an element weighted by α_t = 0?)"
    if e.got == 0.0 and 0.0 < abs(e.expected) < fmt.unit_roundoff:
        return "underflow_flush", "0 where the exact result is a normal number"
    moderate = abs(e.x) <= 4.0 if kind != "probs" else 0.02 <= e.x <= 0.98
    if moderate and rel > max(1e-3, 32 * fmt.unit_roundoff):
        return "convention", f"{rel:.3g} relative error at a moderate input: another formula or normaliser"
    if dtype == "float64" and cev.in_float32(e.got) and (cev.long_significand(e.got) or rel <= 2.0**-20):
        return "low_precision_compute", "float64 result exactly representable in float32"
    return "unclassified", ""


def _mechanism_causes(ev: Evidence) -> dict[int, tuple[str, str, str]]:
    """Index of an element -> (cause, why, mechanism key) for the elements a model of the
    catalogue (mechanisms.py) reproduces or explains most of, run in the check's dtype."""
    v = ev.variant
    if v.get("activation", "sigmoid") != "sigmoid" or float(v.get("label_smoothing") or 0.0):
        return {}
    kind = str(v.get("input_kind") or "logits")
    soft_ok = v.get("soft_target", "canonical") == "canonical"
    out: dict[int, tuple[str, str, str]] = {}
    for which in ("value", "grad"):
        idx = [i for i, e in enumerate(ev.elements)
               if e.which == which and e.x is not None and e.t is not None and math.isfinite(e.x)
               and (kind != "probs" or 0.0 <= e.x <= 1.0) and (soft_ok or e.t in (0.0, 1.0))
               and not (math.isinf(e.expected) or math.isnan(e.expected))]  # fmt: skip
        if not idx:
            continue
        els = [ev.elements[i] for i in idx]
        arr = {k: np.array([getattr(e, k) for e in els]) for k in ("x", "t", "got", "expected")}
        ex = mech.explain(arr["x"], arr["t"], arr["got"], arr["expected"], which, v, ev.dtype)
        for j, i in enumerate(idx):
            cause = ex.cause[j]
            if cause is None:
                continue
            keys = ex.keys[j]
            lead = next((k for k in keys if mech.BY_KEY[k].cause == cause), keys[0])
            how = "reproduced by" if ex.exact[j] else "most of the error explained by"
            model = " + ".join(mech.BY_KEY[k].key for k in keys)
            out[i] = (cause, f"{how} {model} in {ev.dtype}: {mech.BY_KEY[lead].explanation}", lead)
    return out


def classify(ev: Evidence) -> Verdict:
    """The cause of one failing check (see module docstring)."""
    if ev.fault or ev.check == "contract":
        return Verdict("fault", f"{ev.fault or 'contract'}: {_first(ev.message)}")
    if not ev.elements and ev.failure_tier == "extended" and _EMPTY_SHAPE.search(ev.message):
        return Verdict("nonfinite_input_policy",
                       f"an empty tensor comes back unreduced, {ev.dtype}: {_first(ev.message)} (a (0,)-shaped batch "
                       "returned as is, e.g. Keras' reduce_values; the spec's sum of no elements is 0, its mean NaN, "
                       "both scalars)")  # fmt: skip
    if not ev.elements:  # nothing was graded: the call gave no usable result
        if ev.failure_tier == "extended" and not _FAULT_WORDS.search(ev.message):
            return Verdict("nonfinite_input_policy", f"at ±inf/NaN/empty inputs, {ev.dtype}: {_first(ev.message)}")
        return Verdict("fault", _first(ev.message))
    # smallest |x| first: the first element of a cause is where it starts
    return _verdict([(e, c, ev) for e, c in zip(ev.elements, element_causes(ev), strict=True)])


def element_causes(ev: Evidence) -> list[tuple[str, str, str]]:
    """(cause, why, mechanism key) of each of the check's elements: the catalogue's reproduction
    where it runs, else the fallback rules."""
    by_mech = {**_mechanism_causes(ev), **_normaliser_marks(ev.elements, ev)}
    out = []
    for i, e in enumerate(ev.elements):
        if i in by_mech:
            out.append(by_mech[i])
        else:
            cause, why = _fallback_cause(e, ev)
            # a softmax row at the declared clip with its bound rounded to the dtype: that mechanism's fix
            rounded = cause == "clip_epsilon" and ev.variant.get("clip_eps") is not None and "rounded to" in why
            out.append((cause, why, "declared_clip_rounded" if rounded else ""))
    return out


def check_cause(counts: dict[str, int], worst: dict[str, float] | None = None) -> str:
    """One defect, one cause: a check takes the cause most of its elements carry; at equal counts the
    one with the largest error (the element the check reports); a non-finite result at a finite input
    (training stops) comes first whatever its count, and unclassified only where nothing else is found."""
    if "nonfinite_at_finite" in counts:
        return "nonfinite_at_finite"
    named = {c: n for c, n in counts.items() if c != "unclassified"} or counts
    w = worst or {}
    return min(named, key=lambda c: (-named[c], -w.get(c, 0.0), PRIORITY.index(c)))


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
    if e.x is None and e.row is not None and e.t is not None:
        where = f"in a softmax row (target class {int(e.t)})"
    elif e.x is None:
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
        size = cev.logit_margin(e, kind) if kind == "probs" and 0.0 <= e.x <= 1.0 else abs(e.x)
        size = size - math.log(2.0) if kind == "probs" and math.isfinite(size) else size  # |logit p| ~ margin
    return {"input": j(e.x), "target": j(e.t), "expected": j(e.expected), "got": j(e.got),
            "err_u": j(e.err_u), "which": e.which, "size": j(size)}  # fmt: skip


def classify_entry(entry: dict[str, Any]) -> Verdict:
    """Offline: the cause of a failing results-JSON entry (its own ``cause`` if it has one)."""
    if entry.get("cause") in CAUSES:
        ex = entry.get("cause_example")
        key = ex.get("mechanism") if isinstance(ex, dict) else None
        fix = mech.BY_KEY[key].fix if key in mech.BY_KEY else None
        return Verdict(entry["cause"], str(entry.get("cause_detail") or ""), ex, fix)
    return safely(lambda: classify(from_entry(entry)))


def safely(verdict: Any) -> Verdict:
    """``verdict()``, or 'unclassified' naming the error: a defect of the classifier must not
    cost the check its verdict or stop the suite."""
    try:
        return verdict()
    except Exception as exc:
        return Verdict("unclassified", f"the classifier failed: {type(exc).__name__}: {exc}"[:200])


# ----------------------------------------------------------------------------- summaries


def example_size(ex: Any) -> float:
    """How far out an example lies: its ``size`` (|x|, |logit p|), else |input|; inf if unknown."""
    if not isinstance(ex, dict):
        return math.inf
    x = cev.num(ex.get("size")) if ex.get("size") is not None else cev.num(ex.get("input"))
    return math.inf if x is None or math.isnan(x) else abs(x)


def tally(entries: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Per adapter, per cause: {"n": failing checks, "detail": the line of its smallest input}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for e in entries:
        if e.get("outcome") not in ("failed", "error"):
            continue
        v = classify_entry(e)
        row = out.setdefault(str(e.get("adapter")), {})
        slot = row.setdefault(v.cause, {"n": 0, "detail": v.detail, "size": math.inf, "example": v.example,
                                        "fix": v.fix})
        slot["n"] += 1
        size = example_size(v.example)
        if size < slot["size"]:
            slot.update(size=size, detail=v.detail, example=v.example, fix=v.fix or slot.get("fix"))
    return out


def summary_lines(entries: Any) -> list[str]:
    """Per adapter: failing checks per cause, by severity then count (SPEC §10.8), with the smallest
    input that shows it and the reproducing mechanism's fix."""
    lines = []
    for adapter, row in tally(entries).items():
        total = sum(s["n"] for s in row.values())
        unc = row.get("unclassified", {}).get("n", 0)
        lines.append(f"{adapter}: {total} failing checks, {unc} unclassified")
        level = {c: severity.severity(c, nonfinite=severity.nonfinite_example(slot.get("example")))
                 for c, slot in row.items()}  # fmt: skip
        for cause, slot in sorted(row.items(), key=lambda kv: severity.summary_key(level[kv[0]], kv[1]["n"],
                                                                                   kv[0])):  # fmt: skip
            lines.append(f"  [{level[cause]}] {cause} ({slot['n']}): {slot['detail'][:200]}")
            if cause != "unclassified":
                lines.append(f"    fix: {(slot.get('fix') or CAUSES[cause].fix)[:240]}")
    return lines


def audit_line() -> str:
    """The classifier's measured accuracy on the hand-labelled audit set (conformance/diagnosis/audit_accuracy.json,
    kept current by tests/test_audit.py): what a reader of any cause should know about its reliability."""
    import json
    from pathlib import Path

    try:
        a = json.loads((Path(__file__).parent / "audit_accuracy.json").read_text(encoding="utf-8"))
        return (f"cause classifier accuracy: {100 * a['accuracy']:.1f} % ({a['agree']} of {a['elements']} failing "
                f"elements whose cause was derived by hand from {a['implementations']} implementations' source; "
                f"{a['unclassified']} unclassified)")
    except (OSError, ValueError, KeyError, TypeError):
        return "cause classifier accuracy: not measured (conformance/diagnosis/audit_accuracy.json missing)"
