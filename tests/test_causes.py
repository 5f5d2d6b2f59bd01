"""Each rule of the cause classifier (conformance/diagnosis/causes.py, SPEC §10.7) on synthetic evidence.

Expected values come from mpmath; the "got" values are what the named defect computes (built
here in mpmath or numpy float32 arithmetic, never taken from the classifier), so each test fails
if the rule for its cause is removed or reordered.  Real failing checks of tests/broken_impls are
classified in tests/test_gate.py (the gate runs are shared there).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from focalspec.conformance.diagnosis import causes
from focalspec.conformance.diagnosis.causes import Element, Evidence, classify
from focalspec.spec.variant import Variant

mpmath.mp.dps = 50
U32, U64 = 2.0**-24, 2.0**-53


def variant(gamma: float = 2.0, alpha: float | None = 0.25, kind: str = "logits") -> dict:
    return {"activation": "sigmoid", "input_kind": kind, "gamma": gamma, "alpha": alpha,
            "soft_target": "canonical", "clip_eps": None, "reduction": "none"}  # fmt: skip


def fl(x: float, t: int, gamma: float, alpha: float | None = 0.25) -> float:
    """The exact focal loss (mpmath), hard target."""
    s = 1 if t == 1 else -1
    m = 1 / (1 + mpmath.exp(s * mpmath.mpf(x)))  # 1 - p_t
    ce = mpmath.log1p(mpmath.exp(-s * mpmath.mpf(x)))
    a = 1 if alpha is None else (alpha if t == 1 else 1 - alpha)
    return float(a * m**gamma * ce)


def el(x: float | None, t: float | None, exp: float, got: float, u: float, which: str = "value") -> Element:
    err = abs(got - exp) / (u * abs(exp)) if exp and math.isfinite(got) else math.inf
    return Element(x, t, exp, got, err, which)


def ev(dtype: str, *elements: Element, tier: str = "finite", **v: object) -> Evidence:
    return Evidence("value", dtype, variant(**v), tier, None, "", list(elements))  # type: ignore[arg-type]


def test_every_cause_is_documented_and_ordered() -> None:
    assert set(causes.PRIORITY) == set(causes.CAUSES)
    for c in causes.CAUSES.values():
        assert c.explanation and c.fix and c.spec.startswith("§"), c.name


def test_fault_from_the_isolation_layer_and_from_the_message() -> None:
    v = classify(Evidence("value", "float32", variant(), "finite", "hang", "value check of x: did not return"))
    assert v.cause == "fault" and v.detail.startswith("hang")
    msg = "value check of grid: the callable raised ValueError: hard 0/1 targets only"
    assert classify(Evidence("value", "float32", variant(), "finite", None, msg)).cause == "fault"


def test_nan_gradient_at_a_finite_saturated_input() -> None:
    e = el(17.5, 1.0, -1.2e-23, math.nan, U32, "grad")
    v = classify(ev("float32", e, tier="saturation", gamma=0.5))
    assert v.cause == "nonfinite_at_finite"
    assert v.detail.startswith("NaN gradient at x=17.5 (finite, saturation tier), t=1")
    assert "float32" in v.detail and v.example["input"] == 17.5


def test_only_infinite_inputs_disagree() -> None:
    e = el(math.inf, 1.0, 0.0, math.nan, U32)
    assert classify(ev("float32", e, tier="extended")).cause == "nonfinite_input_policy"
    reduced = el(None, None, math.inf, math.nan, U32)  # a sum over +inf elements
    assert classify(ev("float32", reduced, tier="extended")).cause == "nonfinite_input_policy"


def test_a_constant_factor_is_a_convention() -> None:
    exp = fl(2.0, 1, 2.0, 0.25)
    wrong_alpha = fl(2.0, 1, 2.0, 0.75)  # alpha on the wrong class: 3x
    v = classify(ev("float64", el(2.0, 1.0, exp, wrong_alpha, U64)))
    assert v.cause == "convention" and v.example["mechanism"] == "alpha_swapped", v.detail
    # a nonzero loss where alpha_t = 0 weights the element out
    assert classify(ev("float32", el(-10.0, 1.0, 0.0, 10.0, U32), alpha=0.0)).cause == "convention"


def test_float64_computed_in_float32() -> None:
    exp = fl(7.25, 1, 2.0)
    got = float(np.float32(exp * (1 + 3e-7)))
    v = classify(ev("float64", el(7.25, 1.0, exp, got, U64)))
    assert v.cause == "low_precision_compute"


def test_result_equal_to_the_clipped_probability_value() -> None:
    eps = 1e-7
    x = -36.0  # t = 1, far on the wrong side: p clipped up to eps, the loss capped at -log(eps)
    got = float(0.25 * (1 - mpmath.mpf(eps)) ** 2 * -mpmath.log(eps))
    v = classify(ev("float32", el(x, 1.0, fl(x, 1, 2.0), float(np.float32(got)), U32), tier="saturation"))
    assert v.cause == "clip_epsilon" and "1e-07" in v.detail


def test_zero_gradient_beyond_a_clamp_on_the_wrong_side() -> None:
    e = el(-40.0, 1.0, -0.25, 0.0, U32, "grad")
    assert classify(ev("float32", e, tier="saturation")).cause == "clip_epsilon"


def _naive_1p(x: float, t: int, gamma: float) -> float:
    """(1 - fl32(sigma(x)))^gamma * the exact cross-entropy, alpha 0.25 (t = 1)."""
    p = np.float32(1 / (1 + mpmath.exp(-x)))
    return float(np.float32(0.25 * float(np.float32(1) - p) ** gamma * float(mpmath.log1p(mpmath.exp(-x)))))


def test_one_minus_p_for_a_confident_correct_logit() -> None:
    x = 12.0
    v = classify(ev("float32", el(x, 1.0, fl(x, 1, 2.0), _naive_1p(x, 1, 2.0), U32)))
    assert v.cause == "one_minus_p_cancellation", v.detail
    # and the 0 it gives once sigma(x) rounds to 1 (x = 16.7 in float32)
    v = classify(ev("float32", el(16.7, 1.0, fl(16.7, 1, 2.0), 0.0, U32)))
    assert v.cause == "one_minus_p_cancellation"


def test_cross_entropy_cancellation_at_gamma_0() -> None:
    x = 10.0
    p = np.float32(1 / (1 + mpmath.exp(-x)))
    got = float(np.float32(-0.25 * math.log(float(p))))
    assert classify(ev("float32", el(x, 1.0, fl(x, 1, 0.0), got, U32), gamma=0.0)).cause == "bce_cancellation"


def test_the_simulation_tells_the_two_cancellations_apart() -> None:
    """gamma = 2: the same e^|x| growth, but only one naive form reproduces the values."""
    xs = np.array([6.0, 7.0, 8.0, 9.0, 10.0])
    exp = np.array([fl(x, 1, 2.0) for x in xs])
    p = np.array([np.float32(1 / (1 + mpmath.exp(-x))) for x in xs], dtype=np.float32)
    m = np.array([float(1 / (1 + mpmath.exp(x))) for x in xs])
    naive_ce = 0.25 * m**2 * -np.log(p).astype(np.float64)  # -log(sigmoid) in float32
    naive_factor = np.array([_naive_1p(x, 1, 2.0) for x in xs])
    for got, want in ((naive_ce, "bce_cancellation"), (naive_factor, "one_minus_p_cancellation")):
        err = np.abs(got - exp) / (U32 * np.abs(exp))
        e = causes.from_arrays("value", "float32", variant(), "value", xs, np.ones(5), got, exp, err, 512.0,
                               "finite", (got, exp))  # fmt: skip
        assert e.elements, "the synthetic errors must fail the acceptable budget"
        assert classify(e).cause == want


def test_a_zero_that_float32_compute_reproduces_is_low_precision() -> None:
    exp = fl(20.0, 1, 5.0)  # 1.9e-53: a normal float64, 0 in float32
    v = classify(ev("float64", el(20.0, 1.0, exp, 0.0, U64), gamma=5.0))
    assert v.cause == "low_precision_compute" and v.example["mechanism"] == "precision_float32"


def test_what_no_rule_explains_is_unclassified() -> None:
    exp = fl(3.0, 1, 2.0)
    got = exp * (1 + 1000 * U32)  # 1000 u at x = 3: more than rounding, less than a formula
    assert classify(ev("float32", el(3.0, 1.0, exp, got, U32))).cause == "unclassified"


def test_the_most_serious_cause_of_a_check_wins_and_names_its_smallest_input() -> None:
    nan = el(30.0, 1.0, -1e-20, math.nan, U32, "grad")
    inf_in = el(math.inf, 1.0, 0.0, math.nan, U32, "grad")
    nan_small = el(18.0, 1.0, -1e-8, math.nan, U32, "grad")
    v = classify(ev("float32", nan_small, nan, inf_in, tier="saturation", gamma=0.5))
    assert v.cause == "nonfinite_at_finite" and v.example["input"] == 18.0
    assert v.example["mechanism"] == "pow_autodiff"


def test_entries_keep_their_cause_and_summaries_count_them() -> None:
    conv = {"adapter": "a", "outcome": "failed", "cause": "convention"}
    entries = [
        {**conv, "cause_detail": "x=2", "cause_example": {"input": 2.0}},
        {**conv, "cause_detail": "x=1", "cause_example": {"input": 1.0}},
        {"adapter": "a", "outcome": "passed"},
        {"adapter": "a", "outcome": "failed", "check": "value", "dtype": "float32", "variant": variant(),
         "fault": "crash", "message": "value check of c: the worker died from SIGSEGV"},
    ]  # fmt: skip
    t = causes.tally(entries)["a"]
    assert t["convention"]["n"] == 2 and t["convention"]["detail"] == "x=1"
    assert t["fault"]["n"] == 1
    lines = causes.summary_lines(entries)
    assert lines[0] == "a: 3 failing checks, 0 unclassified" and any("fix:" in ln for ln in lines)


@pytest.mark.parametrize("name", sorted(causes.CAUSES))
def test_spec_lists_every_cause(name: str) -> None:
    from pathlib import Path

    spec = (Path(__file__).resolve().parent.parent / "spec" / "SPEC.md").read_text(encoding="utf-8")
    section = spec[spec.index("**10.7 Causes.**") : spec.index("## 11.")]
    assert f"`{name}`" in section


def _softmax_entry(row: list[float], target: int, dtype: str, rel: float) -> dict:
    z = [mpmath.mpf(v) for v in row]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    p = mpmath.exp(z[target] - lse)
    exp = float(0.25 * (1 - p) ** 2 * -mpmath.log(p))
    v = dict(variant(), activation="softmax")
    worst = {"index": [0], "input": row, "target": target, "expected": exp, "got": exp * (1 + rel),
             "err_u": rel / (U32 if dtype == "float32" else U64), "which": "value"}  # fmt: skip
    return {"check": "value", "dtype": dtype, "variant": v, "failure_tier": "finite", "worst": worst}


def test_softmax_rows_dominated_by_their_target_cancel_like_1_minus_p() -> None:
    row = [5.65625, -4.703125, -3.859375, -4.75]  # margin 9.5: 1 - p_c ~ 1e-4
    entry = _softmax_entry(row, 0, "float32", 3000 * U32)
    assert causes.classify_entry(entry).cause == "one_minus_p_cancellation"
    entry = _softmax_entry([0.5, 0.25, 0.0, -0.5], 0, "float32", 3000 * U32)  # no dominant class
    assert causes.classify_entry(entry).cause == "unclassified"


def test_a_float32_sized_error_in_float64() -> None:
    entry = _softmax_entry([1.0, -0.5, 2.0, 0.25], 2, "float64", 4e-8)
    assert causes.classify_entry(entry).cause == "low_precision_compute"


def test_a_declared_clip_with_its_bound_rounded_to_float32() -> None:
    """Keras' binary loss clips p to [1e-7, 1 - 1e-7] in float32, where 1 - 1e-7 is 1 - 2^-23."""
    x, eps = 36.7368, mpmath.mpf("1e-7")
    hi32 = mpmath.mpf(float(np.float32(1 - 1e-7)))
    exp = float(0.75 * (1 / (1 + mpmath.exp(-x))) ** 2 * -mpmath.log(eps))  # t = 0: -log(1 - (1 - eps))
    got = float(0.75 * (1 / (1 + mpmath.exp(-x))) ** 2 * -mpmath.log(1 - hi32))
    v = dict(variant(), clip_eps=1e-7, clip_scope="ce")
    e = el(x, 0.0, exp, got, U32)
    verdict = classify(Evidence("value", "float32", v, "saturation", None, "", [e]))
    assert verdict.cause == "clip_epsilon" and verdict.example["mechanism"] == "declared_clip_rounded"


def test_a_classifier_error_is_unclassified_not_a_crash() -> None:
    worst = {"input": 3.0, "target": 1.0, "expected": 1.0, "got": 2.0, "err_u": 9.0}
    v = causes.classify_entry({"check": "value", "dtype": "no-such-dtype", "variant": variant(), "worst": worst})
    assert v.cause == "unclassified" and v.detail.startswith("the classifier failed: ValueError")


def test_the_gradient_on_a_dtype_rounded_clip_bound_is_not_graded() -> None:
    """SPEC §3: float64 0.9999999 is the float an implementation forms for 1 - 1e-7 (Keras' upper
    clip bound); the exact bound lies 5.8e-17 below it.  Keras clips it as inside, the exact
    reading as outside: both one-sided derivatives are accepted there, and nowhere else."""
    from focalspec.conformance.suite import grading

    v = Variant(input_kind="probs", gamma=2.0, alpha=0.25, clip_eps=1e-7, clip_scope="ce")
    x, t = np.array([0.9999999, 0.99999]), np.zeros(2)
    exact = grading.expected(v, x, t, "float64")
    as_inside = grading.expected(v.with_(clip_upper=0.9999999), x, t, "float64")  # the bound as Keras forms it
    assert abs(exact.grad[0]) < 100 < abs(as_inside.grad[0])  # 24.18 vs 7.5e6: the two sides differ
    assert grading.measure_grad(as_inside.grad, exact, v, x, t, "float64", "accurate").n_bad == 0
    off = exact.grad.copy()
    off[1] *= 1 + 1e-9
    assert grading.measure_grad(off, exact, v, x, t, "float64", "accurate").n_bad == 1
    assert grading.on_clip_bound(Variant(input_kind="probs"), x, "float64") is None


def _invariant_outputs(inv, evals, dtype):  # type: ignore[no-untyped-def]
    """Outputs equal to the exact values of each evaluation (a correct implementation)."""
    from focalspec.adapters.base import Output
    from focalspec.conformance.suite.grading import expected

    outs = []
    for e in evals:
        exp = expected(e.variant, e.inputs, e.targets, dtype)
        outs.append(Output(loss=np.array(exp.value, dtype=np.float64), grad=np.array(exp.grad, dtype=np.float64)))
    return outs


def test_an_invariant_is_classified_against_exact_values_not_its_twin_call() -> None:
    """A NaN in the twin call (gamma0_linear's t = 1 evaluation at a large x) is the twin's own
    NaN at a finite input, not the soft-target call's 'convention' or 'unclassified' (issue #24)."""
    from focalspec.conformance.suite import invariants
    from focalspec.conformance.suite.families import InvariantCase

    inv = InvariantCase("inv_gamma0_soft_linear", "gamma0_linear", Variant(gamma=0.0, alpha=None), {}, 64, 7,
                        "§4", "")  # fmt: skip
    dtype = "float64"
    evals = invariants.evaluations(inv, dtype)
    outs = _invariant_outputs(inv, evals, dtype)
    i = int(np.argmax(evals[1].inputs))
    outs[1].grad[i] = math.nan  # the t = 1 call alone breaks, at a finite input
    mv, mg = invariants.compare(inv, evals, outs, dtype, "acceptable")
    assert mv.passed and mg is not None and not mg.passed
    v = causes.for_measures("invariant", dtype, inv.variant.to_dict(), [mg], "saturation")
    assert v.cause == "nonfinite_at_finite", v.detail
    assert v.example is not None and v.example["target"] == 1.0 and v.example["input"] == evals[1].inputs[i]
    # the soft-target call, graded alone, is right: an identity broken by one side names that side
    assert all(r["t"] is not evals[0].targets or not np.any(r["err"] > r["limit"]) for r in mg.extra["evals"])


def test_an_invariant_whose_evaluations_each_pass_keeps_the_twin_comparison() -> None:
    """Where no evaluation misses its exact value, the classifier reads the identity itself."""
    from focalspec.conformance.suite import invariants
    from focalspec.conformance.suite.families import InvariantCase

    inv = InvariantCase("inv_alpha", "alpha", Variant(gamma=2.0, alpha=0.25), {}, 32, 3, "§2", "")
    evals = invariants.evaluations(inv, "float64")
    outs = _invariant_outputs(inv, evals, "float64")
    assert all(m is None or m.passed for m in invariants.compare(inv, evals, outs, "float64", "acceptable"))
    assert causes._from_evaluations("invariant", "float64", [], "finite") is None


def test_a_softmax_row_whose_target_probability_underflows_does_not_crash_the_classifier() -> None:
    """monai-softmax, float64: a row with its target 800 below its max (p_target = 0 in float64)
    once made the softmax clip rule take log(0) ('math domain error', issue #24)."""
    rows = np.array([[-0.2, 1.7e-7, 801.6, -29.3, -0.7], [0.0, 26.4, -5.1, 0.0, -27.4]])
    cls = np.array([4, 1])
    v = Variant(activation="softmax", gamma=0.5, alpha=None).to_dict()
    exact = np.array([802.3, 6.65e-12])
    got = np.array([700.0, 0.0])
    err = np.array([1e12, 9.0e15])
    ev_ = causes.from_arrays("value", "float64", v, "value", rows, cls, got, exact, err, 2.0**21, "finite")
    assert ev_.elements[0].row is not None
    verdict = causes.safely(lambda: classify(ev_))
    assert "classifier failed" not in verdict.detail, verdict.detail


def test_an_empty_batch_returned_unreduced_is_the_empty_tensor_policy_not_a_fault() -> None:
    """Keras' reduce_values returns a (0,)-shaped batch as is (keras/src/losses/loss.py): at an
    empty tensor (extended tier) that is the library's declared behaviour, named, severity policy."""
    from focalspec.conformance.diagnosis import severity

    for gives in ("()", "(0, 3)"):
        msg = f"value check of empty_sum [v] in float32 on k: the loss has shape (0,), the spec gives {gives}"
        v = classify(Evidence("value", "float32", variant(), "extended", None, msg))
        assert v.cause == "nonfinite_input_policy" and "empty tensor" in v.detail, v.detail
        assert severity.severity(v.cause) == "policy"
    # a wrong shape at a non-empty input stays a fault
    msg = "value check of grid [v] in float32 on k (cpu, eager): the loss has shape (3,), the spec gives ()"
    assert classify(Evidence("value", "float32", variant(), "finite", None, msg)).cause == "fault"


def _keras_on_torch(x: float, t: float, gamma: float, alpha: float, dtype: str) -> tuple[float, float]:
    """keras.losses.binary_focal_crossentropy(from_logits=True) on the torch backend, step by step
    (keras/src/losses/losses.py, keras/src/backend/torch/nn.py binary_crossentropy): value, gradient."""
    torch = pytest.importorskip("torch")
    dt = getattr(torch, dtype)
    xt = torch.tensor([x], dtype=dt, requires_grad=True)
    tt = torch.tensor([t], dtype=dt)
    p = torch.sigmoid(xt)
    bce = torch.nn.functional.binary_cross_entropy(torch.clip(p, 1e-7, 1.0 - 1e-7), tt, reduction="none")
    p_t = tt * p + (1 - tt) * (1 - p)
    loss = (tt * alpha + (1 - tt) * (1 - alpha)) * (torch.pow(1.0 - p_t, gamma) * bce)
    loss.sum().backward()
    return float(loss.detach().double()[0]), float(xt.grad.double()[0])


@pytest.mark.parametrize(("x", "t", "gamma", "alpha", "dtype", "which", "cause"), [
    (-10.0, 0.0, 0.5, 0.0, "float32", "grad", "one_minus_p_cancellation"),  # 1 − (1 − p): 1.29e3 u
    (-10.0, 0.0, 2.0, 0.0, "float32", "grad", "one_minus_p_cancellation"),
    # 1 − 1e−7 is 1 in float16, so p = 1 passes the clip and the log cap gives 100: computing in float32 and
    # forming the bound exactly each remove the error; the formula's (the bound's) comes first (SPEC §10.7)
    (10.0, 0.0, 2.0, 0.25, "float16", "value", "clip_epsilon"),
])  # fmt: skip
def test_keras_on_torch_is_reproduced_step_by_step(x, t, gamma, alpha, dtype, which, cause) -> None:  # type: ignore[no-untyped-def]
    """Keras' binary focal loss on torch: torch's binary_cross_entropy of the clipped p (log capped
    at −100, fused backward) and 1 − p_t formed as 1 − p (issue #24: 53 unclassified checks)."""
    from focalspec.conformance.suite.grading import expected

    v = Variant(gamma=gamma, alpha=alpha, clip_eps=1e-7, clip_scope="ce")
    xs, ts = np.array([x]), np.array([t])
    exp = expected(v, xs, ts, dtype)
    got = _keras_on_torch(x, t, gamma, alpha, dtype)[0 if which == "value" else 1]
    want = float((exp.value if which == "value" else exp.grad)[0])
    e = el(x, t, want, got, {"float32": U32, "float16": 2.0**-11}[dtype], which)
    verdict = classify(Evidence(which, dtype, v.to_dict(), "finite", None, "", [e]))
    assert verdict.cause == cause, verdict.detail
    assert "declared_clip_torch_bce" in verdict.detail and "reproduced by" in verdict.detail


def test_keras_categorical_clip_bound_rounded_to_float32_on_probability_rows() -> None:
    """keras.losses.categorical_focal_crossentropy renormalises the row, clips it to
    [1e−7, 1 − 1e−7] in float32 (1 − 1e−7 is 1 − 2^−23 there) and takes α(1 − p)^γ·(−log p):
    4.235e−22 where the declared clip gives 2.5e−22 (issue #24: 'unclassified' before)."""
    from focalspec.conformance.suite.grading import expected

    v = Variant(activation="softmax", input_kind="probs", gamma=2.0, alpha=0.25, clip_eps=1e-7, renormalize=True)
    x, t = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), np.array([0, 1])
    exp = expected(v, x, t, "float32")
    f = np.float32
    hi, lo = f(1) - f(1e-7), f(1e-7)  # keras: ops.clip(output, epsilon, 1 - epsilon) in float32
    got = np.array([f(0.25) * (f(1) - hi) ** 2 * -np.log(hi), f(0.25) * (f(1) - lo) ** 2 * -np.log(lo)])
    err = np.abs(got - exp.value) / np.abs(exp.value) / U32
    verdict = classify(causes.from_arrays("value", "float32", v.to_dict(), "value", x, t, got, exp.value, err,
                                          512.0, "finite"))  # fmt: skip
    assert verdict.cause == "clip_epsilon" and "rounded to float32" in verdict.detail, verdict.detail
    assert verdict.fix is not None and "--clip-eps with the dtype's value" in verdict.fix


def test_torchvision_zero_gradient_past_float32_sigmoid_saturation_is_torch_bce_not_a_clip() -> None:
    """torchvision.ops.sigmoid_focal_loss, γ = 0, float32, t = 1, x ≥ 16.6355: torch's σ(x) =
    1/(1 + e^{−x}) rounds to 1, and binary_cross_entropy_with_logits' backward σ(x) − t is 0 where the
    exact gradient is −α·σ(−x), a normal float32 number (issue #24: was attributed to a clip at 1e−7)."""
    torch = pytest.importorskip("torch")
    from focalspec.conformance.suite.grading import expected

    x = np.array([16.640625, 17.0, 20.0])
    t = np.ones(3)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float32)
    # torchvision/ops/focal_loss.py sigmoid_focal_loss, line for line (torchvision itself is not imported:
    # its import pulls in triton, which crashed an xdist worker here)
    p = torch.sigmoid(xt)
    ce_loss = torch.nn.functional.binary_cross_entropy_with_logits(xt, tt, reduction="none")
    p_t = p * tt + (1 - p) * (1 - tt)
    loss = ce_loss * ((1 - p_t) ** 0.0)
    ((0.25 * tt + (1 - 0.25) * (1 - tt)) * loss).sum().backward()
    got = xt.grad.double().numpy()
    v = Variant(gamma=0.0, alpha=0.25, reduction="sum")
    exp = expected(v, x, t, "float32")
    assert np.all(got == 0.0) and np.all(exp.grad != 0.0)
    err = np.abs(got - exp.grad) / np.abs(exp.grad) / U32
    verdict = classify(causes.from_arrays("grad", "float32", v.to_dict(), "grad", x, t, got, exp.grad, err, 512.0,
                                          "finite"))  # fmt: skip
    assert verdict.cause == "bce_cancellation" and "torch_bce" in verdict.detail, verdict.detail


def test_alpha_zero_read_as_no_alpha_is_its_own_convention_not_alpha_on_the_wrong_class() -> None:
    """ultralytics' FocalLoss weights by α only `if (alpha > 0).any()`: at α = 0 every element keeps
    weight 1 (the spec's α_t is 0 for positives, 1 for negatives); α on the wrong class would give
    the negatives 0 too, which the implementation does not."""
    from focalspec.conformance.diagnosis import mechanisms as mech
    from focalspec.conformance.suite.grading import expected

    v = Variant(gamma=2.0, alpha=0.0)
    x = np.array([-2.0, -0.5, 0.0, 1.5, 3.0, -2.0, -0.5, 0.0, 1.5, 3.0])
    t = np.array([1.0] * 5 + [0.0] * 5)
    exp = expected(v, x, t, "float32")
    # ultralytics/utils/loss.py FocalLoss at alpha = 0: BCE-with-logits · (1 − p_t)^γ, no α factor
    p = 1.0 / (1.0 + np.exp(-x))
    got = np.asarray(((np.logaddexp(0.0, x) - x * t) * (1.0 - (t * p + (1 - t) * (1 - p))) ** 2.0), dtype=np.float32)
    got = got.astype(np.float64)
    bad = np.abs(got - exp.value) > 1e-3 * np.abs(got)
    assert bad.sum() == 5  # the positives, whose exact loss is 0
    ex = mech.explain(x[bad], t[bad], got[bad], exp.value[bad], "value", v.to_dict(), "float32")
    assert ex.cause == ["convention"] * 5 and all(k == ("alpha_zero_off",) for k in ex.keys), ex.keys


def test_a_nan_among_a_causes_elements_is_its_example_and_makes_it_critical() -> None:
    """Keras' declared clip in bfloat16 (1 − 1e−7 rounds to 1): at p = 1e−7 the loss is −0 instead of
    7.5e−22, at p = 1 (t = 1) NaN instead of 0. Both elements carry the clip's cause; the example shown
    (and read for the severity) is the NaN, not the smaller input, so the check is critical."""
    from focalspec.conformance.diagnosis import severity

    v = {**variant(kind="probs"), "clip_eps": 1e-7, "clip_scope": "ce"}
    small = Element(1.0011717677116394e-07, 0.0, 7.526359745929398e-22, -0.0, 256.0, "value")
    nan = Element(1.0, 1.0, 0.0, math.nan, math.inf, "value")
    verdict = classify(Evidence("value", "bfloat16", v, "finite", None, "", [small, nan]))
    assert verdict.cause == "clip_epsilon", verdict.detail
    assert verdict.example is not None and math.isnan(float(verdict.example["got"])), verdict.example
    assert severity.severity(verdict.cause, nonfinite=severity.nonfinite_example(verdict.example)) == "critical"
