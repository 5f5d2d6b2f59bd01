"""The JAX adapters against the mpmath reference.

focalspec's own implementation (``focalspec.kernels.jax_loss``) must be 'accurate' (spec.tolerance.budget) in
float64 and float32, eager and jit, and in bfloat16/float16 too (it evaluates those in float32
and rounds once).  optax must run through its adapter exactly as a direct call does, and stay
within 'acceptable' on finite inputs; what it cannot express is a reason, never a run.

Expected values come from ``reference.exact`` at the dtype-rounded inputs only.  One platform
exception is explicit: XLA on CPU flushes subnormal results to zero (``_flushes_subnormals``),
so an element whose dtype-rounded reference is subnormal may come back as 0 there -- and only
there, and only as 0.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ref_support import OUTSIDE_PLAIN_SIGMOID, expected, rounded

from focalspec.adapters.base import AdapterError
from focalspec.reference import exact as ref
from focalspec.reference.rounding import get_format
from focalspec.spec.tolerance import budget, error_in_u, worst
from focalspec.spec.variant import Variant

jax = pytest.importorskip("jax")

from focalspec.adapters.own_jax import OwnJaxAdapter, own_jax  # noqa: E402
from focalspec.adapters.thirdparty.optax_adapter import OptaxAdapter, optax_adapter  # noqa: E402
from focalspec.kernels import jax_loss as impl_jax  # noqa: E402

OWN = own_jax()
OPTAX = optax_adapter()
OPTAX_MISSING = OPTAX.unavailable_reason()
needs_optax = pytest.mark.skipif(OPTAX_MISSING is not None, reason=str(OPTAX_MISSING))

HARD_X = [-30.0, -5.0, -1e-8, 0.0, 2.0, 17.0, 40.0]
GAMMAS = [0.0, 0.5, 2.0]
ALPHAS = [None, 0.25]
MODES = ["eager", "compiled"]
STRICT = ["float64", "float32"]
SOFT_KINDS = ["canonical", "geometric", "margin", "two_term"]


# ----------------------------------------------------------------------------- helpers


_REF_CACHE: dict[tuple, tuple[np.ndarray, ...]] = {}


def reference(v: Variant, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[np.ndarray, ...]:
    """(loss, loss scale, grad, grad scale) as float64 arrays, cached (mp is slow)."""
    key = (v, dtype, x.shape, x.tobytes(), t.shape, t.dtype.str, t.tobytes())
    if key not in _REF_CACHE:
        r = ref.evaluate(v, x, t)
        loss = expected(r.losses if v.reduction == "none" else np.array(r.value, dtype=object), dtype)
        grad = expected(r.grad, dtype)
        scale = np.array([float(s) for s in r.grad_scale.ravel()]).reshape(grad.shape)
        _REF_CACHE[key] = (loss, np.abs(loss), grad, scale)
    return _REF_CACHE[key]


@functools.cache
def _flushes_subnormals() -> bool:
    """Does XLA on this CPU flush subnormal results to zero?  (It sets FTZ/DAZ.)"""
    import jax.numpy as jnp

    return float(jax.jit(lambda v: v * 2)(jnp.asarray(np.float32(2.0**-140)))) == 0.0


def _flushed(got: np.ndarray, exact: np.ndarray, dtype: str) -> np.ndarray:
    """Elements whose reference rounds to a nonzero subnormal of ``dtype`` and came back as
    exactly zero, on a platform that flushes."""
    if not _flushes_subnormals():
        return np.zeros(np.shape(got), dtype=bool)
    sn = get_format(dtype).smallest_normal
    tiny = (np.abs(exact) < sn) & (got == 0)
    if tiny.any():
        tiny &= np.asarray(rounded(np.where(np.isfinite(exact), exact, 0), dtype)) != 0
    return tiny


def graded(adapter: Any, v: Variant, x: Any, t: Any, dtype: str, mode: str) -> dict[str, Any]:
    """Run the adapter and mp at the dtype-rounded inputs; errors in u (flushes set to 0)."""
    xr = rounded(x, dtype)
    t_arr = np.asarray(t)
    tr = rounded(t_arr, dtype) if t_arr.dtype.kind == "f" else t_arr
    loss_x, loss_s, grad_x, grad_s = reference(v, xr, tr, dtype)
    out = adapter.run(v, xr, tr, dtype, "cpu", mode)
    el = error_in_u(out.loss, loss_x, loss_s, dtype)
    eg = error_in_u(out.grad, grad_x, grad_s, dtype)
    fl, fg = _flushed(out.loss, loss_x, dtype), _flushed(out.grad, grad_x, dtype)
    el, eg = np.where(fl, 0.0, el), np.where(fg, 0.0, eg)
    return {"x": xr, "t": tr, "out": out, "loss": loss_x, "grad": grad_x, "el": el, "eg": eg,
            "flushed": int(fl.sum() + fg.sum())}  # fmt: skip


def assert_within(r: dict[str, Any], limit: float, what: str) -> float:
    """Assert both errors <= limit; the message names the worst input, expected and observed."""
    wl, il = worst(r["el"])
    wg, ig = worst(r["eg"])
    flat_x = r["x"].ravel()
    if wl > limit:
        got, exp = np.ravel(r["out"].loss)[il], r["loss"].ravel()[il]
        where = flat_x[il] if r["el"].size == flat_x.size else f"row {il}"
        pytest.fail(f"{what}: loss error {wl:.3g} u > {limit} u at input {where!r}: expected {exp!r}, got {got!r}")
    if wg > limit:
        got, exp = r["out"].grad.ravel()[ig], r["grad"].ravel()[ig]
        pytest.fail(f"{what}: grad error {wg:.3g} u > {limit} u at input {flat_x[ig]!r}: expected {exp!r}, got {got!r}")
    return max(wl, wg)


def hard_inputs() -> tuple[np.ndarray, np.ndarray]:
    x = np.array(HARD_X * 2)
    return x, np.array([0.0] * len(HARD_X) + [1.0] * len(HARD_X))


# ----------------------------------------------------------------------------- own implementation


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_own_hard_targets_accurate(dtype: str, mode: str) -> None:
    x, t = hard_inputs()
    for g in GAMMAS:
        for a in ALPHAS:
            v = Variant(gamma=g, alpha=a)
            assert_within(graded(OWN, v, x, t, dtype, mode), budget(dtype, g).accurate, v.label())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_own_soft_target_conventions_accurate(dtype: str, mode: str) -> None:
    x = np.array([*HARD_X, -np.inf, np.inf] * 2)
    t = np.array([0.3] * 9 + [0.1] * 9)  # 0.1: 2t - 1 is inexact, the margin form must carry it
    for kind in SOFT_KINDS:
        for g in GAMMAS:
            for ls, tt in ((0.0, t), (0.1, np.ones_like(t))):
                v = Variant(gamma=g, alpha=0.25, soft_target=kind, label_smoothing=ls)
                assert_within(graded(OWN, v, x, tt, dtype, mode), budget(dtype, g).accurate, v.label())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_own_probabilities_accurate(dtype: str, mode: str) -> None:
    p = np.array([0.0, 1e-6, 0.01, 0.3, 0.38, 0.5, 0.9, 0.999, 1 - 1e-6, 1.0])
    for g in GAMMAS:
        for t_val in (0.0, 1.0, 0.3):
            for clip in (None, 1e-4):
                v = Variant(gamma=g, alpha=0.25, input_kind="probs", clip_eps=clip)
                r = graded(OWN, v, p, np.full(p.shape, t_val), dtype, mode)
                assert_within(r, budget(dtype, g).accurate, f"{v.label()} t={t_val}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_own_softmax_dominant_logit_accurate(dtype: str, mode: str) -> None:
    z = np.array([[12.0, 0.0, -1.0, 2.5, 0.5], [30.0, 0.0, -1.0, 2.5, 0.5], [0.1, 0.2, -0.3, 0.05, 0.0],
                  [5.0, 5.0, -3.0, 1.0, 2.0], [-40.0, 0.0, 3.0, 1.0, 80.0]])  # fmt: skip
    idx = np.array([0, 1, 2, 1, 4])
    dist = np.random.default_rng(3).dirichlet(np.ones(5), size=5)
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    vec = (0.1, 0.2, 0.3, 0.25, 0.15)
    for g in GAMMAS:
        for v, zz, tt in (
            (Variant(activation="softmax", gamma=g, alpha=None), z, idx),
            (Variant(activation="softmax", gamma=g, alpha=0.25, label_smoothing=0.1), z, dist),
            (Variant(activation="softmax", gamma=g, alpha=vec, clip_eps=1e-7), z, idx),
            (Variant(activation="softmax", gamma=g, alpha=vec, input_kind="probs"), probs, idx),
            (
                Variant(activation="softmax", gamma=g, alpha=0.25, input_kind="probs", renormalize=True),
                probs * 0.7,
                dist,
            ),
        ):
            assert_within(graded(OWN, v, zz, tt, dtype, mode), budget(dtype, g).accurate, v.label())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_own_random_batch_accurate(dtype: str, mode: str) -> None:
    rng = np.random.default_rng(20240611)
    x = rng.normal(0.0, 8.0, 40)
    hard = (rng.random(40) < 0.3).astype(np.float64)
    soft = rng.random(40)
    z = rng.normal(0.0, 5.0, (8, 5))
    labels = rng.integers(0, 5, 8)
    n = x.size
    cases = [
        (Variant(gamma=1.7, alpha=0.25), 3 * x, hard, 1),  # non-half-integer gamma: the split power in float32
        (Variant(gamma=2.0, reduction="mean"), x, hard, n),
        (Variant(gamma=0.5, alpha=None, reduction="normalized"), x, hard, n),
        (Variant(gamma=2.0, alpha=0.4, label_smoothing=0.05), x, soft, 1),
        (Variant(gamma=2.0, soft_target="margin"), x, soft, 1),
        (Variant(gamma=1.7, clip_eps=1e-7, reduction="sum"), x, soft, n),
        (Variant(activation="softmax", gamma=2.0, reduction="mean"), z, labels, z.shape[0]),
    ]
    for v, xx, tt, n_red in cases:
        assert_within(graded(OWN, v, xx, tt, dtype, mode), budget(dtype, v.gamma, n_red).accurate, v.label())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_own_half_precision_accurate(dtype: str) -> None:
    x, t = hard_inputs()
    for g in GAMMAS:
        v = Variant(gamma=g, alpha=0.25)
        assert_within(graded(OWN, v, x, t, dtype, "compiled"), budget(dtype, g).accurate, v.label())
    v = Variant(activation="softmax", gamma=2.0, alpha=None)
    z = np.array([[8.0, 0.0, -1.0, 2.5, 0.5], [0.1, 0.2, -0.3, 0.05, 0.0]])
    assert_within(graded(OWN, v, z, np.array([0, 3]), dtype, "eager"), budget(dtype, 2.0).accurate, v.label())


@pytest.mark.parametrize("mode", MODES)
def test_own_infinite_logits_take_limits_and_nan_propagates(mode: str) -> None:
    x = np.array([-np.inf, np.inf, np.nan])
    for kind in SOFT_KINDS:
        for g in GAMMAS:
            for t_val in (0.0, 1.0, 0.3, 0.5):
                v = Variant(gamma=g, alpha=0.25, soft_target=kind)
                r = graded(OWN, v, x, np.full(3, t_val), "float64", mode)
                assert_within(r, budget("float64", g).accurate, f"{v.label()} t={t_val}")  # NaN matches NaN


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_saturated_gradient_finite_for_small_gamma(dtype: str, mode: str) -> None:
    """(1 - p_t)**0.5 differentiated naively is 0 * inf = NaN where 1 - p_t rounds to zero."""
    far = [20.0, 100.0] + ([800.0] if dtype == "float64" else [])
    x = np.array(far + [-f for f in far])
    t = np.array([1.0] * len(far) + [0.0] * len(far))
    v = Variant(gamma=0.5, alpha=0.25)
    r = graded(OWN, v, x, t, dtype, mode)
    assert np.all(np.isfinite(r["out"].grad)), r["out"].grad
    assert_within(r, budget(dtype, 0.5).accurate, v.label())
    if OPTAX_MISSING is None:
        assert np.all(np.isfinite(graded(OPTAX, v, x, t, dtype, mode)["out"].grad))


def test_subnormal_results_are_zero_only_where_the_platform_flushes() -> None:
    """x = -30, t = 0, gamma = 2 in float32: 0.75 e**-90 ~ 6.1e-40 is subnormal."""
    v = Variant(gamma=2.0, alpha=0.25)
    r = graded(OWN, v, [-30.0], [0.0], "float32", "compiled")
    exact = r["loss"][0]
    assert 0 < exact < get_format("float32").smallest_normal
    got = float(r["out"].loss[0])
    if _flushes_subnormals():
        assert got == 0.0 and r["flushed"] >= 1
    else:
        assert r["el"][0] <= budget("float32", 2.0).accurate


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.3, 2.0])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_subnormal_probability_inputs_are_read_from_their_bits(dtype: str, gamma: float) -> None:
    """XLA on CPU reads a subnormal operand as 0: log p, p**gamma and 1/p of p = 1e-40 would be
    those of 0 (loss +inf instead of 92.1; gradient 0 instead of 1.1e-20 at t = 0, gamma = 1/2)."""
    p = [1.4e-45, 1e-40, 1e-39, 5e-39, 1.1e-38, 1e-10, 0.5]
    v = Variant(input_kind="probs", gamma=gamma, alpha=0.25)
    for mode in ("eager", "compiled"):
        r = graded(OWN, v, p * 2, [1.0] * len(p) + [0.0] * len(p), dtype, mode)
        assert_within(r, budget(dtype, gamma).accurate, f"{v.label()} {dtype} {mode}")


def test_own_target_gradient_matches_mpmath_derivative() -> None:
    """d loss / d target (soft targets may be trained): closed forms against mp.diff."""
    import jax.numpy as jnp
    import mpmath

    x = np.array([-7.0, -1.0, 0.3, 2.0, 11.0])
    t = np.array([0.2, 0.7, 0.5, 0.05, 0.9])
    for kind in SOFT_KINDS:
        for g, a, ls in ((0.0, None, 0.0), (0.5, 0.25, 0.1), (2.0, 0.25, 0.0)):
            v = Variant(gamma=g, alpha=a, soft_target=kind, label_smoothing=ls)

            def total(xx: Any, tt: Any, v: Variant = v) -> Any:
                return impl_jax.sigmoid_focal_loss(
                    xx, tt, gamma=v.gamma, alpha=v.alpha, soft_target=v.soft_target, label_smoothing=v.label_smoothing
                ).sum()

            got = np.asarray(jax.jit(jax.grad(total, argnums=1))(jnp.asarray(x), jnp.asarray(t)))
            with mpmath.workdps(40):
                for xi, ti, gi in zip(x, t, got, strict=True):

                    def loss_at(tt: Any, xi: float = xi, v: Variant = v) -> Any:
                        return ref.sigmoid_logits_element(
                            mpmath.mpf(xi), ref.smooth_binary(tt, mpmath.mpf(v.label_smoothing)), v
                        )[0]

                    exact = mpmath.diff(loss_at, mpmath.mpf(ti))
                    assert abs(gi - exact) <= 1e-12 * max(abs(exact), 1e-300), (v.label(), xi, ti, gi, exact)


# ----------------------------------------------------------------------------- optax


@needs_optax
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_optax_adapter_is_a_plain_call(dtype: str, mode: str) -> None:
    """The adapter computes nothing of its own: bitwise the same as calling optax directly."""
    import jax.numpy as jnp
    import optax

    x = rounded([*HARD_X, np.inf, -np.inf, np.nan], dtype)
    t = rounded([0.0, 1.0, 0.3, 1.0, 0.0, 1.0, 0.3, 1.0, 0.0, 1.0], dtype)
    v = Variant(gamma=0.5, alpha=0.25)
    out = OPTAX.run(v, x, t, dtype, "cpu", mode)
    jt = jnp.asarray(t.astype(dtype))

    def direct(a: Any, b: Any) -> Any:
        loss = optax.losses.sigmoid_focal_loss(a, b, alpha=0.25, gamma=0.5)
        return loss.sum(), loss

    both = jax.value_and_grad(direct, has_aux=True)  # targets are an argument, as in the adapter
    (_, loss), grad = (jax.jit(both) if mode == "compiled" else both)(jnp.asarray(x.astype(dtype)), jt)
    np.testing.assert_array_equal(out.loss, np.asarray(loss).astype(np.float64))
    np.testing.assert_array_equal(out.grad, np.asarray(grad).astype(np.float64))
    assert out.ran["jax_enable_x64"] is True and out.ran["jax_default_matmul_precision"] == "highest"


@needs_optax
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", STRICT)
def test_optax_finite_inputs_within_acceptable(dtype: str, mode: str) -> None:
    """optax's log-space (1 - p_t)**gamma = exp(gamma * log(1 - p_t)) misses 'accurate' at large
    |x| (see the report), but on finite inputs it must stay within 'acceptable'."""
    x, t = hard_inputs()
    for g in GAMMAS:
        for a in ALPHAS:
            v = Variant(gamma=g, alpha=a)
            assert_within(graded(OPTAX, v, x, t, dtype, mode), budget(dtype, g).acceptable, v.label())
    v = Variant(gamma=2.0, alpha=0.25)
    xs = np.array(HARD_X)
    assert_within(graded(OPTAX, v, xs, np.full(xs.shape, 0.3), dtype, mode), budget(dtype, 2.0).acceptable, "soft 0.3")


@needs_optax
def test_optax_unsupported_variants_give_reasons() -> None:
    unsupported = [*OUTSIDE_PLAIN_SIGMOID, Variant(reduction="sum"), Variant(reduction="mean")]
    x, t = np.array([0.5]), np.array([1.0])
    for v in unsupported:
        reason = OPTAX.supports(v, "float32", "cpu", "eager")
        assert reason and "\n" not in reason, v.label()
        with pytest.raises(AdapterError, match="optax"):
            OPTAX.run(v, x, t, "float32")
    assert OPTAX.supports(Variant(alpha=None, gamma=0.0), "bfloat16", "cpu", "compiled") is None


# ----------------------------------------------------------------------------- plumbing


@pytest.mark.parametrize("adapter", [OWN, pytest.param(OPTAX, marks=needs_optax)], ids=["own", "optax"])
def test_device_and_mode_reasons(adapter: Any) -> None:
    v = Variant()
    if "cuda" not in adapter.devices():
        assert adapter.supports(v, "float32", "cuda", "eager") == "no CUDA device"
    assert adapter.supports(v, "float32", "cpu", "traced")
    assert adapter.supports(v, "float8", "cpu", "eager")


@pytest.mark.parametrize("backward", [False, True])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("adapter", [OWN, pytest.param(OPTAX, marks=needs_optax)], ids=["own", "optax"])
def test_prepare_timed_matches_run(adapter: Any, mode: str, backward: bool) -> None:
    rng = np.random.default_rng(5)
    sets = [rounded(rng.normal(0, 4, 64), "float32") for _ in range(3)]
    t = (rng.random(64) < 0.5).astype(np.float64)
    v = Variant(gamma=2.0, alpha=0.25)
    timed = adapter.prepare_timed(v, sets, t, "float32", "cpu", mode, backward=backward)
    assert timed.compile_seconds > 0
    for i in range(4):
        out = timed.step(i)
        timed.sync(out)
        loss, grad = timed.to_numpy(out)
        expect = adapter.run(v, sets[i % 3], t, "float32", "cpu", mode, want_grad=backward)
        np.testing.assert_array_equal(loss, expect.loss)
        if backward:
            np.testing.assert_array_equal(grad, expect.grad)
        else:
            assert grad is None
    assert timed.ran["jax_enable_x64"] is True and timed.ran["backward"] is backward


def test_registry_lists_both() -> None:
    from focalspec.adapters.registry import BUILTIN, _load

    specs = {
        "focalspec.adapters.own_jax:own_jax": OwnJaxAdapter,
        "focalspec.adapters.thirdparty.optax_adapter:optax_adapter": OptaxAdapter,
    }
    for spec, cls in specs.items():
        assert spec in {s for s, _ in BUILTIN}
        assert isinstance(_load(spec)[0], cls)
    d = OWN.describe()
    assert d.framework == "jax" and d.unavailable is None and "cpu" in d.devices
    assert set(d.dtypes) == {"float64", "float32", "bfloat16", "float16"}
    out = OWN.run(Variant(), np.array([1.0]), np.array([1.0]), "float64")
    assert out.ran["jax_enable_x64"] is True and out.ran["jax_default_matmul_precision"] == "highest"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gamma": -1.0}, r"gamma must be in \[0, inf\]"),
        ({"gamma": True}, "gamma must be a finite real"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"reduction": "avg"}, "unknown reduction"),
        ({"soft_target": "kornia"}, "unknown soft_target"),
        ({"clip_eps": 0.7}, "clip_eps must be in"),
        ({"label_smoothing": -0.1}, "label_smoothing must be in"),
        ({"soft_target": "margin", "input_kind": "probs"}, "defined for logits"),
    ],
)
def test_sigmoid_argument_errors_are_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        impl_jax.sigmoid_focal_loss(np.zeros(3, np.float32), np.zeros(3, np.float32), **kwargs)
    assert "\n" not in str(info.value)


def test_shape_dtype_and_softmax_errors_are_one_line() -> None:
    z, idx = np.zeros((2, 3), np.float32), np.zeros(2, int)
    cases = [
        (lambda: impl_jax.sigmoid_focal_loss(np.zeros(3, np.float32), np.zeros(4, np.float32)), "targets have shape"),
        (lambda: impl_jax.sigmoid_focal_loss(np.zeros(3, np.int32), np.zeros(3)), "floating-point"),
        (lambda: impl_jax.softmax_focal_loss(z, np.zeros(2)), "must be integers"),
        (lambda: impl_jax.softmax_focal_loss(z, np.zeros(5, int)), "fit neither"),
        (lambda: impl_jax.softmax_focal_loss(z, idx, alpha=(0.5, 0.5)), "3 classes"),
        (lambda: impl_jax.softmax_focal_loss(z, idx, renormalize=True), "probs"),
        (lambda: impl_jax.softmax_focal_loss(z, idx, reduction="normalized"), "reduction"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(AdapterError, match="ValueError: targets have shape") as info:
        OWN.run(Variant(), np.zeros(3), np.zeros(4), "float32")
    assert "\n" not in str(info.value)


def test_empty_mean_is_nan_and_normalized_sum_of_nothing_is_zero() -> None:
    empty = np.zeros(0)
    assert math.isnan(float(OWN.run(Variant(reduction="mean"), empty, empty, "float64", want_grad=False).loss))
    assert float(OWN.run(Variant(reduction="normalized"), empty, empty, "float64", want_grad=False).loss) == 0.0


def test_a_jax_callable_keeps_its_compiles_in_the_persistent_cache(tmp_path: Path) -> None:
    """The callable backend stores XLA's compiles (the eager primitives' too) under focalspec's
    cache folder, and a later process loads them; a cache folder the user set is left alone."""
    import subprocess
    import sys

    code = (
        "import numpy as np; from focalspec.adapters.callable_adapter import Convention, make_callable_adapter; "
        "from focalspec.spec.variant import Variant; "
        "a = make_callable_adapter('optax:sigmoid_focal_loss', Convention(framework='jax')); "
        "x = np.linspace(-3.0, 3.0, 7); a.run(Variant(gamma=2.0, alpha=0.25), x, (x > 0) * 1.0, 'float32', 'cpu', "
        "'eager', True); import jax; print(jax.config.jax_compilation_cache_dir)"
    )
    pytest.importorskip("optax")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    ours = tmp_path / "xdg" / "focalspec" / "jax-xla"
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0 and first.stdout.strip() == str(ours), first.stdout + first.stderr
    def entries() -> list[tuple[str, int]]:
        return sorted((p.name, p.stat().st_mtime_ns) for p in ours.glob("*-cache"))  # not the LRU's -atime files

    stored = entries()
    assert len(stored) > 10  # the value-and-gradient's primitives, one executable each
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and entries() == stored  # all loaded: none compiled and written again
    theirs = tmp_path / "theirs"
    env["JAX_COMPILATION_CACHE_DIR"] = str(theirs)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == str(theirs), done.stdout + done.stderr
