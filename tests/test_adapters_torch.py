"""The PyTorch adapters against the mpmath reference: focalspec's own implementation must be
'accurate' (spec.tolerance.budget) in float64 and float32, eager and compiled, and in bfloat16
and float16 on a smaller set; torchvision runs where installed, its known defects are pinned down,
and what it cannot express is a reason from ``supports``.

Expected values come from ``reference.exact`` at the dtype-rounded inputs only.  Run the
torchvision part with ``/work/venv-tv/bin/python -m pytest tests/test_adapters_torch.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from ref_support import OUTSIDE_PLAIN_SIGMOID, expected, rounded

from focalspec.adapters.base import AdapterError
from focalspec.reference import exact as ref
from focalspec.spec.tolerance import budget, error_in_u, worst
from focalspec.spec.variant import Variant

torch = pytest.importorskip("torch")

from focalspec.adapters.own_torch import FocalspecTorchAdapter  # noqa: E402
from focalspec.adapters.thirdparty.torchvision_adapter import TorchvisionAdapter  # noqa: E402

OWN = FocalspecTorchAdapter()
TV = TorchvisionAdapter()
TV_MISSING = TV.unavailable_reason()

HARD_X = [-30.0, -5.0, -1e-8, 0.0, 2.0, 17.0, 40.0]
GAMMAS = [0.0, 0.5, 2.0]
ALPHAS = [None, 0.25]
MODES = ["eager", "compiled"]
# The full sweeps compile one graph per variant and dtype (1-3 s each with a warm Inductor cache,
# 5-20 s cold on a small CPU box): compiled there is marked slow; test_own_compiled_sample is not.
SWEEP_MODES = ["eager", pytest.param("compiled", marks=pytest.mark.slow)]
STRICT_DTYPES = ["float64", "float32"]


# ----------------------------------------------------------------------------- helpers


def errors(adapter: Any, v: Variant, x: Any, t: Any, dtype: str, mode: str = "eager") -> dict[str, Any]:
    """Run the adapter and mp at the dtype-rounded inputs; errors in u of value and gradient."""
    xr = rounded(x, dtype)
    t_arr = np.asarray(t)
    tr = t_arr if t_arr.dtype.kind in "iu" else rounded(t_arr, dtype)
    out = adapter.run(v, xr, tr, dtype, "cpu", mode, want_grad=True)
    mp_res = ref.evaluate(v, xr, tr)
    exact = mp_res.losses if mp_res.value is None else np.array(mp_res.value, dtype=object)
    value_exact = expected(exact, dtype)
    grad_exact = expected(mp_res.grad, dtype)
    grad_scale = np.array([float(s) for s in mp_res.grad_scale.ravel()]).reshape(mp_res.grad.shape)
    ev = error_in_u(out.loss, value_exact, value_exact, dtype)
    eg = error_in_u(out.grad, grad_exact, grad_scale, dtype)
    return {"value": ev, "grad": eg, "out": out, "x": xr, "t": tr, "exact": value_exact, "gexact": grad_exact}


def assert_grade(res: dict[str, Any], limit: float, what: str) -> None:
    for part in ("value", "grad"):
        err, i = worst(res[part])
        if not err <= limit:
            got = (res["out"].loss if part == "value" else res["out"].grad).ravel()
            exp = (res["exact"] if part == "value" else res["gexact"]).ravel()
            raise AssertionError(
                f"{what}: {part} error {err:.3g} u > {limit:g} u at flat index {i}: "
                f"got {got[min(i, got.size - 1)]!r}, expected {exp[min(i, exp.size - 1)]!r}"
            )


def need_compile(mode: str) -> None:
    if mode == "compiled":
        reason = OWN.supports(Variant(), "float32", "cpu", "compiled")
        if reason:
            pytest.skip(reason)


# ----------------------------------------------------------------------------- own implementation


@pytest.mark.parametrize("dtype", STRICT_DTYPES)
@pytest.mark.parametrize("mode", SWEEP_MODES)
@pytest.mark.parametrize("soft_target", ["canonical", "geometric", "margin", "two_term"])
def test_own_hard_and_soft_targets_accurate(dtype: str, mode: str, soft_target: str) -> None:
    need_compile(mode)
    x = [*HARD_X, -HARD_X[-1], math.inf, -math.inf]
    for gamma in GAMMAS:
        for alpha in ALPHAS:
            v = Variant(gamma=gamma, alpha=alpha, soft_target=soft_target)
            for target in (0.0, 1.0, 0.3):
                res = errors(OWN, v, x, [target] * len(x), dtype, mode)
                assert_grade(res, budget(dtype, gamma).accurate, f"{v.label()} t={target} {dtype} {mode}")


@pytest.mark.parametrize("dtype", STRICT_DTYPES)
@pytest.mark.parametrize("mode", SWEEP_MODES)
def test_own_probs_clip_smoothing_accurate(dtype: str, mode: str) -> None:
    need_compile(mode)
    p = [0.0, 1e-9, 1e-7, 0.01, 0.3, 0.5, 0.75, 0.999, 1 - 2.0**-20, 1.0]
    logits = [-40.0, -17.0, -5.0, 0.0, 0.5, 5.0, 17.0, 40.0]
    for gamma in GAMMAS:
        b = budget(dtype, gamma).accurate
        for target in (0.0, 1.0, 0.3):
            v = Variant(input_kind="probs", gamma=gamma, alpha=0.25)
            assert_grade(errors(OWN, v, p, [target] * len(p), dtype, mode), b, f"{v.label()} t={target}")
            v = Variant(input_kind="probs", gamma=gamma, alpha=None, clip_eps=1e-7)
            assert_grade(errors(OWN, v, p, [target] * len(p), dtype, mode), b, f"{v.label()} t={target}")
            v = Variant(gamma=gamma, clip_eps=1e-7)
            assert_grade(errors(OWN, v, logits, [target] * len(logits), dtype, mode), b, f"{v.label()} t={target}")
            for st in ("canonical", "margin"):
                v = Variant(gamma=gamma, label_smoothing=0.1, soft_target=st)
                res = errors(OWN, v, logits, [target] * len(logits), dtype, mode)
                assert_grade(res, b, f"{v.label()} t={target}")


@pytest.mark.parametrize("dtype", STRICT_DTYPES)
@pytest.mark.parametrize("mode", SWEEP_MODES)
def test_own_softmax_accurate(dtype: str, mode: str) -> None:
    need_compile(mode)
    z = np.array([[30.0, 1.0, -2.0, 0.5, -40.0], [0.0, 0.0, 0.0, 0.0, 0.0], [3.0, 2.9, -1.0, 1.0, 0.0]])
    idx = np.array([0, 3, 1])
    dist = np.array([[0.7, 0.1, 0.1, 0.05, 0.05], [0.2] * 5, [0.0, 0.5, 0.5, 0.0, 0.0]])
    probs = np.array([[1 - 2.0**-20, 2.0**-22, 2.0**-22, 2.0**-22, 2.0**-22], [0.2] * 5, [0.1, 0.2, 0.3, 0.3, 0.1]])
    for gamma in GAMMAS:
        b = budget(dtype, gamma).accurate
        for alpha in (None, 0.25, (0.1, 0.2, 0.3, 0.2, 0.2)):
            v = Variant(activation="softmax", gamma=gamma, alpha=alpha)
            assert_grade(errors(OWN, v, z, idx, dtype, mode), b, f"{v.label()} indices")
            assert_grade(errors(OWN, v, z, dist, dtype, mode), b, f"{v.label()} distributions")
        v = Variant(activation="softmax", gamma=gamma, label_smoothing=0.1, reduction="mean")
        assert_grade(errors(OWN, v, z, idx, dtype, mode), b, v.label())
        v = Variant(activation="softmax", gamma=gamma, clip_eps=1e-7)
        assert_grade(errors(OWN, v, z, idx, dtype, mode), b, v.label())
        v = Variant(activation="softmax", input_kind="probs", gamma=gamma, alpha=None)
        assert_grade(errors(OWN, v, probs, idx, dtype, mode), b, v.label())
        v = Variant(activation="softmax", input_kind="probs", gamma=gamma, renormalize=True, clip_eps=1e-7)
        assert_grade(errors(OWN, v, probs * 0.5, dist, dtype, mode), b, v.label())


@pytest.mark.parametrize("dtype", STRICT_DTYPES)
@pytest.mark.parametrize("mode", SWEEP_MODES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "normalized"])
def test_own_random_batch_accurate(dtype: str, mode: str, reduction: str) -> None:
    need_compile(mode)
    rng = np.random.default_rng(20240611)
    x = rng.uniform(-50, 50, size=(6, 16))
    t = (rng.uniform(size=x.shape) < 0.3).astype(np.float64)
    t[0] = rng.uniform(size=16)  # one row of soft targets
    for gamma in (0.5, 2.0):
        v = Variant(gamma=gamma, reduction=reduction)
        res = errors(OWN, v, x, t, dtype, mode)
        assert_grade(res, budget(dtype, gamma, x.size if reduction != "none" else 1).accurate, v.label())
    z = rng.uniform(-50, 50, size=(8, 6))
    idx = rng.integers(0, 6, size=8)
    if reduction != "normalized":
        v = Variant(activation="softmax", gamma=2.0, reduction=reduction)
        assert_grade(errors(OWN, v, z, idx, dtype, mode), budget(dtype, 2.0, 8).accurate, v.label())


def test_own_float32_inexact_gamma_accurate() -> None:
    """gamma = 0.3 or 1.7 is not a float32 number: pow(m, float32(gamma)) is off by
    gamma |log m| u / 2 (23 u at gamma 1.7, x = 60), so the low part of gamma is carried."""
    x = [-60.0, -30.0, -5.0, 0.3, 5.0, 17.0, 30.0, 45.0, 60.0]
    for gamma in (0.3, 1.7):
        for soft_target in ("canonical", "margin"):
            v = Variant(gamma=gamma, soft_target=soft_target)
            for target in (0.0, 1.0, 0.9):
                res = errors(OWN, v, x, [target] * len(x), "float32")
                assert_grade(res, budget("float32", gamma).accurate, f"{v.label()} t={target}")


@pytest.mark.parametrize(
    "dtype, xs",
    [
        ("float64", [-2000.0, -1777.7, -1500.3, -800.1, 2000.0, 3000.3]),
        ("float32", [-250.0, -222.2, -150.3, -80.1, 250.0, 400.3]),
    ],
)
def test_own_margin_far_saturation_accurate(dtype: str, xs: list[float]) -> None:
    """margin form with soft targets where (1 - p_t) underflows but (1 - p_t)^gamma * CE does not:
    x (2t - 1) is carried as a double word, the power is scaled out of the subnormal range."""
    for gamma in (0.3, 0.5, 2.0):
        for target in (0.1, 0.3, 0.9):
            for ls in (0.0, 0.1):
                v = Variant(gamma=gamma, soft_target="margin", label_smoothing=ls)
                res = errors(OWN, v, xs, [target] * len(xs), dtype)
                assert_grade(res, budget(dtype, gamma).accurate, f"{v.label()} t={target}")


def test_own_compiled_sample_accurate() -> None:
    """One variant of each code path under torch.compile (float32), 'accurate' like eager."""
    need_compile("compiled")
    x = [*HARD_X, -40.0, math.inf, -math.inf]
    logits_cases = [
        (Variant(gamma=0.5), [1.0] * len(x)),
        (Variant(gamma=2.0, soft_target="geometric", alpha=None), [0.3] * len(x)),
        (Variant(gamma=0.5, soft_target="margin", label_smoothing=0.1), [0.0] * len(x)),
        (Variant(gamma=2.0, soft_target="two_term"), [0.3] * len(x)),
    ]
    for v, t in logits_cases:
        assert_grade(errors(OWN, v, x, t, "float32", "compiled"), budget("float32", v.gamma).accurate, v.label())
    p = [0.0, 1e-9, 0.01, 0.5, 0.999, 1.0]
    v = Variant(input_kind="probs", gamma=0.5, clip_eps=1e-7)
    res = errors(OWN, v, p, [1.0] * len(p), "float32", "compiled")
    assert_grade(res, budget("float32", 0.5).accurate, v.label())
    z = np.array([[30.0, 1.0, -2.0, 0.5, -40.0], [3.0, 2.9, -1.0, 1.0, 0.0]])
    v = Variant(activation="softmax", gamma=2.0, alpha=(0.1, 0.2, 0.3, 0.2, 0.2), reduction="mean")
    res = errors(OWN, v, z, np.array([0, 1]), "float32", "compiled")
    assert_grade(res, budget("float32", 2.0, 2).accurate, v.label())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_own_half_precision_accurate(dtype: str) -> None:
    x = [-30.0, -5.0, -0.25, 0.0, 2.0, 11.0, 17.0]
    for gamma in GAMMAS:
        for target in (0.0, 1.0, 0.3):
            v = Variant(gamma=gamma)
            res = errors(OWN, v, x, [target] * len(x), dtype)
            assert_grade(res, budget(dtype, gamma).accurate, f"{v.label()} t={target} {dtype}")
    v = Variant(activation="softmax", gamma=2.0)
    res = errors(OWN, v, [[8.0, 1.0, -2.0, 0.5, -4.0]], [0], dtype)
    assert_grade(res, budget(dtype, 2.0).accurate, f"{v.label()} {dtype}")


@pytest.mark.parametrize("mode", MODES)
def test_own_saturated_gradient_is_finite(mode: str) -> None:
    need_compile(mode)
    v = Variant(gamma=0.5, alpha=0.25)
    for dtype in ("float64", "float32", "bfloat16", "float16"):
        out = OWN.run(v, np.array([40.0, -40.0, 1e4]), np.array([1.0, 0.0, 1.0]), dtype, "cpu", mode)
        assert np.all(np.isfinite(out.grad)), (dtype, out.grad)
        assert np.all(out.loss >= 0)


def test_own_nan_propagates_and_infinite_limits() -> None:
    v = Variant(gamma=0.5, alpha=0.25)
    out = OWN.run(v, np.array([math.nan, math.inf, math.inf, -math.inf]), np.array([1.0, 1.0, 0.0, 1.0]), "float32")
    assert math.isnan(out.loss[0]) and math.isnan(out.grad[0])
    assert out.loss[1] == 0.0 and out.grad[1] == 0.0
    assert out.loss[2] == math.inf and out.grad[2] == pytest.approx(0.75)
    assert out.loss[3] == math.inf and out.grad[3] == pytest.approx(-0.25)


def test_own_edge_shapes() -> None:
    # empty input: mean is 0/0 = NaN, sum is 0 (as the reference)
    for reduction, expect in (("mean", math.nan), ("sum", 0.0)):
        v = Variant(reduction=reduction)
        out = OWN.run(v, np.zeros(0), np.zeros(0), "float32")
        ref_value = float(ref.evaluate(v, np.zeros(0), np.zeros(0)).value)
        assert np.array_equal(out.loss, np.array(expect), equal_nan=True) and np.isnan(ref_value) == np.isnan(expect)
    # one class: p = 1 exactly, so loss 0 and gradient 0 for every gamma (reference.exact divides by q = 0 here)
    for gamma in (0.0, 0.5, 2.0):
        out = OWN.run(
            Variant(activation="softmax", gamma=gamma), np.array([[3.0], [-7.0]]), np.array([0, 0]), "float64"
        )
        assert np.all(out.loss == 0) and np.all(out.grad == 0)


def test_own_bad_arguments_are_one_line_errors() -> None:
    from focalspec.kernels import torch_loss as impl_torch

    x, t = torch.zeros(3), torch.zeros(3)
    cases = [
        ({"gamma": -1.0}, "gamma"),
        ({"alpha": 1.5}, "alpha"),
        ({"reduction": "avg"}, "reduction"),
        ({"soft_target": "margin", "input_kind": "probs"}, "soft_target"),
        ({"clip_eps": 0.7}, "clip_eps"),
    ]
    for kwargs, word in cases:
        with pytest.raises(ValueError, match=word) as info:
            impl_torch.sigmoid_focal_loss(x, t, **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="targets must lie in"):
        impl_torch.sigmoid_focal_loss(x, torch.tensor([0.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        impl_torch.sigmoid_focal_loss(x, torch.zeros(4))
    with pytest.raises(ValueError, match="class indices"):
        impl_torch.softmax_focal_loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="alpha has 2 entries"):
        impl_torch.softmax_focal_loss(torch.zeros(2, 3), torch.tensor([0, 1]), alpha=(0.5, 0.5))
    with pytest.raises(ValueError, match="targets"):
        impl_torch.sigmoid_focal_loss(x, t.requires_grad_(True))
    with pytest.raises(AdapterError):
        OWN.run(Variant(), np.zeros(3), np.array([0.0, 2.0, 0.0]), "float32")


def test_own_describes_itself() -> None:
    d = OWN.describe()
    assert d.unavailable is None and d.framework == "torch"
    assert set(d.dtypes) == {"float64", "float32", "bfloat16", "float16"}
    assert "cpu" in d.devices
    assert OWN.supports(Variant(activation="softmax", alpha=(0.5, 0.5)), "float16", "cpu", "eager") is None
    reason = OWN.supports(Variant(), "float32", "cuda", "eager")
    assert (reason == "no CUDA device") != torch.cuda.is_available()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backward", [False, True])
def test_own_timed_path(mode: str, backward: bool) -> None:
    need_compile(mode)
    rng = np.random.default_rng(7)
    sets = [rng.uniform(-5, 5, size=(4, 8)) for _ in range(3)]
    t = (rng.uniform(size=(4, 8)) < 0.5).astype(np.float64)
    v = Variant(gamma=2.0, reduction="mean")
    timed = OWN.prepare_timed(v, sets, t, "float32", "cpu", mode, backward=backward)
    assert (timed.compile_seconds > 0) == (mode == "compiled")
    out = timed.step(4)
    timed.sync(out)
    loss, grad = timed.to_numpy(out)
    direct = OWN.run(v, rounded(sets[1], "float32"), t, "float32", "cpu", mode, want_grad=backward)
    np.testing.assert_array_equal(loss, direct.loss)
    assert (grad is None) == (not backward)
    if backward:
        np.testing.assert_array_equal(grad, direct.grad)
    assert timed.ran["allow_tf32_matmul"] is False and timed.ran["float32_matmul_precision"] == "highest"


def test_ran_records_strict_float32() -> None:
    out = OWN.run(Variant(), np.array([1.0]), np.array([1.0]), "float32")
    ran = out.ran
    assert ran["framework"] == "torch" and ran["version"] == torch.__version__
    assert ran["allow_tf32_matmul"] is False and ran["allow_tf32_cudnn"] is False
    assert ran["float32_matmul_precision"] == "highest" and ran["mode"] == "eager" and ran["device"]


# ----------------------------------------------------------------------------- torchvision


def test_torchvision_unsupported_variants_have_reasons() -> None:
    if TV_MISSING:
        assert "torchvision" in TV_MISSING
        assert TV.supports(Variant(), "float32", "cpu", "eager") == TV_MISSING
        assert TV.describe().unavailable == TV_MISSING
        return
    for v in (*OUTSIDE_PLAIN_SIGMOID, Variant(reduction="normalized")):
        reason = TV.supports(v, "float32", "cpu", "eager")
        assert reason and "\n" not in reason, v
    assert TV.supports(Variant(alpha=None, reduction="mean"), "float32", "cpu", "eager") is None


def test_torchvision_unavailable_reason_without_torchvision() -> None:
    if not TV_MISSING:
        pytest.skip("torchvision is installed here; run under /work/venv to see the reason")
    assert TV_MISSING.startswith("torchvision is not installed")
    with pytest.raises(AdapterError, match="torchvision"):
        TV.run(Variant(), np.zeros(1), np.zeros(1), "float32")


needs_tv = pytest.mark.skipif(bool(TV_MISSING), reason=TV_MISSING or "")


@needs_tv
@pytest.mark.parametrize("mode", MODES)
def test_torchvision_agrees_where_naive_is_fine(mode: str) -> None:
    """Moderate logits, gamma >= 1: torchvision's naive formula is acceptable there."""
    need_compile(mode)
    x = [-5.0, -1.0, 0.0, 0.5, 2.0, 4.0]
    for gamma in (1.0, 2.0) if mode == "eager" else (2.0,):
        for alpha in ALPHAS if mode == "eager" else (0.25,):
            for reduction in ("none", "mean") if mode == "eager" else ("mean",):
                v = Variant(gamma=gamma, alpha=alpha, reduction=reduction)
                for target in (0.0, 1.0):
                    res = errors(TV, v, x, [target] * len(x), "float64", mode)
                    assert_grade(res, budget("float64", gamma).acceptable, f"torchvision {v.label()} t={target}")


@needs_tv
def test_torchvision_defects_are_detected() -> None:
    """The defects of the naive formula, each near its smallest demonstrating input (float32)."""
    acceptable = budget("float32", 2.0).acceptable
    # gamma in (0, 1) at saturation: 1 - p_t rounds to 0 and pow's gradient gives 0 * inf = NaN
    # (first at x = 16.635532 for t = 1, x = -17.32868 for t = 0)
    for x, t in ((17.0, 1.0), (-17.5, 0.0)):
        res = errors(TV, Variant(gamma=0.5), [x], [t], "float32")
        assert np.isnan(res["out"].grad[0]) and np.isfinite(res["gexact"][0]) and res["gexact"][0] != 0
    # 1 - p formed from a rounded p: beyond 'acceptable' from |x| ~ 5.5 (t = 0) / 6.9 (t = 1), exactly 0 later
    res = errors(TV, Variant(gamma=2.0), [-6.0, 7.0, 17.0], [0.0, 1.0, 1.0], "float32")
    assert np.all(res["value"] > acceptable) and res["out"].loss[2] == 0.0 and res["exact"][2] > 1e-38
    # BCE-with-logits as (1 - t) x - logsigmoid(x) cancels for t = 0, x << 0, even at gamma = 0
    res = errors(TV, Variant(gamma=0.0), [-10.0, 10.0], [0.0, 1.0], "float32")
    assert res["value"][0] > budget("float32", 0.0).acceptable and res["value"][1] <= 1
    # infinite logits: NaN where the spec's limits are finite or +inf
    res = errors(TV, Variant(gamma=2.0), [math.inf, -math.inf, math.inf], [1.0, 0.3, 0.3], "float32")
    assert math.isnan(res["out"].loss[0]) and res["exact"][0] == 0.0
    assert math.isnan(res["out"].loss[1]) and res["exact"][1] == math.inf
    assert math.isnan(res["out"].grad[2]) and np.isfinite(res["gexact"][2])


@needs_tv
def test_torchvision_soft_targets_are_accurate_at_moderate_t() -> None:
    """Soft targets t = 0.3 are not a defect of torchvision: its 1 - p_t >= 0.3 does not cancel."""
    xs = np.concatenate([-np.logspace(-3, 3, 25), np.logspace(-3, 3, 25)])
    for gamma in (0.5, 2.0):
        v = Variant(gamma=gamma)
        res = errors(TV, v, xs, np.full(xs.shape, 0.3), "float32")
        assert_grade(res, budget("float32", gamma).accurate, v.label())
