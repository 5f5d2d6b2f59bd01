"""Vectorised float64 reference: the same definitions as ``exact`` for bulk random tensors.

Written independently of ``exact`` (arrays and ``np.where`` limits instead of per-element
branches) so that each checks the other.  Every quantity is evaluated in a form without
cancellation; its measured error against mpmath is bounded in tests/test_reference_np.py
(``NP_ERROR_BOUND_U`` units of float64 roundoff, relative to the value / gradient scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.spec.variant import SpecError, Variant

# Measured worst error of this module against mpmath over the sweep of the tests, in u(float64).
NP_ERROR_BOUND_U = 32.0


def margin_bound(x: np.ndarray, t: np.ndarray, gamma: float) -> np.ndarray:
    """The stated exception: the margin convention's 1 - p_t = sigmoid(-x m), m = 2t - 1,
    has condition number |x m| in its argument, which float64 forms with a rounding error
    (m itself is inexact for most t), and (1 - p_t)^gamma raises it to gamma: the bound
    there is NP_ERROR_BOUND_U + 2 gamma |x m| u."""
    return NP_ERROR_BOUND_U + 2 * gamma * np.abs(x * (2 * t - 1))


def log_space_factor(m: np.ndarray, x: np.ndarray, mm: np.ndarray, g: float) -> np.ndarray:
    """m**g for m = 1 - p_t = sigmoid(-x mm): where sigmoid(-x mm) underflows, (1 - p_t)^g may
    not, so it is taken from log space there, exp(-g softplus(x mm)) (error ~ 2 g |x mm| u:
    the stated exception margin_bound)."""
    if g == 0:
        return np.ones_like(m)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(m < 1e-300, np.exp(-g * softplus(x * mm)), _pow(m, g))


@dataclass
class NpResult:
    """Same meaning as ``mp.MpResult``, as float64 arrays (``value`` a float or None)."""

    losses: np.ndarray
    value: float | None
    grad: np.ndarray
    grad_scale: np.ndarray


def expit(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) with small relative error on both tails."""
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), accurate for every finite x (and inf at +inf)."""
    return np.logaddexp(0.0, x)


def _mul0(c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """c * v with 0 * anything = 0."""
    with np.errstate(invalid="ignore"):
        return np.where(c == 0, 0.0, c * v)


def _pow(m: np.ndarray, g: float) -> np.ndarray:
    return np.ones_like(m) if g == 0 else np.power(m, g)


def alpha_weight(t: np.ndarray, alpha: float | None) -> np.ndarray:
    if alpha is None:
        return np.ones_like(t)
    return alpha * t + (1.0 - alpha) * (1.0 - t)


def clip_interval(v: Variant) -> tuple[float, float]:
    """The clip bounds; 1 - eps is formed in float64 unless the variant states it."""
    assert v.clip_eps is not None
    return v.clip_eps, (v.clip_upper if v.clip_upper is not None else 1.0 - v.clip_eps)


def clipped(p: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray]:
    """(clip(p) to the variant's interval, the clip's derivative: 1 inside, bounds included, 0 beyond)."""
    lo, hi = clip_interval(v)
    return np.clip(p, lo, hi), ((p >= lo) & (p <= hi)).astype(np.float64)


def _finish(a: np.ndarray, x: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """0 where the class weight is 0 (whatever the arithmetic gave), NaN where the input is NaN."""
    zero_w, nan = a == 0, np.isnan(x)
    return tuple(np.where(nan, np.nan, np.where(zero_w, 0.0, arr)) for arr in arrays)


def softmax_bound(z: np.ndarray) -> np.ndarray:
    """The stated softmax exception: p_k = exp(z_k - z_max) has condition number |z_k - z_max|
    in an argument that float64 forms with a rounding error, so the bound of a row is
    NP_ERROR_BOUND_U + 2 max_k |z_k - z_max| u."""
    spread = np.max(z, axis=-1, keepdims=True) - np.min(z, axis=-1, keepdims=True)
    return NP_ERROR_BOUND_U + 2 * spread


# ----------------------------------------------------------------------------- sigmoid


def sigmoid_logits(x: np.ndarray, t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loss, dloss/dx, gradient scale) element-wise; t already smoothed."""
    if v.clip_eps is not None and v.clip_scope == "ce":
        return _sigmoid_logits_clip_ce(x, t, v)
    if v.clip_eps is not None:
        p = expit(x)
        val, dp, sc = sigmoid_probs(p, t, v)
        dpdx = expit(x) * expit(-x)
        return val, dp * dpdx, sc * dpdx
    g = float(v.gamma)
    xf = np.where(np.isfinite(x), x, 0.0)  # infinities are patched with their limits below
    s_pos, s_neg = expit(xf), expit(-xf)
    sp_pos, sp_neg = softplus(xf), softplus(-xf)
    one_t = 1.0 - t
    ce = _mul0(t, sp_neg) + _mul0(one_t, sp_pos)
    dce = _mul0(one_t, s_pos) - _mul0(t, s_neg)
    dce_scale = _mul0(one_t, s_pos) + _mul0(t, s_neg)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if v.soft_target == "two_term":
            ap, an = (1.0, 1.0) if v.alpha is None else (v.alpha, 1.0 - v.alpha)
            pos = _mul0(ap * t, _pow(s_neg, g) * sp_neg)
            neg = _mul0(an * one_t, _pow(s_pos, g) * sp_pos)
            dpos = -_mul0(ap * t, _pow(s_neg, g) * (g * s_pos * sp_neg + s_neg))
            dneg = _mul0(an * one_t, _pow(s_pos, g) * (g * s_neg * sp_pos + s_pos))
            val, grad, scale = pos + neg, dpos + dneg, np.abs(dpos) + np.abs(dneg)
            return _patch_infinite(x, t, v, val, grad, scale)
        a = alpha_weight(t, v.alpha)
        if v.soft_target == "canonical":
            m = _mul0(t, s_neg) + _mul0(one_t, s_pos)
            mg = _pow(m, g)
            # sigma(x) sigma(-x) / (1 - p_t): exact shortcuts at hard targets, where m may underflow
            r = np.where(t == 1, s_pos, np.where(t == 0, s_neg, s_pos * s_neg / m))
            t1 = g * mg * (1.0 - 2.0 * t) * r * ce
            val, grad, scale = a * mg * ce, a * (t1 + mg * dce), a * (np.abs(t1) + mg * dce_scale)
        elif v.soft_target == "geometric":
            m = -np.expm1(-ce)
            mg = _pow(m, g)
            # g m^(g-1) e^-CE CE: m^(g-1) CE -> m^g as CE -> 0, so use CE/m (-> 1) there
            ratio = np.where(m > 0, ce / np.where(m > 0, m, 1.0), 1.0)
            inner = (g * mg * ratio * np.exp(-ce) if g != 0 else 0.0) + mg
            val, grad, scale = a * mg * ce, a * dce * inner, a * dce_scale * inner
        else:  # margin
            mm = 2.0 * t - 1.0
            m = expit(-xf * mm)
            mg = log_space_factor(m, xf, mm, g)
            t2 = g * mm * expit(xf * mm) * ce
            val, grad, scale = a * mg * ce, a * mg * (dce - t2), a * mg * (dce_scale + np.abs(t2))
    return _patch_infinite(x, t, v, val, grad, scale)


def _plus_inf_limit(t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray]:
    """Unweighted (value, grad) limits as x -> +inf (SPEC.md §1.4), element-wise in t."""
    g = float(v.gamma)
    one_t = 1.0 - t
    if v.soft_target == "canonical":
        val, grad = np.full_like(t, np.inf), one_t ** (g + 1.0)
    elif v.soft_target == "geometric":
        val, grad = np.full_like(t, np.inf), one_t.copy()
    else:
        mm = 2.0 * t - 1.0
        vanish = (mm > 0) & (g != 0)
        val = np.where(vanish, 0.0, np.inf)
        grad = np.where(vanish, 0.0, np.where(mm == 0, 0.5**g * one_t, one_t))
    done = t == 1
    return np.where(done, 0.0, val), np.where(done, 0.0, grad)


def _patch_infinite(
    x: np.ndarray, t: np.ndarray, v: Variant, val: np.ndarray, grad: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pinf, ninf, nan = x == np.inf, x == -np.inf, np.isnan(x)
    if not (pinf.any() or ninf.any() or nan.any()):
        return val, grad, scale
    val, grad, scale = val.copy(), grad.copy(), scale.copy()
    if v.soft_target == "two_term":
        ap, an = (1.0, 1.0) if v.alpha is None else (v.alpha, 1.0 - v.alpha)
        wp, wn = _mul0(an * (1.0 - t), np.ones_like(t)), _mul0(ap * t, np.ones_like(t))
        lim_val = np.where(pinf, np.where(wp > 0, np.inf, 0.0), np.where(wn > 0, np.inf, 0.0))
        lim_grad = np.where(pinf, wp, -wn)
    else:
        a = alpha_weight(t, v.alpha)
        vp, gp = _plus_inf_limit(t, v)
        vn, gn = _plus_inf_limit(1.0 - t, v)  # U(-x, 1-t) = U(x, t)
        with np.errstate(invalid="ignore"):
            lim_val = np.where(a == 0, 0.0, a * np.where(pinf, vp, vn))
        lim_grad = np.where(a == 0, 0.0, a * np.where(pinf, gp, -gn))
    inf = pinf | ninf
    val[inf], grad[inf], scale[inf] = lim_val[inf], lim_grad[inf], np.abs(lim_grad[inf])
    val[nan] = grad[nan] = scale[nan] = np.nan
    return val, grad, scale


def _sigmoid_logits_clip_ce(x: np.ndarray, t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras' binary form (clip_scope='ce'): BCE of clip(sigma(x)), factor of the unclipped p.

    Decided and evaluated in x, as the mpmath reference does: inside the clip the BCE is
    the softplus form (no log of a rounded sigma(x)), beyond it the BCE of the bound."""
    lo, hi = clip_interval(v)
    hi_c = lo if v.clip_upper is None else 1.0 - hi  # exact: Sterbenz
    x_lo, x_hi = np.log(lo) - np.log1p(-lo), np.log1p(-hi_c) - np.log(hi_c)
    g = float(v.gamma)
    a = alpha_weight(t, v.alpha)
    one_t = 1.0 - t
    s_pos, s_neg = expit(x), expit(-x)  # exactly 1 and 0 at the infinities
    above, below = x > x_hi, x < x_lo
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        xf = np.where(above | below, 0.0, x)  # the softplus branch is used inside only
        ce_in = _mul0(t, softplus(-xf)) + _mul0(one_t, softplus(xf))
        ce_hi = _mul0(t, np.full_like(x, -np.log1p(-hi_c))) + _mul0(one_t, np.full_like(x, -np.log(hi_c)))
        ce_lo = _mul0(t, np.full_like(x, -np.log(lo))) + _mul0(one_t, np.full_like(x, -np.log1p(-lo)))
        ce = np.where(above, ce_hi, np.where(below, ce_lo, ce_in))
        inside = ~(above | below)
        dce = np.where(inside, _mul0(one_t, s_pos) - _mul0(t, s_neg), 0.0)
        dce_scale = np.where(inside, _mul0(one_t, s_pos) + _mul0(t, s_neg), 0.0)
        m = _mul0(t, s_neg) + _mul0(one_t, s_pos)
        hard = (t == 0) | (t == 1)  # there 1 - p_t = sigmoid(-x (2t - 1)), which may underflow
        mg = np.where(hard, log_space_factor(m, x, 2.0 * t - 1.0, g), _pow(m, g))
        r = np.where(t == 1, s_pos, np.where(t == 0, s_neg, s_pos * s_neg / m))
        t1 = g * mg * (1.0 - 2.0 * t) * r * ce
        val, grad, scale = a * mg * ce, a * (t1 + mg * dce), a * (np.abs(t1) + mg * dce_scale)
    return _finish(a, x, val, grad, scale)  # type: ignore[return-value]


def _sigmoid_probs_clip_ce(p: np.ndarray, t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras' binary form on probabilities: BCE of clip(p), factor (1 - p_t)^g of the unclipped p."""
    pc, inside = clipped(p, v)
    g = float(v.gamma)
    a = alpha_weight(t, v.alpha)
    one_t = 1.0 - t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ce = _mul0(t, -np.log(pc)) + _mul0(one_t, -np.log1p(-pc))
        d_neg, d_pos = _mul0(one_t, 1.0 / (1.0 - pc)), _mul0(t, 1.0 / pc)
        m = _mul0(t, 1.0 - p) + _mul0(one_t, p)
        mg = _pow(m, g)
        # d(m^g)/dm, with its one-sided limit at m = 0: infinite for 0 < g < 1, 1 at g = 1
        at_zero = 0.0 if (g == 0 or g > 1) else (1.0 if g == 1 else np.inf)
        # g m^(g-1), not g m^g / m: m^g underflows long before m^(g-1) does
        slope = np.where(m > 0, g * _pow(np.where(m > 0, m, 1.0), g - 1.0), at_zero) if g != 0 else np.zeros_like(m)
        t1 = slope * (1.0 - 2.0 * t) * ce  # ce > 0: the clipped BCE is never 0
        val = a * mg * ce
        grad = a * (t1 + mg * (d_neg - d_pos) * inside)
        scale = a * (np.abs(t1) + mg * (d_neg + d_pos) * inside)
    return _finish(a, p, val, grad, scale)  # type: ignore[return-value]


def _two_term_probs(p: np.ndarray, t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """two_term on probabilities (SPEC §2.2), as in focalspec.reference.exact._two_term_probs."""
    g = float(v.gamma)
    ap, an = (1.0, 1.0) if v.alpha is None else (v.alpha, 1.0 - v.alpha)
    wp, wn = ap * t, an * (1.0 - t)
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        qg, pg = _pow(q, g), _pow(p, g)
        lp_q = np.where(q == 0, -1.0, np.log(p) / np.where(q == 0, 1.0, q))
        lq_p = np.where(p == 0, -1.0, np.log1p(-p) / np.where(p == 0, 1.0, p))
        pos = np.where(p == 0, np.inf, _mul0(qg, -np.log(p)))
        neg = np.where(q == 0, np.inf, _mul0(pg, -np.log1p(-p)))
        dpos = np.where(p == 0, -np.inf, g * qg * lp_q - qg / p)
        dneg = np.where(q == 0, np.inf, -g * pg * lq_p + pg / q)
        val = _mul0(wp, pos) + _mul0(wn, neg)
        dpos, dneg = _mul0(wp, dpos), _mul0(wn, dneg)
    nan = np.isnan(p)
    val, grad, scale = (np.where(nan, np.nan, a) for a in (val, dpos + dneg, np.abs(dpos) + np.abs(dneg)))
    return val, grad, scale


def sigmoid_probs(p: np.ndarray, t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(loss, dloss/dp, gradient scale) for probability inputs; clipping applied here."""
    if np.any((p < 0) | (p > 1)):
        raise SpecError("probability inputs must lie in [0, 1]")
    if v.clip_eps is not None and v.clip_scope == "ce":
        return _sigmoid_probs_clip_ce(p, t, v)
    if v.soft_target == "two_term":
        return _two_term_probs(p, t, v)
    inside = np.ones_like(p)
    if v.clip_eps is not None:
        p, inside = clipped(p, v)
    g = float(v.gamma)
    a = alpha_weight(t, v.alpha)
    one_t = 1.0 - t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = 1.0 - p
        m = _mul0(t, q) + _mul0(one_t, p)
        mg = _pow(m, g)
        ce = _mul0(t, -np.log(p)) + _mul0(one_t, -np.log1p(-p))
        dce = _mul0(one_t, 1.0 / q) - _mul0(t, 1.0 / p)
        dce_scale = _mul0(one_t, 1.0 / q) + _mul0(t, 1.0 / p)
        t1 = np.where(m > 0, g * mg / np.where(m > 0, m, 1.0) * (1.0 - 2.0 * t) * ce, 0.0)
        val = a * mg * ce
        grad = a * (t1 + mg * dce)
        scale = a * (np.abs(t1) + mg * dce_scale)
        # p = t at a hard target: loss 0, one-sided derivative (-a or +a at gamma = 0, else 0)
        at_target = m == 0
        d0 = np.where(t == 1, -a, a) if g == 0 else np.zeros_like(a)
        val = np.where(at_target, 0.0, val)
        grad = np.where(at_target, d0, grad)
        scale = np.where(at_target, np.abs(d0), scale)
        wrong_end = ((p == 0) & (t > 0)) | ((p == 1) & (t < 1))
        grad = np.where(wrong_end, np.where(p == 0, -np.inf, np.inf), grad)
        scale = np.where(wrong_end, np.inf, scale)
        zero_w = a == 0
        val, grad, scale = (np.where(zero_w, 0.0, arr) for arr in (val, grad, scale))
    nan = np.isnan(p)
    val, grad, scale = (np.where(nan, np.nan, arr) for arr in (val, grad, scale))
    return val, grad * inside, scale * inside


# ----------------------------------------------------------------------------- softmax


def _complement(p: np.ndarray) -> np.ndarray:
    """1 - p_j per row without cancellation: sum of the other classes for the largest p."""
    q = 1.0 - p
    big = np.argmax(p, axis=-1)[..., None]
    others = p.copy()
    np.put_along_axis(others, big, 0.0, axis=-1)
    np.put_along_axis(q, big, others.sum(axis=-1, keepdims=True), axis=-1)
    return q


def _combine(h: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d/dz_k = h_k q_k - p_k sum_{j != k} h_j, with the exclusive sums formed without cancellation."""
    total = h.sum(axis=-1, keepdims=True)
    excl = total - h
    k = np.argmax(np.abs(h), axis=-1)[..., None]
    others = h.copy()
    np.put_along_axis(others, k, 0.0, axis=-1)
    np.put_along_axis(excl, k, others.sum(axis=-1, keepdims=True), axis=-1)
    habs = np.abs(h)
    excl_abs = habs.sum(axis=-1, keepdims=True) - habs
    oabs = habs.copy()
    np.put_along_axis(oabs, k, 0.0, axis=-1)
    np.put_along_axis(excl_abs, k, oabs.sum(axis=-1, keepdims=True), axis=-1)
    return h * q - p * excl, np.abs(h) * q + p * excl_abs


def _probs_terms(p: np.ndarray, w: np.ndarray, g: float, v: Variant) -> tuple[np.ndarray, np.ndarray]:
    """Per-component -w (1-p)^g log p and its partial in p (clipping applied)."""
    inside = np.ones_like(p)
    if v.clip_eps is not None:
        p, inside = clipped(p, v)
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.log(p)
        f = _mul0(w, _pow(q, g) * (-logp))
        lead = np.where(q > 0, g * _pow(q, g) / np.where(q > 0, q, 1.0) * logp, 0.0) if g != 0 else 0.0
        d = _mul0(w, lead - _pow(q, g) / p)
        d = np.where((q == 0) & (w != 0), (-w if g == 0 else 0.0), d)
    return f, d * inside


def softmax_rows(z: np.ndarray, t: np.ndarray, v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row losses, gradient, gradient scale); t are distributions (..., C), already smoothed."""
    c = z.shape[-1]
    g = float(v.gamma)
    alphas = v.alpha_for_classes(c)
    w = t if alphas is None else t * np.asarray(alphas, dtype=np.float64)
    bad = np.isnan(z).any(axis=-1)
    zf = np.where(np.isnan(z), 0.0, z)
    if v.input_kind == "logits":
        if np.isinf(zf).any():
            raise SpecError("softmax focal loss is specified for finite logits only")
        zmax = zf.max(axis=-1, keepdims=True)
        e = np.exp(zf - zmax)
        tot = e.sum(axis=-1, keepdims=True)
        # log(tot) = log1p(sum of the others): tot - 1 can be far below float64 resolution
        rest = e.copy()
        np.put_along_axis(rest, np.argmax(zf, axis=-1)[..., None], 0.0, axis=-1)
        logp = zf - zmax - np.log1p(rest.sum(axis=-1, keepdims=True))
        p = e / tot
        q = _complement(p)
        if v.clip_eps is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                # (-log p)/q -> 1/p as q -> 0; -log p = log1p(q/p) is exact in form
                ratio = np.where(q > 0, -logp / np.where(q > 0, q, 1.0), 1.0 / p)
                h = np.where(w == 0, 0.0, -w * _pow(q, g) * (1.0 + g * p * ratio))
                rows = _mul0(w, _pow(q, g) * (-logp)).sum(axis=-1)
            grad, scale = _combine(h, p, q)
        else:
            f, d = _probs_terms(p, w, g, v)
            rows = f.sum(axis=-1)
            grad, scale = _combine(d * p, p, q)
    else:
        if np.any((zf < 0) | (zf > 1)):
            raise SpecError("probability inputs must lie in [0, 1]")
        if v.renormalize:
            s = zf.sum(axis=-1, keepdims=True)
            qn = zf / s
            f, d = _probs_terms(qn, w, g, v)
            inner = (d * qn).sum(axis=-1, keepdims=True)
            inner_abs = (np.abs(d) * qn).sum(axis=-1, keepdims=True)
            rows, grad, scale = f.sum(axis=-1), (d - inner) / s, (np.abs(d) + inner_abs) / s
        else:
            f, d = _probs_terms(zf, w, g, v)
            rows, grad, scale = f.sum(axis=-1), d, np.abs(d)
    rows = np.where(bad, np.nan, rows)
    grad = np.where(bad[..., None], np.nan, grad)
    scale = np.where(bad[..., None], np.nan, scale)
    return rows, grad, scale


# ----------------------------------------------------------------------------- arrays


def evaluate(v: Variant, inputs: Any, targets: Any) -> NpResult:
    """Evaluate the variant on whole arrays (same conventions as ``mp.evaluate``)."""
    x = np.asarray(inputs, dtype=np.float64)
    if v.activation == "sigmoid":
        t = np.asarray(targets, dtype=np.float64)
        if t.shape != x.shape:
            raise SpecError(f"targets have shape {t.shape} but inputs have shape {x.shape}")
        if np.any((t < 0) | (t > 1)):
            raise SpecError("targets must lie in [0, 1]")
        npos = int(np.count_nonzero(t == 1))
        ls = v.label_smoothing
        ts = t * (1.0 - ls) + 0.5 * ls if ls else t
        fn = sigmoid_logits if v.input_kind == "logits" else sigmoid_probs
        losses, grad, scale = fn(x, ts, v)
    else:
        if x.ndim < 1:
            raise SpecError("softmax inputs need a class axis")
        c = x.shape[-1]
        tarr = np.asarray(targets)
        if tarr.shape == x.shape[:-1]:
            if tarr.size and tarr.dtype.kind not in "iu":
                raise SpecError("softmax class-index targets must be integers")
            if tarr.size and (tarr.min() < 0 or tarr.max() >= c):
                raise SpecError(f"class index out of range [0, {c})")
            t = np.zeros(x.shape)
            np.put_along_axis(t, tarr[..., None].astype(np.intp), 1.0, axis=-1)
        elif tarr.shape == x.shape:
            t = tarr.astype(np.float64)
        else:
            raise SpecError(f"targets of shape {tarr.shape} fit neither class indices {x.shape[:-1]} nor {x.shape}")
        ls = v.label_smoothing
        ts = t * (1.0 - ls) + ls / c if ls else t
        losses, grad, scale = softmax_rows(x, ts, v)
        npos = 0
    return _reduce(v, losses, grad, scale, npos)


def _reduce(v: Variant, losses: np.ndarray, grad: np.ndarray, scale: np.ndarray, npos: int) -> NpResult:
    if v.reduction == "none":
        return NpResult(losses, None, grad, scale)
    total = float(np.sum(losses)) if losses.size else 0.0
    if v.reduction == "sum":
        return NpResult(losses, total, grad, scale)
    n = losses.size if v.reduction == "mean" else max(1, npos)
    if n == 0:
        return NpResult(losses, float("nan"), grad, scale)
    return NpResult(losses, total / n, grad / n, scale / n)
