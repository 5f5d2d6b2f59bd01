"""Sigmoid and softmax focal loss for JAX, evaluated to the focalspec specification.

This module depends on ``jax`` only, so it can be copied into another project as it is.

Why it looks the way it does:

* ``1 - p_t`` is never formed as ``1 - p``: it is ``t*sigmoid(-x) + (1-t)*sigmoid(x)`` (and,
  for softmax, the sum of the other classes' probabilities), so a confident correct
  prediction keeps its tiny loss instead of rounding it to zero.
* Cross-entropies come from ``softplus`` / ``log_sigmoid`` / a ``log_softmax`` built around
  ``log1p``, and logit differences are carried with their rounding error (TwoSum,
  Dekker's TwoProduct) where the result is sensitive to it.
* Gradients are closed forms installed with ``jax.custom_jvp``.  Differentiating
  ``(1 - p_t) ** gamma`` by the chain rule gives ``inf * 0 = NaN`` when ``1 - p_t`` rounds to
  zero and ``0 < gamma < 1``; the closed forms use ``d(1-p_t)/(1-p_t)``, which stays
  bounded, and give the limits of SPEC.md at infinite logits.  Derivatives with respect to
  the targets are supplied as well (soft targets may be trainable), except at infinite
  logits, where they are NaN.
* float16 and bfloat16 are evaluated in float32 and rounded once at the end, as XLA
  does for most elementwise work on those types anyway.
* ``gamma``, ``alpha``, ``clip_eps`` and ``label_smoothing`` are Python numbers: they choose
  the evaluation path (``gamma`` = 2 squares, 0.5 takes a square root), so they are static
  under ``jax.jit``.  Target values and class indices are not range-checked (``jit``
  cannot raise on data).

Note: XLA on CPU runs with flush-to-zero / denormals-are-zero, so a result below the
smallest normal number of the dtype comes out as zero there, whatever the formulation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from fractions import Fraction
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from focalspec.kernels import params

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]

INPUT_KINDS = ("logits", "probs")
SOFT_TARGETS = ("canonical", "geometric", "margin", "two_term")
SIGMOID_REDUCTIONS = ("none", "sum", "mean", "normalized")
SOFTMAX_REDUCTIONS = ("none", "sum", "mean")

Array = Any  # jax.Array or anything jnp.asarray accepts


# ----------------------------------------------------------------------------- public functions


def sigmoid_focal_loss(
    inputs: Array,
    targets: Array,
    *,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    input_kind: str = "logits",
    soft_target: str = "canonical",
    clip_eps: float | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> jax.Array:
    """Binary focal loss ``alpha_t (1 - p_t)**gamma * BCE`` per element, then reduced.

    inputs: logits (``input_kind='logits'``) or probabilities in [0, 1]; targets: same shape,
    hard {0, 1} or soft in [0, 1].  alpha weights positives (negatives get ``1 - alpha``);
    None disables it.  soft_target picks the convention for soft targets (canonical,
    geometric = smp, margin = MONAI, two_term = kornia).  clip_eps clips probabilities to
    [eps, 1 - eps] (Keras).  label_smoothing maps t to ``t (1 - ls) + ls / 2``.
    reduction: none | sum | mean | normalized (sum / max(1, number of targets equal to 1)).
    """
    cfg = _SigCfg(
        gamma=params.real("gamma", gamma, 0.0),
        alpha=params.real_or_none("alpha", alpha, 0.0, 1.0),
        input_kind=params.choice("input_kind", input_kind, INPUT_KINDS),
        soft_target=params.choice("soft_target", soft_target, SOFT_TARGETS),
        clip_eps=params.real_or_none("clip_eps", clip_eps, 0.0, 0.5, lo_open=True, hi_open=True),
        label_smoothing=params.real("label_smoothing", label_smoothing, 0.0, 1.0),
    )
    params.choice("reduction", reduction, SIGMOID_REDUCTIONS)
    if cfg.soft_target != "canonical" and (cfg.input_kind != "logits" or cfg.clip_eps is not None):
        raise ValueError(f"soft_target={soft_target!r} is defined for logits without clip_eps only")
    x = _float_input(inputs)
    t_raw = jnp.asarray(targets)
    if t_raw.shape != x.shape:
        raise ValueError(f"targets have shape {t_raw.shape} but inputs have shape {x.shape}")
    if not (jnp.issubdtype(t_raw.dtype, jnp.number) or t_raw.dtype == jnp.bool_):
        raise ValueError(f"targets must be numeric, got dtype {t_raw.dtype}")
    cdt = _compute_dtype(x.dtype)
    loss = _sigmoid_core(x.astype(cdt), t_raw.astype(cdt), cfg)
    if reduction == "normalized":
        positives = jnp.sum(t_raw == 1).astype(cdt)
        loss = jnp.sum(loss) / jnp.maximum(positives, 1)
    else:
        loss = _reduce(loss, reduction)
    return loss.astype(x.dtype)


def softmax_focal_loss(
    inputs: Array,
    targets: Array,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | None = 0.25,
    input_kind: str = "logits",
    clip_eps: float | None = None,
    label_smoothing: float = 0.0,
    renormalize: bool = False,
    reduction: str = "none",
) -> jax.Array:
    """Categorical focal loss ``-sum_j alpha_j t_j (1 - p_j)**gamma log p_j`` per row, then reduced.

    inputs: (..., C) logits or probabilities; targets: (...) integer class indices or
    (..., C) distributions.  alpha: None, one weight for every class, or one per class.
    renormalize (probabilities only) divides each row by its sum first (Keras).
    label_smoothing maps t to ``t (1 - ls) + ls / C``.  reduction: none | sum | mean.
    """
    gamma = params.real("gamma", gamma, 0.0)
    if alpha is not None and not isinstance(alpha, numbers.Real):
        if isinstance(alpha, str) or not isinstance(alpha, Sequence):
            raise ValueError(f"alpha must be None, a number or a sequence of numbers, got {alpha!r}")
        alpha = tuple(params.real_or_none("alpha", a, 0.0, 1.0) for a in alpha)
        if not alpha:
            raise ValueError("alpha sequence is empty")
    else:
        alpha = params.real_or_none("alpha", alpha, 0.0, 1.0)
    if not isinstance(renormalize, bool):
        raise ValueError(f"renormalize must be True or False, got {renormalize!r}")
    cfg = _SoftCfg(
        gamma=gamma,
        alpha=alpha,
        input_kind=params.choice("input_kind", input_kind, INPUT_KINDS),
        clip_eps=params.real_or_none("clip_eps", clip_eps, 0.0, 0.5, lo_open=True, hi_open=True),
        renormalize=renormalize,
    )
    if renormalize and cfg.input_kind != "probs":
        raise ValueError("renormalize applies to input_kind='probs' only")
    ls = params.real("label_smoothing", label_smoothing, 0.0, 1.0)
    params.choice("reduction", reduction, SOFTMAX_REDUCTIONS)
    z = _float_input(inputs)
    if z.ndim < 1 or z.shape[-1] < 1:
        raise ValueError(f"inputs need a class axis with at least one class, got shape {z.shape}")
    n_classes = z.shape[-1]
    if isinstance(alpha, tuple) and len(alpha) != n_classes:
        raise ValueError(f"alpha has {len(alpha)} entries but the inputs have {n_classes} classes")
    cdt = _compute_dtype(z.dtype)
    t_raw = jnp.asarray(targets)
    if not (jnp.issubdtype(t_raw.dtype, jnp.number) or t_raw.dtype == jnp.bool_):
        raise ValueError(f"targets must be numeric, got dtype {t_raw.dtype}")
    if t_raw.shape == z.shape[:-1]:
        if not jnp.issubdtype(t_raw.dtype, jnp.integer):
            raise ValueError(f"class-index targets must be integers, got {t_raw.dtype}")
        t = jax.nn.one_hot(t_raw, n_classes, dtype=cdt)
    elif t_raw.shape == z.shape:
        t = t_raw.astype(cdt)
    else:
        raise ValueError(
            f"targets of shape {t_raw.shape} fit neither class indices {z.shape[:-1]} nor distributions {z.shape}"
        )
    if ls:
        t = t * (1 - ls) + ls / n_classes
    loss = _softmax_core(z.astype(cdt), t, cfg)
    return _reduce(loss, reduction).astype(z.dtype)


# ----------------------------------------------------------------------------- validation


class _SigCfg(NamedTuple):
    gamma: float
    alpha: float | None
    input_kind: str
    soft_target: str
    clip_eps: float | None
    label_smoothing: float


class _SoftCfg(NamedTuple):
    gamma: float
    alpha: float | tuple[float, ...] | None
    input_kind: str
    clip_eps: float | None
    renormalize: bool


def _float_input(inputs: Array) -> jax.Array:
    x = jnp.asarray(inputs)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"inputs must be a floating-point array, got dtype {x.dtype}")
    return x


def _compute_dtype(dtype: Any) -> Any:
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def _reduce(loss: jax.Array, reduction: str) -> jax.Array:
    if reduction == "sum":
        return jnp.sum(loss)
    if reduction == "mean":
        return jnp.sum(loss) / loss.size if loss.size else jnp.sum(loss) / 0.0  # mean of nothing is 0/0 = NaN
    return loss


# ----------------------------------------------------------------------------- custom derivatives


def _with_closed_form_derivatives(parts: Any, row_axis: bool) -> Any:
    """``parts(x, t, cfg, grads)`` -> (loss, dloss/dx, dloss/dt) becomes a differentiable
    ``f(x, t, cfg) -> loss``.  Symbolic zeros keep an undifferentiated argument's derivative
    (which may be infinite) out of the tangent instead of multiplying it by zero."""

    @partial(jax.custom_jvp, nondiff_argnums=(2,))
    def f(x: jax.Array, t: jax.Array, cfg: Any) -> jax.Array:
        return parts(x, t, cfg, False)[0]

    def f_jvp(cfg: Any, primals: tuple, tangents: tuple) -> tuple:
        x, t = primals
        x_dot, t_dot = tangents
        loss, gx, gt = parts(x, t, cfg, True)
        out = jnp.zeros_like(loss)
        if not isinstance(x_dot, SymbolicZero):
            out = out + (jnp.sum(gx * x_dot, axis=-1) if row_axis else gx * x_dot)
        if not isinstance(t_dot, SymbolicZero):
            out = out + (jnp.sum(gt * t_dot, axis=-1) if row_axis else gt * t_dot)
        return loss, out

    f.defjvp(f_jvp, symbolic_zeros=True)
    return f


# ----------------------------------------------------------------------------- elementary pieces


def _pow(m: jax.Array, g: float) -> jax.Array:
    """m ** g for m in [0, 1] with a relative error of a few units of roundoff.

    Integer and half-integer exponents are products and a square root; other exponents
    use the library ``pow`` in float64 and, in float32 (whose ``pow`` loses ~40 u), an
    exact split of the exponent: m = f 2**e, m**g = 2**(g e) f**g with g e formed exactly.
    """
    if g == 0:
        return jnp.ones_like(m)
    if g == 1:
        return m
    if (2 * g).is_integer() and g <= 64:
        whole, half = int(g), (2 * g) % 2 == 1
        out = lax.integer_pow(m, whole) if whole else None
        if half:
            root = jnp.sqrt(m)
            out = root if out is None else out * root
        return out
    if m.dtype == jnp.float64:
        return jnp.power(m, g)
    f, e = jnp.frexp(m)
    ef = e.astype(m.dtype)
    g_hi = _round_significand(g, 11)  # g_hi * e is exact: 11 + 8 significant bits
    g_lo = g - g_hi
    ge = g_hi * ef
    n = jnp.round(ge)
    frac = (ge - n) + g_lo * ef + g * jnp.log2(f)
    half_n = jnp.floor(n / 2)
    return jnp.exp2(frac) * _exp2_int(half_n) * _exp2_int(n - half_n)


def _round_significand(v: float, bits: int) -> float:
    mant, exp = math.frexp(v)
    return math.ldexp(round(mant * 2**bits), exp - bits)


def _exp2_int(k: jax.Array) -> jax.Array:
    """2**k for integral float32 k, built from its bits (exp2 need not be exact)."""
    k = jnp.clip(k, -126, 127).astype(jnp.int32)
    return lax.bitcast_convert_type((k + 127) << 23, jnp.float32)


def _log1p(y: jax.Array) -> jax.Array:
    """log(1 + y).  XLA's float64 log1p is off by up to ~240 u for y in [-0.415, -0.355]; below
    -1/4, 1 + y is (nearly) exact and log(1 + y) is accurate."""
    return jnp.where(y < -0.25, jnp.log(1 + y), jnp.log1p(y))


def _subnormal_split(p: jax.Array) -> tuple[jax.Array, jax.Array, int]:
    """(is_subnormal, p * 2**S, S) read from the bits of p.

    XLA on CPU treats subnormal operands as zero (denormals-are-zero), so log p, p**g and
    1/p of a subnormal probability would be those of 0.  A subnormal is k * 2**-(nmant + S)
    with k its integer bits, so p * 2**S = k * 2**-nmant is formed exactly and is normal."""
    fi = jnp.finfo(p.dtype)
    shift = -int(fi.minexp)  # 126 (float32), 1022 (float64)
    bits = lax.bitcast_convert_type(p, jnp.int32 if p.dtype == jnp.float32 else jnp.int64)
    sub = (bits > 0) & (bits < (1 << int(fi.nmant)))
    scaled = jnp.where(sub, bits, 1).astype(p.dtype) * (2.0 ** -int(fi.nmant))
    return sub, scaled, shift


# Error-free transforms.  XLA rewrites ``(a - 1) + 1`` to ``a`` and LLVM fuses ``a * b + c`` into
# one FMA, so the textbook forms that lean on a constant or on a rounded product (Veltkamp's
# split, Fast2Sum against 1) are not safe under jit; these use no constants and split by bits.


def _two_sum(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """s + err == a + b exactly (Knuth); err is 0 where the sum is not finite."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, jnp.where(jnp.isfinite(err), err, 0)


def _split(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    """a = hi + lo with hi the leading 26 (float64) / 12 (float32) significand bits, cut by bit mask."""
    bits, cut = (jnp.int64, 27) if a.dtype == jnp.float64 else (jnp.int32, 12)
    hi = lax.bitcast_convert_type(lax.bitcast_convert_type(a, bits) & bits(-(1 << cut)), a.dtype)
    return hi, a - hi


def _two_prod(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """p + err == a * b (Dekker; exact in float32, to ~u**2 relative in float64); err is 0
    where the product is not finite."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, jnp.where(jnp.isfinite(err), err, 0)


def _const_pair(v: Fraction, dtype: Any) -> tuple[float, float]:
    """An exact rational as hi + lo in ``dtype`` (hi rounded, lo the rounded remainder)."""
    np_type = jnp.dtype(dtype).type
    hi = float(np_type(float(v)))
    return hi, float(np_type(float(v - Fraction(hi))))


def _smoothed(t: jax.Array, ls: float) -> tuple[jax.Array, jax.Array]:
    """(t_s, 1 - t_s) for t_s = t (1 - ls) + ls / 2, each a sum of non-negative terms, so
    1 - t_s stays accurate (it is ~ls/2 at t = 1, where the loss is most sensitive to it)."""
    if not ls:
        return t, 1 - t
    keep, half = 1 - ls, ls / 2
    return t * keep + half, (1 - t) * keep + half


def _margin_z(x: jax.Array, t: jax.Array, ls: float) -> tuple[jax.Array, jax.Array]:
    """z = x (2 t_s - 1) = x (2t - 1)(1 - ls) as hi + lo: sigmoid(-z) has relative condition
    |z|, so one rounding of z would cost |z| u."""
    p, e = _two_prod(x, t)
    z_hi, f = _two_sum(2 * p, -x)
    z_lo = f + 2 * e
    if ls:
        c_hi, c_lo = _const_pair(1 - Fraction(ls), x.dtype)
        q, e2 = _two_prod(z_hi, jnp.asarray(c_hi, x.dtype))
        z_hi, z_lo = q, e2 + (z_hi * c_lo + z_lo * c_hi)
    big = jnp.abs(x) > 2.0 ** (1000 if x.dtype == jnp.float64 else 120)
    return jnp.where(big, x * ((2 * t - 1) * (1 - ls)), z_hi), jnp.where(big, 0, z_lo)


def _alpha_t(tp: jax.Array, tn: jax.Array, alpha: float | None) -> tuple[Any, float]:
    """alpha_t = alpha t + (1 - alpha)(1 - t) and its derivative in t."""
    if alpha is None:
        return 1.0, 0.0
    return alpha * tp + (1 - alpha) * tn, 2 * alpha - 1


# ----------------------------------------------------------------------------- sigmoid


def _sigmoid_parts(x: jax.Array, t: jax.Array, cfg: _SigCfg, grads: bool) -> tuple:
    tp, tn = _smoothed(t, cfg.label_smoothing)
    if cfg.input_kind == "probs" or cfg.clip_eps is not None:
        loss, gx, gts = _sigmoid_probs(x, tp, tn, cfg, grads)
    else:
        loss, gx, gts = _sigmoid_logits(x, t, tp, tn, cfg, grads)
    gt = None if gts is None else gts * (1 - cfg.label_smoothing)
    return loss, gx, gt


def _sigmoid_logits(x: jax.Array, t: jax.Array, tp: jax.Array, tn: jax.Array, cfg: _SigCfg, grads: bool) -> tuple:
    """Loss, d/dx and d/dt_s on logits; t the raw target, tp = t_s, tn = 1 - t_s."""
    g, kind = cfg.gamma, cfg.soft_target
    inf = jnp.isinf(x)
    xf = jnp.where(inf, jnp.zeros_like(x), x)
    s_pos, s_neg = jax.nn.sigmoid(xf), jax.nn.sigmoid(-xf)  # p, 1 - p
    sp_pos, sp_neg = jax.nn.softplus(xf), jax.nn.softplus(-xf)  # -log(1 - p), -log p
    ce = tp * sp_neg + tn * sp_pos
    dce = tn * s_pos - tp * s_neg  # p - t without cancellation at hard targets
    gx = gt = None
    if kind == "two_term":
        ap, an = (1.0, 1.0) if cfg.alpha is None else (cfg.alpha, 1 - cfg.alpha)
        wp, wn = _pow(s_neg, g), _pow(s_pos, g)
        loss = ap * tp * wp * sp_neg + an * tn * wn * sp_pos
        if grads:
            gx = an * tn * wn * (g * s_neg * sp_pos + s_pos) - ap * tp * wp * (g * s_pos * sp_neg + s_neg)
            gt = ap * wp * sp_neg - an * wn * sp_pos
        lim_val, lim_grad = _two_term_limits(x, tp, tn, ap, an)
    else:
        a, da = _alpha_t(tp, tn, cfg.alpha)
        if kind == "canonical":
            m = tp * s_neg + tn * s_pos  # 1 - p_t
            mg = _pow(m, g)
            loss = a * mg * ce
            if grads:
                # r = p (1 - p) / (1 - p_t) <= 1: d log(1 - p_t)/dx = (1 - 2t) r, finite at saturation
                r = jnp.where(m > 0, s_pos * s_neg / m, jnp.where(tn == 0, s_pos, s_neg))
                ratio = jnp.where(m > 0, ce / m, 1)  # -> 1 where 1 - p_t underflows
                gx = a * mg * (g * (tn - tp) * (r * ce) + dce)
                gt = da * mg * ce + a * mg * (g * (s_neg - s_pos) * ratio - xf)
        elif kind == "geometric":
            m = -jnp.expm1(-ce)  # 1 - exp(-BCE)
            mg = _pow(m, g)
            loss = a * mg * ce
            if grads:
                ratio = jnp.where(m > 0, ce / m, 1)
                inner = mg * (g * jnp.exp(-ce) * ratio + 1)  # d(m**g ce)/dce
                gx = a * dce * inner
                gt = da * mg * ce - a * inner * xf
        else:  # margin: 1 - p_t = sigmoid(-x (2t - 1)), x (2t - 1) carried exactly
            z_hi, z_lo = _margin_z(xf, t, cfg.label_smoothing)
            m0, s0 = jax.nn.sigmoid(-z_hi), jax.nn.sigmoid(z_hi)
            m = m0 * (1 - s0 * z_lo)
            mg = _pow(m, g)
            loss = a * mg * ce
            if grads:
                sz = s0 * (1 + m0 * z_lo)  # sigmoid(x (2t - 1))
                gx = a * mg * (dce - g * (tp - tn) * sz * ce)
                gt = da * mg * ce - a * mg * xf * (2 * g * sz * ce + 1)
        side = jnp.sign(t - 0.5) * (cfg.label_smoothing < 1)  # sign of 2 t_s - 1
        lim_val, lim_grad = _limits(x, tp, tn, side, a, g, kind)
    loss = jnp.where(inf, lim_val, loss)
    if grads:
        gx = jnp.where(inf, lim_grad, gx)
        gt = jnp.where(inf, jnp.nan, gt)
    return loss, gx, gt


def _plus_inf_limit(tq: jax.Array, tq_neg: jax.Array, side: jax.Array, g: float, kind: str) -> tuple:
    """(value, d/dx) of the unweighted loss as x -> +inf for target tq (1 - tq = tq_neg, side
    the sign of 2 tq - 1)."""
    one = tq_neg == 0
    if kind == "canonical":
        grad, infinite = _pow(tq_neg, g + 1), ~one
    elif kind == "geometric":
        grad, infinite = tq_neg, ~one
    elif g == 0:  # margin without focusing is BCE
        grad, infinite = tq_neg, ~one
    else:  # margin: sigmoid(-x m)**g decays faster than BCE grows when m = 2t - 1 > 0
        below, half = side < 0, side == 0
        grad = jnp.where(below, tq_neg, jnp.where(half, 0.5**g * tq_neg, 0))
        infinite = ~one & (below | half)
    grad = jnp.where(one, 0, grad)
    return jnp.where(infinite, jnp.inf, 0).astype(tq.dtype), grad


def _limits(x: jax.Array, tp: jax.Array, tn: jax.Array, side: jax.Array, a: Any, g: float, kind: str) -> tuple:
    v_pos, d_pos = _plus_inf_limit(tp, tn, side, g, kind)
    v_neg, d_neg = _plus_inf_limit(tn, tp, -side, g, kind)  # U(-x, 1 - t) = U(x, t)
    val = jnp.where(x > 0, v_pos, v_neg)
    grad = jnp.where(x > 0, d_pos, -d_neg)
    zero = jnp.asarray(a) == 0
    return jnp.where(zero, 0, a * val), jnp.where(zero, 0, a * grad)


def _two_term_limits(x: jax.Array, tp: jax.Array, tn: jax.Array, ap: float, an: float) -> tuple:
    w = jnp.where(x > 0, an * tn, ap * tp)
    val = jnp.where(w > 0, jnp.inf, 0).astype(x.dtype)
    return val, jnp.where(x > 0, w, -w)


def _sigmoid_probs(x: jax.Array, tp: jax.Array, tn: jax.Array, cfg: _SigCfg, grads: bool) -> tuple:
    """Probability inputs, or logits under the clip convention (then d/dx = d/dp p (1 - p))."""
    g, eps = cfg.gamma, cfg.clip_eps
    logits = cfg.input_kind == "logits"
    if logits:
        p, q = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
        logp, logq = -jax.nn.softplus(-x), -jax.nn.softplus(x)
    else:
        p, q = x, 1 - x  # 1 - p is exact for p >= 1/2
        logp, logq = jnp.log(p), jnp.where(p < 0.5, _log1p(-p), jnp.log(q))
        sub, p_scaled, shift = _subnormal_split(p)
        logp = jnp.where(sub, jnp.log(p_scaled) - shift * math.log(2), logp)
    inside = True
    if eps is not None:
        if logits:  # decide in logit space, where the threshold is sharp
            edge = math.log(eps) - math.log1p(-eps)
            below, above = x < edge, x > -edge
        else:
            below, above = p < eps, q < eps
        inside = ~(below | above)
        p = jnp.where(below, eps, jnp.where(above, 1 - eps, p))
        q = jnp.where(below, 1 - eps, jnp.where(above, eps, q))
        log_eps, log_1m = math.log(eps), math.log1p(-eps)
        logp = jnp.where(below, log_eps, jnp.where(above, log_1m, logp))
        logq = jnp.where(below, log_1m, jnp.where(above, log_eps, logq))
    a, da = _alpha_t(tp, tn, cfg.alpha)
    a_zero = jnp.asarray(a) == 0
    m = tp * q + tn * p  # 1 - p_t
    mg = _pow(m, g)
    if not logits and eps is None:  # 1 - p_t = p subnormal (t = 0): p**g = (p 2**S)**g 2**(-S g)
        mg = jnp.where(sub & (tp == 0), _pow(p_scaled, g) * (2.0 ** (-shift * g)), mg)
    ce = jnp.where(tp > 0, -tp * logp, 0) + jnp.where(tn > 0, -tn * logq, 0)
    loss = jnp.where(a_zero, 0, jnp.where(jnp.isinf(ce), ce, a * mg * ce))
    if not grads:
        return loss, None, None
    ratio = jnp.where(m > 0, ce / m, 1)
    dce = jnp.where(tn > 0, tn / q, 0) - jnp.where(tp > 0, tp / p, 0)
    gp = a * mg * (g * (tn - tp) * ratio + dce)
    at_target = (g == 0) * jnp.where(tn == 0, -a, a)  # p = t at a hard target: one-sided limit
    gp = jnp.where(m == 0, at_target, gp)
    gp = jnp.where((p == 0) & (tp > 0), -jnp.inf, jnp.where((q == 0) & (tn > 0), jnp.inf, gp))
    if not logits and eps is None:  # subnormal p: m / ce -> 1 for t = 0; t / p formed as (t / (p 2**S)) 2**S
        ratio = jnp.where(tp > 0, ce / m, 1)  # tp > 0: m >= tp q is normal
        rest = a * mg * (g * (tn - tp) * ratio + jnp.where(tn > 0, tn / q, 0))
        gp = jnp.where(sub, rest - (a * mg * tp / p_scaled) * (2.0**shift), gp)
    gp = jnp.where(a_zero | ~jnp.asarray(inside), 0, gp)
    gx = jnp.where(inside, gp * (p * q), 0) if logits else gp
    gt = da * mg * ce + a * mg * (g * (q - p) * ratio + (logq - logp))
    return loss, gx, gt


_sigmoid_core = _with_closed_form_derivatives(_sigmoid_parts, row_axis=False)


# ----------------------------------------------------------------------------- softmax


def _softmax_parts(z: jax.Array, t: jax.Array, cfg: _SoftCfg, grads: bool) -> tuple:
    n_classes = z.shape[-1]
    alpha = cfg.alpha
    aw: Any = 1.0
    if isinstance(alpha, tuple):
        aw = jnp.asarray(alpha, dtype=z.dtype)
    elif alpha is not None:
        aw = alpha
    w = aw * t
    g, eps = cfg.gamma, cfg.clip_eps
    classes = jnp.arange(n_classes)
    if cfg.input_kind == "logits":
        top = classes == jnp.argmax(z, axis=-1, keepdims=True)
        d_hi, d_lo = _two_sum(z, -jnp.max(z, axis=-1, keepdims=True))  # z - max, exactly
        d_lo = jnp.where(jnp.isfinite(d_hi), d_lo, 0)
        e = jnp.exp(d_hi)
        e = e + e * d_lo
        rest = jnp.sum(jnp.where(top, 0, e), axis=-1, keepdims=True)  # sum of the others, top = 1
        total = 1 + rest
        logp = (d_hi - jnp.log1p(rest)) + d_lo
        p = e / total
        q = jnp.where(top, rest, total - e) / total  # 1 - p_j without cancellation
    else:
        if cfg.renormalize:
            s = jnp.sum(z, axis=-1, keepdims=True)
            top = classes == jnp.argmax(z, axis=-1, keepdims=True)
            rest = jnp.sum(jnp.where(top, 0, z), axis=-1, keepdims=True)
            p = z / s
            q = jnp.where(top, rest, s - z) / s
            logp = jnp.where(p > 0.5, _log1p(-q), jnp.log(p))
        else:
            p, q = z, 1 - z
            logp = jnp.log(p)
    inside: Any = True
    pc, qc, logpc = p, q, logp
    if eps is not None:
        below, above = p < eps, q < eps
        inside = ~(below | above)
        pc = jnp.where(below, eps, jnp.where(above, 1 - eps, p))
        qc = jnp.where(below, 1 - eps, jnp.where(above, eps, q))
        logpc = jnp.where(below, math.log(eps), jnp.where(above, math.log1p(-eps), logp))
    qg = _pow(qc, g)
    term = jnp.where(w > 0, w * qg * -logpc, 0)
    loss = jnp.sum(term, axis=-1)
    if not grads:
        return loss, None, None
    gt = aw * qg * -logpc
    if cfg.input_kind == "logits":
        # h_j = dF_j / dlog p_j; d/dz_k = h_k (1 - p_k) - p_k sum_{j != k} h_j
        ratio = jnp.where(q > 0, -logp / q, 1)
        h = jnp.where(w > 0, -w * _pow(q, g) * (1 + g * p * ratio), 0)
        h = jnp.where(inside, h, 0)
        big = classes == jnp.argmax(jnp.abs(h), axis=-1, keepdims=True)
        total_h = jnp.sum(h, axis=-1, keepdims=True)
        others = jnp.where(big, jnp.sum(jnp.where(big, 0, h), axis=-1, keepdims=True), total_h - h)
        return loss, h * q - p * others, gt
    at_one = -w if g == 0 else jnp.zeros_like(w)
    dp = jnp.where(qc > 0, w * qg * (g * logpc / qc - 1 / pc), at_one)
    dp = jnp.where(pc == 0, -jnp.inf, dp)
    dp = jnp.where((w == 0) | ~jnp.asarray(inside), 0, dp)
    if cfg.renormalize:
        inner = jnp.sum(dp * p, axis=-1, keepdims=True)
        return loss, (dp - inner) / s, gt
    return loss, dp, gt


_softmax_core = _with_closed_form_derivatives(_softmax_parts, row_axis=True)
