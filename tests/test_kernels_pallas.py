"""focalspec.kernels.pallas_kernel under ``pallas_call(interpret=True)`` on CPU: values and gradients
(through the custom_vjp) against the mpmath reference in units of the dtype's u, a ragged
size, bad input, and the focalspec-pallas adapter's mode label.  Each interpreted call takes
about a second here, so the cases are few and small."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax", reason="the Pallas kernel needs jax")

from focalspec.adapters.own_jax import _jax

jax = _jax()
import jax.numpy as jnp  # noqa: E402

from focalspec.kernels import pallas_kernel as kp  # noqa: E402
from focalspec.reference import exact as ref_mp  # noqa: E402
from focalspec.spec.tolerance import budget, error_in_u  # noqa: E402
from focalspec.spec.variant import Variant  # noqa: E402

X = [-120.0, -40.0, -17.0, -3.0, -0.5, 0.0, 1e-3, 0.7, 4.0, 17.0, 40.0, 120.0]


def _grade(v: Variant, dtype: str, xs: np.ndarray, ts: np.ndarray) -> tuple[float, float]:
    x = jnp.asarray(xs.astype(dtype))
    t = jnp.asarray(ts.astype(dtype))
    xs = np.asarray(x).astype(np.float64)  # the dtype-rounded inputs the reference sees

    def f(a: jnp.ndarray) -> jnp.ndarray:
        return kp.sigmoid_focal_loss(a, t, alpha=v.alpha, gamma=v.gamma, reduction=v.reduction)  # type: ignore[arg-type]

    loss, vjp = jax.vjp(f, x)
    (g,) = vjp(jnp.ones_like(loss))
    ref = ref_mp.evaluate(v, xs, ts)
    exp_v = np.array([float(ref.value)]) if v.reduction != "none" else ref.losses.astype(np.float64)
    ev = error_in_u(np.asarray(loss, dtype=np.float64).reshape(exp_v.shape), exp_v, np.abs(exp_v), dtype)
    eg = error_in_u(
        np.asarray(g, dtype=np.float64), ref.grad.astype(np.float64), ref.grad_scale.astype(np.float64), dtype
    )
    return float(ev.max()), float(eg.max())


@pytest.mark.parametrize(("dtype", "gamma"), [("float32", 2.0), ("float64", 2.7), ("float32", 0.5)])
def test_elementwise_accurate(dtype: str, gamma: float) -> None:
    xs = np.array(X * 3)
    ts = np.array([1.0] * len(X) + [0.0] * len(X) + [0.3] * len(X))
    ev, eg = _grade(Variant(gamma=gamma, alpha=0.25), dtype, xs, ts)
    limit = budget(dtype, gamma).accurate
    assert ev <= limit and eg <= limit, (ev, eg, limit)


@pytest.mark.parametrize("reduction", ["sum", "normalized"])
def test_reduction_over_a_ragged_size(reduction: str) -> None:
    """BLOCK + 3 elements: the last block is partial; its lanes past n must not enter the sum."""
    n = kp.BLOCK + 3
    xs = np.linspace(-30.0, 30.0, n)
    ts = (np.arange(n) % 3 == 0).astype(np.float64)
    ev, eg = _grade(Variant(gamma=2.0, alpha=None, reduction=reduction), "float32", xs, ts)
    limit = budget("float32", 2.0, n_reduced=n).accurate
    assert ev <= limit and eg <= limit, (ev, eg, limit)


def test_float64_fractional_gamma_at_tiny_factor() -> None:
    """(1 - p_t)**gamma near exp(-180): exp(gamma log m) would be up to ~180 gamma u off."""
    xs = np.array([187.3, 151.37, 98.91, -182.13, -170.77])
    ts = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    ev, eg = _grade(Variant(gamma=2.7, alpha=None), "float64", xs, ts)
    assert ev <= 4 and eg <= 4, (ev, eg)


def test_empty_and_bad_input() -> None:
    empty = jnp.zeros((0, 3), jnp.float32)
    assert kp.sigmoid_focal_loss(empty, empty).shape == (0, 3)
    assert float(kp.sigmoid_focal_loss(empty, empty, reduction="sum")) == 0.0
    for args, kw, match in [
        ((jnp.zeros(3), jnp.zeros(4)), {}, "shape"),
        ((jnp.zeros(3, jnp.int32), jnp.zeros(3)), {}, "float64, float32"),
        (([0.0], jnp.zeros(1)), {}, "array"),
        ((jnp.zeros(3), jnp.zeros(3)), {"reduction": "max"}, "reduction"),
        ((jnp.zeros(3), jnp.zeros(3)), {"gamma": float("nan")}, "gamma"),
    ]:
        with pytest.raises(ValueError, match=match) as info:
            kp.sigmoid_focal_loss(*args, **kw)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)


def test_adapter_labels_the_interpreted_run() -> None:
    from focalspec.adapters.own_pallas import INTERPRET, FocalspecPallasAdapter

    a = FocalspecPallasAdapter()
    assert a.unavailable_reason() is None and INTERPRET in a.modes
    v = Variant(gamma=2.0, alpha=0.25)
    assert a.supports(v, "float32", "cpu", "eager") is not None  # never an 'eager' CPU row
    out = a.run(v, np.array([-1.0, 2.0]), np.array([0.0, 1.0]), "float32", "cpu", INTERPRET)
    assert out.ran["mode"] == INTERPRET and out.ran["pallas_launch"] == INTERPRET
    assert out.grad is not None and np.isfinite(out.grad).all()
