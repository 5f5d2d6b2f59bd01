"""Single-defect focal losses in JAX (issue 24): ``careful`` and one planted defect each.

Signature of ``optax.sigmoid_focal_loss`` plus alpha: ``f(logits, labels, alpha=0.25, gamma=2.0)``,
element-wise.  ``careful`` computes half types in float32 and rounds once, forms 1 − p_t as
σ(−s·x), the cross-entropy with softplus, and gives (1 − p_t)^γ a bounded derivative through
``jax.custom_jvp`` (0 at 1 − p_t = 0 for 0 < γ < 1, where autodiff gives ∞·0 = NaN).  Every other
function is ``careful`` with the one defect its name says; ``PLANTED`` maps each to its cause.
(A stable form computed op by op in bfloat16 stays within 8 u of the exact value on the test's
grid: not a defect there, so no half-precision one.)
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from broken_impls._single_defects import install

jax.config.update("jax_enable_x64", True)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _pow(m: jax.Array, g: float) -> jax.Array:
    return m**g


@_pow.defjvp
def _pow_jvp(g: float, primals: tuple, tangents: tuple) -> tuple:
    (m,), (dm,) = primals, tangents
    safe = jnp.where(m > 0, m, 1.0)
    slope = jnp.where(m > 0, g * safe ** (g - 1.0), 0.0)
    return m**g, slope * dm


def _upcast(x: jax.Array) -> jax.Array:
    return x.astype(jnp.float32) if x.dtype in (jnp.bfloat16, jnp.float16) else x


def _alpha_t(alpha: float | None, t: jax.Array) -> jax.Array | float:
    return 1.0 if alpha is None else alpha * t + (1.0 - alpha) * (1.0 - t)


def _focal(x: jax.Array, t: jax.Array, alpha: float | None, gamma: float, *, factor: str = "stable",
           ce: str = "stable", power: str = "bounded", alpha_side: str = "right", detach: bool = False,
           compute: str = "upcast", clamp: float | None = None) -> jax.Array:  # fmt: skip
    out_dtype = x.dtype
    if compute == "upcast":
        xc = _upcast(x)
    elif compute == "float32":
        xc = x.astype(jnp.float32)
    else:  # the input dtype itself
        xc = x
    t = t.astype(xc.dtype)
    if clamp is not None:
        xc = jnp.clip(xc, -clamp, clamp)
    p, q = jax.nn.sigmoid(xc), jax.nn.sigmoid(-xc)
    m = 1.0 - (p * t + (1.0 - p) * (1.0 - t)) if factor == "one_minus_p" else t * q + (1.0 - t) * p
    if ce == "naive_log":
        c = -(t * jnp.log(p) + (1.0 - t) * jnp.log(1.0 - p))
    elif ce == "eps":
        c = -(t * jnp.log(p + 1e-6) + (1.0 - t) * jnp.log(q + 1e-6))
    else:
        c = t * jax.nn.softplus(-xc) + (1.0 - t) * jax.nn.softplus(xc)
    f = m**gamma if power == "autodiff" else _pow(m, gamma)
    if detach:
        f = jax.lax.stop_gradient(f)
    a = alpha if alpha_side == "right" or alpha is None else 1.0 - alpha
    return (_alpha_t(a, t) * f * c).astype(out_dtype)


PLANTED = install(globals(), _focal, {})
