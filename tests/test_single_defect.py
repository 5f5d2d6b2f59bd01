"""One defect, one cause (issue 24): each single-defect implementation in torch, JAX and
TensorFlow (tests/broken_impls/single_defect_*.py) is run on a grid of hard-target points in
float64, float32 and bfloat16 for three γ and two α; each (dtype, γ, α, value|gradient) is a
check, failing where an element is off its exact value (mpmath, at the dtype-rounded input) by
more than 256 u (8 u in bfloat16) or non-finite; ≥ 95 % of each implementation's failing checks
must carry its planted cause, and ``careful`` must have none.
"""

from __future__ import annotations

import importlib
import math
from functools import cache

import mpmath
import numpy as np
import pytest

from focalspec.conformance.diagnosis import causes
from focalspec.conformance.diagnosis.causes import Element, Evidence
from focalspec.reference.rounding import get_format

XS = (-105.0, -40.0, -25.63, -17.3, -16.6355, -13.75, -10.0, -7.0, -5.3, -4.0, -2.25, -1.0, -0.3, 0.3, 1.0, 2.25,
      4.0, 5.3, 7.0, 10.0, 12.0, 17.0, 21.0, 36.7, 40.0, 105.0)  # fmt: skip
DTYPES = ("float64", "float32", "bfloat16")
VARIANTS = [(g, a) for g in (2.0, 0.5, 1.0) for a in (0.25, None)]


@cache
def points(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    npt = get_format(dtype).numpy_type
    x = np.array([v for v in XS for _ in (0, 1)], dtype=np.float64).astype(npt).astype(np.float64)
    t = np.array([tt for _ in XS for tt in (0.0, 1.0)])
    return x, t


@cache
def exact(dtype: str, g: float, a: float | None) -> tuple[np.ndarray, np.ndarray]:
    mpmath.mp.dps = 40
    x, t = points(dtype)
    vals, grads = [], []
    for xi, ti in zip(x, t, strict=True):
        s = 1 if ti == 1 else -1
        at = 1 if a is None else (a if ti == 1 else 1 - a)

        def f(z: mpmath.mpf, s: int = s, at: float = at) -> mpmath.mpf:
            return at * (1 / (1 + mpmath.exp(s * z))) ** g * mpmath.log1p(mpmath.exp(-s * z))

        vals.append(float(f(mpmath.mpf(xi))))
        grads.append(float(mpmath.diff(f, mpmath.mpf(xi))))
    return np.array(vals), np.array(grads)


def run(framework: str, fn, dtype: str, g: float, a: float | None) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    x, t = points(dtype)
    if framework == "torch":
        import torch

        xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
        loss = fn(xt, torch.tensor(t, dtype=xt.dtype), alpha=a, gamma=g)
        loss.sum().backward()
        return loss.detach().double().numpy(), xt.grad.double().numpy()
    if framework == "jax":
        import jax
        import jax.numpy as jnp

        xj = jnp.asarray(x, dtype=getattr(jnp, dtype))
        tj = jnp.asarray(t, dtype=xj.dtype)
        val, vjp = jax.vjp(lambda z: fn(z, tj, alpha=a, gamma=g), xj)
        (grad,) = vjp(jnp.ones_like(val))
        return np.asarray(val, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    import tensorflow as tf

    xf = tf.Variable(tf.constant(x, dtype=getattr(tf, dtype)))
    with tf.GradientTape() as tape:
        loss = fn(xf, tf.constant(t, dtype=xf.dtype), alpha=a, gamma=g)
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, xf)
    return tf.cast(loss, tf.float64).numpy(), tf.cast(grad, tf.float64).numpy()


def failing(got: np.ndarray, exp: np.ndarray, dtype: str) -> np.ndarray:
    fmt = get_format(dtype)
    exp_r = exp.astype(fmt.numpy_type).astype(np.float64)
    with np.errstate(all="ignore"):
        rel = np.abs(got - exp_r) / np.maximum(np.abs(exp_r), fmt.smallest_normal)
        bad = ~(rel <= (8 if dtype == "bfloat16" else 256) * fmt.unit_roundoff)
    return bad & np.isfinite(exp) & ~((exp_r == 0) & (got == 0))


def check_causes(framework: str, name: str) -> list[str]:
    mod = importlib.import_module(f"broken_impls.single_defect_{'tf' if framework == 'tensorflow' else framework}")
    fn = getattr(mod, name)
    found = []
    for dtype in DTYPES:
        u = get_format(dtype).unit_roundoff
        for g, a in VARIANTS:
            vals, grads = run(framework, fn, dtype, g, a)
            ev_v, ev_g = exact(dtype, g, a)
            x, t = points(dtype)
            variant = {"activation": "sigmoid", "input_kind": "logits", "gamma": g, "alpha": a,
                       "soft_target": "canonical", "clip_eps": None, "reduction": "none"}  # fmt: skip
            for which, got, exp in (("value", vals, ev_v), ("grad", grads, ev_g)):
                bad = np.flatnonzero(failing(got, exp, dtype))
                if not bad.size:
                    continue
                order = bad[np.argsort(np.abs(x[bad]), kind="stable")][:48]
                els = [Element(float(x[i]), float(t[i]), float(exp[i]), float(got[i]),
                               abs(got[i] - exp[i]) / (u * abs(exp[i])) if exp[i] and math.isfinite(got[i])
                               else math.inf, which) for i in order]  # fmt: skip
                ev = Evidence(which, dtype, variant, "finite", None, "", els)
                found.append(causes.classify(ev).cause)
    return found


CASES = [(fw, name) for fw in ("torch", "jax", "tensorflow")
         for name in importlib.import_module(
             f"broken_impls.single_defect_{'tf' if fw == 'tensorflow' else fw}").PLANTED]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("framework", "name"), CASES)
def test_a_single_defect_carries_its_planted_cause(framework: str, name: str) -> None:
    mod = importlib.import_module(f"broken_impls.single_defect_{'tf' if framework == 'tensorflow' else framework}")
    found = check_causes(framework, name)
    assert found, f"{framework} {name}: no failing check"
    share = found.count(mod.PLANTED[name]) / len(found)
    assert share >= 0.95, (framework, name, share, sorted(set(found)), found)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "jax", "tensorflow"])
def test_the_careful_one_fails_nothing(framework: str) -> None:
    assert check_causes(framework, "careful") == []
