"""focalspec's own fused sigmoid focal loss as a Pallas kernel for JAX, with a custom_vjp.

The same kernel as ``focalspec.kernels.triton_kernel``: one pass reads logits and targets and writes
the loss (or one partial sum per block for sum / mean / normalized) and, under
differentiation, d loss / d logits in the same pass (the custom_vjp's forward rule saves it;
the backward rule only scales it).  Without differentiation a forward-only kernel runs.

Scope: sigmoid on logits, hard or soft targets (canonical 1 - p_t), alpha a float or None,
gamma >= 0, reductions none | sum | mean | normalized.  Numerics: softplus(x) = max(x, 0) +
log1p(exp(-|x|)), 1 - p_t = t sigma(-x) + (1 - t) sigma(x), float16 / bfloat16 / float32 in
float32 and float64 in float64 (with ``jax_enable_x64``); (1 - p_t)**gamma by repeated
multiplication for integer gamma <= 16, else as 2**n exp(r ln 2 + gamma log f) with
m = 2**k f and k gamma = n + r split exactly -- exp(gamma log m) would lose |gamma log m| units.

``interpret=None`` (default) interprets the kernel on CPU (``pallas_call(interpret=True)``)
and compiles it on GPU; ``last_mode()`` says which ran.  Bad input is a one-line ValueError.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton

from focalspec.kernels import params

__all__ = ["last_mode", "sigmoid_focal_loss"]

_REDUCTIONS = ("none", "sum", "mean", "normalized")
MAX_INT_GAMMA = 16
BLOCK = 1024
_LAST_MODE: list[str] = ["none"]
# the Triton lowering: without compiler_params JAX 0.10 lowers pallas_call on GPU through Mosaic
# GPU, which refuses this kernel's 1024-element blocks ("Async copies only support copying <=256
# elements along each dimension"); tests/test_kernels_pallas_lowering.py lowers every variant for CUDA
COMPILER_PARAMS = pltriton.CompilerParams(num_warps=4)
# per compute dtype: integer type, significand bits, exponent bias, smallest normal
_BITS = {
    "float32": (jnp.int32, 23, 127, 2.0**-126),
    "float64": (jnp.int64, 52, 1023, 2.0**-1022),
}


def last_mode() -> str:
    """How the last call ran: 'pallas-interpret' (CPU interpreter) or 'gpu' (compiled)."""
    return _LAST_MODE[0]


def _split_gamma(gamma: float, mant_bits: int) -> tuple[float, float]:
    """gamma = hi + lo, hi rounded to the dtype with its low 12 significand bits cleared, so that
    k * hi is exact for every exponent |k| < 2**11 of the dtype; lo = gamma - hi (rounded)."""
    fmt, ifmt = ("<f", "<I") if mant_bits == 23 else ("<d", "<Q")
    bits = struct.unpack(ifmt, struct.pack(fmt, gamma))[0] & ~((1 << 12) - 1)
    hi = struct.unpack(fmt, struct.pack(ifmt, bits))[0]
    return hi, gamma - hi


def _pow2(n: Any, ct: Any) -> Any:
    """2**n for integer n in [-2 bias, bias], as a product of two powers so subnormals round once."""
    ity, mb, bias, _ = _BITS[jnp.dtype(ct).name]
    n = jnp.clip(n, -2 * bias + 2, bias)
    n1 = n // 2
    n2 = n - n1
    one = jax.lax.bitcast_convert_type(((n1 + bias).astype(ity)) << mb, ct)
    two = jax.lax.bitcast_convert_type(((n2 + bias).astype(ity)) << mb, ct)
    return one, two


def _power(m: Any, gamma: float, ct: Any) -> Any:
    """m ** gamma for 0 <= m <= 1 without the |gamma log m| amplification of exp(gamma log m)."""
    if gamma == int(gamma) and gamma <= MAX_INT_GAMMA:
        r = jnp.ones_like(m)
        for _ in range(int(gamma)):
            r = r * m
        return r
    ity, mb, bias, tiny = _BITS[jnp.dtype(ct).name]
    sub = m < tiny
    ms = jnp.where(sub, m * (2.0 ** (mb + 2)), m)
    bits = jax.lax.bitcast_convert_type(ms, ity)
    k = ((bits >> mb) & (2 * bias + 1)) - bias - jnp.where(sub, mb + 2, 0).astype(ity)
    f = jax.lax.bitcast_convert_type((bits & ((1 << mb) - 1)) | (bias << mb), ct)  # [1, 2)
    hi = f > math.sqrt(2.0)
    f = jnp.where(hi, f * 0.5, f)
    kf = jnp.where(hi, k + 1, k).astype(ct)
    g_hi, g_lo = _split_gamma(gamma, mb)
    ln2 = math.log(2.0)
    ln2_hi = float(np.asarray(ln2, dtype=ct))
    ln2_lo = ln2 - ln2_hi
    prod = kf * g_hi  # exact
    nf = jnp.floor(prod + 0.5)
    r = (prod - nf) + kf * g_lo
    y = r * ln2_hi + r * ln2_lo + gamma * jnp.log(f)
    s1, s2 = _pow2(nf.astype(ity), ct)
    return jnp.where(m > 0, (jnp.exp(y) * s1) * s2, 0.0).astype(ct)


def _body(x: Any, t: Any, alpha: float | None, gamma: float, want_grad: bool) -> tuple[Any, Any]:
    """Element-wise (value, d value / dx) in the compute dtype of x."""
    tn = 1 - t
    e = jnp.exp(-jnp.abs(x))
    d = 1 + e
    big, small = 1 / d, e / d
    pos = x >= 0
    s_pos = jnp.where(pos, big, small)
    s_neg = jnp.where(pos, small, big)
    lp = jnp.log1p(e)  # not Goldberg's log(u) e / (u - 1): XLA simplifies (1 + e) - 1 to e
    sp_pos = jnp.maximum(x, 0) + lp
    sp_neg = jnp.maximum(-x, 0) + lp
    ce = jnp.where(t == 0, 0, t * sp_neg) + jnp.where(tn == 0, 0, tn * sp_pos)
    m = t * s_neg + tn * s_pos
    mg = _power(m, gamma, x.dtype)
    value = mg * ce
    a = None
    if alpha is not None:
        a = alpha * t + (1.0 - alpha) * tn
        value = jnp.where(a == 0, 0, a * value)
    bad = jnp.isnan(x) | jnp.isnan(t)
    value = jnp.where(bad, jnp.nan, value)
    if not want_grad:
        return value, None
    grad = mg * (tn * s_pos - t * s_neg)
    if gamma != 0:
        rr = jnp.where(tn == 0, s_pos, jnp.where(t == 0, s_neg, s_pos * s_neg / jnp.where(m == 0, 1, m)))
        grad = grad + gamma * mg * (tn - t) * jnp.where(rr == 0, 0, rr * ce)
    if a is not None:
        grad = jnp.where(a == 0, 0, a * grad)
    return value, jnp.where(bad, jnp.nan, grad)


def _kernel(x_ref: Any, t_ref: Any, *out_refs: Any, n: int, alpha: Any, gamma: float, reduction: str,
            want_grad: bool, scale: float, ct: Any) -> None:  # fmt: skip
    # The last block of a size that is not a multiple of BLOCK runs past the end of the arrays:
    # compiled by Triton, ``ref[...]`` is a plain load or store there (the interpreter pads, so only
    # the lowering shows it), hence masked loads and stores of the element arrays.
    idx = pl.program_id(0) * BLOCK + jax.lax.broadcasted_iota(jnp.int32, (BLOCK,), 0)
    inside = idx < n
    x = pltriton.load(x_ref, mask=inside, other=0).astype(ct)
    t = pltriton.load(t_ref, mask=inside, other=0).astype(ct)
    value, grad = _body(x, t, alpha, gamma, want_grad)
    outs = list(out_refs)
    if reduction == "none":
        pltriton.store(outs.pop(0), value.astype(x_ref.dtype), mask=inside)
    else:  # one partial sum per block: always inside its (number of blocks,) output
        outs.pop(0)[...] = jnp.sum(jnp.where(inside, value, 0)).reshape(1)
        if reduction == "normalized":
            outs.pop(0)[...] = jnp.sum(jnp.where(inside & (t == 1), 1, 0).astype(ct)).reshape(1)
    if want_grad:
        pltriton.store(outs.pop(0), (grad * scale).astype(x_ref.dtype), mask=inside)


def _interpret_here() -> bool:
    """Interpret where JAX's default backend is the CPU (the arrays may be tracers here)."""
    return jax.default_backend() == "cpu"


def _launch(x: Any, t: Any, alpha: Any, gamma: float, reduction: str, want_grad: bool, interpret: bool) -> tuple:
    """(loss or reduced value, gradient or None, number of positives or None) of flat x, t."""
    n = x.shape[0]
    ct = jnp.float64 if x.dtype == jnp.float64 else jnp.float32
    nb = -(-n // BLOCK)
    scale = 1.0 / n if reduction == "mean" else 1.0
    spec = pl.BlockSpec((BLOCK,), lambda i: (i,))
    one = pl.BlockSpec((1,), lambda i: (i,))
    out_shape, out_specs = [], []
    if reduction == "none":
        out_shape.append(jax.ShapeDtypeStruct((n,), x.dtype))
        out_specs.append(spec)
    else:
        out_shape.append(jax.ShapeDtypeStruct((nb,), ct))
        out_specs.append(one)
        if reduction == "normalized":
            out_shape.append(jax.ShapeDtypeStruct((nb,), ct))
            out_specs.append(one)
    if want_grad:
        out_shape.append(jax.ShapeDtypeStruct((n,), x.dtype))
        out_specs.append(spec)
    kern = functools.partial(_kernel, n=n, alpha=alpha, gamma=gamma, reduction=reduction, want_grad=want_grad,
                             scale=scale, ct=ct)  # fmt: skip
    outs = pl.pallas_call(
        kern,
        out_shape=out_shape,
        grid=(nb,),
        in_specs=[spec, spec],
        out_specs=out_specs,
        interpret=interpret,
        compiler_params=COMPILER_PARAMS,
    )(x, t)
    outs = list(outs)
    first = outs.pop(0)
    npos = outs.pop(0).sum() if reduction == "normalized" else None
    grad = outs.pop(0) if want_grad else None
    if reduction == "none":
        return first, grad, None
    total = first.sum()
    if reduction == "mean":
        total = total / n
    elif reduction == "normalized":
        total = total / jnp.maximum(npos, 1)
    return total.astype(x.dtype), grad, npos


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _focal(x: Any, t: Any, alpha: Any, gamma: float, reduction: str, interpret: bool) -> Any:
    return _launch(x, t, alpha, gamma, reduction, False, interpret)[0]


def _focal_fwd(x: Any, t: Any, alpha: Any, gamma: float, reduction: str, interpret: bool) -> tuple:
    loss, grad, npos = _launch(x, t, alpha, gamma, reduction, True, interpret)
    # the count stays in the compute dtype: float16 holds at most 65,504 (70,000 positives made
    # 1 / count 0 and the gradient -0.0); the rule below divides by it in that dtype too
    return loss, (grad, jnp.maximum(npos, 1) if reduction == "normalized" else None)


def _focal_bwd(alpha: Any, gamma: float, reduction: str, interpret: bool, res: tuple, g: Any) -> tuple:
    """grad * g (/ count), in float32/float64 and rounded once to the gradient's dtype."""
    grad, npos = res
    ct = jnp.float64 if grad.dtype == jnp.float64 else jnp.float32
    up = g.astype(ct) if npos is None else g.astype(ct) / npos.astype(ct)
    return (grad.astype(ct) * up).astype(grad.dtype), None


_focal.defvjp(_focal_fwd, _focal_bwd)


_FLOATS = ("float64", "float32", "float16", "bfloat16")


def sigmoid_focal_loss(
    logits: Any,
    targets: Any,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    interpret: bool | None = None,
) -> Any:
    """Binary focal loss -alpha_t (1 - p_t)**gamma log p_t of ``logits`` in one Pallas kernel.

    targets: same shape, hard {0, 1} or soft [0, 1] (float, integer or bool); alpha weights
    positives, None disables it; reduction none | sum | mean | normalized (sum / max(1, #t == 1)).
    Differentiable in ``logits`` (custom_vjp); the result has the dtype of ``logits``.
    """
    params.choice("reduction", reduction, _REDUCTIONS)
    gamma = params.real("gamma", gamma, 0.0)
    alpha = params.real_or_none("alpha", alpha, 0.0, 1.0)
    if not hasattr(logits, "dtype") or not hasattr(logits, "shape"):
        raise ValueError(f"logits must be an array, got {type(logits).__name__}")
    if jnp.dtype(logits.dtype).name not in _FLOATS:
        raise ValueError(f"logits must be float64, float32, float16 or bfloat16, got {logits.dtype}")
    if not hasattr(targets, "shape") or tuple(targets.shape) != tuple(logits.shape):
        got = tuple(targets.shape) if hasattr(targets, "shape") else type(targets).__name__
        raise ValueError(f"targets have shape {got} but logits have shape {tuple(logits.shape)}")
    x = jnp.asarray(logits)
    t = jnp.asarray(targets)
    if jnp.dtype(t.dtype).name not in _FLOATS:
        t = t.astype(jnp.float64 if x.dtype == jnp.float64 else jnp.float32)
    if interpret is None:
        interpret = _interpret_here()
    _LAST_MODE[0] = "pallas-interpret" if interpret else "gpu"
    shape = x.shape
    if x.size == 0:
        z = jnp.zeros(shape, x.dtype)
        if reduction == "none":
            return z + 0 * x
        return (jnp.nan if reduction == "mean" else 0) + jnp.sum(0 * x).astype(x.dtype)
    out = _focal(x.reshape(-1), t.reshape(-1), alpha, gamma, reduction, bool(interpret))
    return out.reshape(shape) if reduction == "none" else out
