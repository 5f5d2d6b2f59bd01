"""The arbiter: every variant of SPEC.md evaluated in mpmath at a chosen precision.

Element-wise formulas follow SPEC.md §1-§8 literally, value and closed-form gradient
together, plus a *gradient scale* (the sum of the magnitudes of the terms that the
gradient adds up) which the tolerance policy uses as the denominator of the error where
the gradient itself crosses zero.  Infinite inputs take the limits stated in SPEC.md.
Certification (``certify``) evaluates at two precisions and keeps the digits they share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from focalspec.spec.variant import SpecError, Variant

mp = mpmath.mp
MPF = Any  # mpmath.mpf; mpmath ships no type stubs

DEFAULT_DPS = 60


@dataclass
class MpResult:
    """Reference output: per-element (or per-row) losses, the reduced loss, and the
    gradient of the *reported* loss (the reduced one, or each element's own) with
    respect to every input element, with its scale.  Arrays hold mpf objects."""

    losses: np.ndarray  # shape of the inputs (sigmoid) or of the rows (softmax)
    value: Any  # reduced loss (mpf) or None for reduction 'none'
    grad: np.ndarray  # shape of the inputs
    grad_scale: np.ndarray


# ----------------------------------------------------------------------------- helpers


def _mul0(c: MPF, v: MPF) -> MPF:
    """c * v with 0 * anything = 0 (the x log x -> 0 convention of the spec)."""
    return mp.zero if c == 0 else c * v


def _sig(x: MPF) -> MPF:
    return 1 / (1 + mp.exp(-x))


def _softplus(x: MPF) -> MPF:
    return mp.log1p(mp.exp(x))


def _pow(m: MPF, g: MPF) -> MPF:
    return mp.one if g == 0 else m**g


def smooth_binary(t: MPF, ls: MPF) -> MPF:
    """Keras label smoothing for binary targets: t (1 - ls) + ls / 2."""
    return t if ls == 0 else t * (1 - ls) + ls / 2


def alpha_weight(t: MPF, alpha: float | None) -> MPF:
    """alpha_t = alpha t + (1 - alpha)(1 - t); 1 when balancing is disabled."""
    if alpha is None:
        return mp.one
    a = mp.mpf(alpha)
    return a * t + (1 - a) * (1 - t)


def clip_interval(v: Variant) -> tuple[MPF, MPF]:
    """[eps, 1 - eps] exactly, or [eps, clip_upper] when the variant states the rounded bound."""
    lo = mp.mpf(v.clip_eps)
    return lo, (mp.mpf(v.clip_upper) if v.clip_upper is not None else 1 - lo)


def clipped(p: MPF, v: Variant) -> tuple[MPF, MPF]:
    """(p clipped to the variant's interval, 1 inside it else 0: the clip's gradient factor)."""
    if v.clip_eps is None:
        return p, mp.one
    lo, hi = clip_interval(v)
    return min(max(p, lo), hi), (mp.zero if p < lo or p > hi else mp.one)


# ----------------------------------------------------------------------------- sigmoid


def _unweighted_plus_inf(v: Variant, t: MPF, g: MPF) -> tuple[MPF, MPF]:
    """Limit of (value, d/dx) of the unweighted loss as x -> +inf (SPEC.md §1.4)."""
    if t == 1:
        return mp.zero, mp.zero
    if v.soft_target == "canonical":
        return mp.inf, (1 - t) ** (g + 1)
    if v.soft_target == "geometric":
        return mp.inf, 1 - t
    # margin: 1 - p_t = sigmoid(-x m), m = 2t - 1
    m = 2 * t - 1
    if m < 0 or g == 0:
        return mp.inf, 1 - t
    if m == 0:
        return mp.inf, _pow(mp.mpf(0.5), g) * (1 - t)
    return mp.zero, mp.zero


def _sigmoid_logits_inf(x: MPF, t: MPF, v: Variant) -> tuple[MPF, MPF, MPF]:
    g = mp.mpf(v.gamma)
    if v.soft_target == "two_term":
        ap, an = (mp.one, mp.one) if v.alpha is None else (mp.mpf(v.alpha), 1 - mp.mpf(v.alpha))
        if x > 0:
            w = _mul0(an, 1 - t)
            val, grad = (mp.inf if w > 0 else mp.zero), w
        else:
            w = _mul0(ap, t)
            val, grad = (mp.inf if w > 0 else mp.zero), -w
        return val, grad, abs(grad)
    a = alpha_weight(t, v.alpha)
    if a == 0:
        return mp.zero, mp.zero, mp.zero
    if x > 0:
        val, grad = _unweighted_plus_inf(v, t, g)
    else:  # U(-x, 1-t) = U(x, t): mirror the +inf limit, gradient changes sign
        val, grad = _unweighted_plus_inf(v, 1 - t, g)
        grad = -grad
    return a * val, a * grad, a * abs(grad)


def sigmoid_logits_element(x: MPF, t: MPF, v: Variant) -> tuple[MPF, MPF, MPF]:
    """(loss, dloss/dx, gradient scale) for one logit x and (smoothed) target t."""
    if mp.isnan(x):
        return mp.nan, mp.nan, mp.nan
    if v.clip_eps is not None and v.clip_scope == "ce":
        return _sigmoid_logits_clip_ce(x, t, v)
    if v.clip_eps is not None:
        p = _sig(x) if not mp.isinf(x) else (mp.one if x > 0 else mp.zero)
        val, dp, scale = sigmoid_probs_element(p, t, v)
        dpdx = p * (1 - p)
        return val, dp * dpdx, scale * dpdx
    if mp.isinf(x):
        return _sigmoid_logits_inf(x, t, v)
    g = mp.mpf(v.gamma)
    s_pos, s_neg = _sig(x), _sig(-x)  # p and 1 - p
    sp_pos, sp_neg = _softplus(x), _softplus(-x)  # -log(1-p), -log p
    ce = _mul0(t, sp_neg) + _mul0(1 - t, sp_pos)
    dce = _mul0(1 - t, s_pos) - _mul0(t, s_neg)  # p - t, without cancellation at hard t
    dce_scale = _mul0(1 - t, s_pos) + _mul0(t, s_neg)
    if v.soft_target == "two_term":
        ap, an = (mp.one, mp.one) if v.alpha is None else (mp.mpf(v.alpha), 1 - mp.mpf(v.alpha))
        pos = _mul0(ap * t, _pow(s_neg, g) * sp_neg)
        neg = _mul0(an * (1 - t), _pow(s_pos, g) * sp_pos)
        dpos = -_mul0(ap * t, _pow(s_neg, g) * (g * s_pos * sp_neg + s_neg))
        dneg = _mul0(an * (1 - t), _pow(s_pos, g) * (g * s_neg * sp_pos + s_pos))
        return pos + neg, dpos + dneg, abs(dpos) + abs(dneg)
    a = alpha_weight(t, v.alpha)
    if v.soft_target == "canonical":
        m = _mul0(t, s_neg) + _mul0(1 - t, s_pos)  # 1 - p_t
        mg = _pow(m, g)
        r = s_pos * s_neg / m  # d(1-p_t)/dx / (1-2t) / (1-p_t), bounded by 1
        t1 = g * mg * (1 - 2 * t) * r * ce
        return a * mg * ce, a * (t1 + mg * dce), a * (abs(t1) + mg * dce_scale)
    if v.soft_target == "geometric":
        m = -mp.expm1(-ce)  # 1 - exp(-BCE)
        mg = _pow(m, g)
        inner = (g * mg / m * mp.exp(-ce) * ce if g != 0 else mp.zero) + mg
        return a * mg * ce, a * dce * inner, a * dce_scale * inner
    # margin (MONAI): 1 - p_t = sigmoid(-x (2t - 1))
    mm = 2 * t - 1
    m = _sig(-x * mm)
    mg = _pow(m, g)
    t2 = g * mm * _sig(x * mm) * ce
    return a * mg * ce, a * mg * (dce - t2), a * mg * (dce_scale + abs(t2))


def _clip_complements(v: Variant) -> tuple[MPF, MPF]:
    """(lo, 1 - hi) exactly: 1 - hi is eps itself unless the variant states a rounded bound."""
    lo, hi = clip_interval(v)
    return lo, (lo if v.clip_upper is None else 1 - hi)


def _factor_slope(m: MPF, g: MPF) -> MPF:
    """d(m^g)/dm, with its one-sided limit at m = 0 (infinite for 0 < g < 1)."""
    if m != 0:
        return g * m ** (g - 1) if g != 0 else mp.zero
    return mp.zero if (g == 0 or g > 1) else (mp.one if g == 1 else mp.inf)


def _sigmoid_logits_clip_ce(x: MPF, t: MPF, v: Variant) -> tuple[MPF, MPF, MPF]:
    """Keras' binary form (clip_scope='ce'): BCE of clip(sigma(x)), factor of the unclipped p.

    Evaluated in x: inside the clip the BCE is the softplus form, beyond it the constant
    BCE of the bound (slope 0); the factor's slope uses sigma(x) sigma(-x) / (1 - p_t)."""
    g = mp.mpf(v.gamma)
    a = alpha_weight(t, v.alpha)
    if a == 0:
        return mp.zero, mp.zero, mp.zero
    lo, hi_c = _clip_complements(v)
    x_lo, x_hi = mp.log(lo) - mp.log1p(-lo), mp.log1p(-hi_c) - mp.log(hi_c)  # logit of each bound
    if mp.isinf(x):
        s_pos, s_neg = (mp.one, mp.zero) if x > 0 else (mp.zero, mp.one)
    else:
        s_pos, s_neg = _sig(x), _sig(-x)
    if x > x_hi:
        ce, dce, dce_scale = _mul0(t, -mp.log1p(-hi_c)) + _mul0(1 - t, -mp.log(hi_c)), mp.zero, mp.zero
    elif x < x_lo:
        ce, dce, dce_scale = _mul0(t, -mp.log(lo)) + _mul0(1 - t, -mp.log1p(-lo)), mp.zero, mp.zero
    else:
        ce = _mul0(t, _softplus(-x)) + _mul0(1 - t, _softplus(x))
        dce, dce_scale = _mul0(1 - t, s_pos) - _mul0(t, s_neg), _mul0(1 - t, s_pos) + _mul0(t, s_neg)
    m = _mul0(t, s_neg) + _mul0(1 - t, s_pos)  # 1 - p_t, unclipped
    mg = _pow(m, g)
    r = s_pos if t == 1 else (s_neg if t == 0 else s_pos * s_neg / m)  # |d(1-p_t)/dx| / (1-p_t)
    t1 = g * mg * (1 - 2 * t) * r * ce
    return a * mg * ce, a * (t1 + mg * dce), a * (abs(t1) + mg * dce_scale)


def _sigmoid_probs_clip_ce(p: MPF, t: MPF, v: Variant) -> tuple[MPF, MPF, MPF]:
    """Keras' binary form on probabilities: BCE of clip(p), factor (1 - p_t)^g of the unclipped p."""
    g = mp.mpf(v.gamma)
    a = alpha_weight(t, v.alpha)
    if a == 0:
        return mp.zero, mp.zero, mp.zero
    lo, hi = clip_interval(v)
    inside = mp.one if lo <= p <= hi else mp.zero
    pc = min(max(p, lo), hi)
    ce = _mul0(t, -mp.log(pc)) + _mul0(1 - t, -mp.log1p(-pc))
    d_neg, d_pos = _mul0(1 - t, 1 / (1 - pc)), _mul0(t, 1 / pc)
    m = _mul0(t, 1 - p) + _mul0(1 - t, p)
    mg = _pow(m, g)
    t1 = _factor_slope(m, g) * (1 - 2 * t) * ce  # ce > 0: the clipped BCE is never 0
    return a * mg * ce, a * (t1 + mg * (d_neg - d_pos) * inside), a * (abs(t1) + mg * (d_neg + d_pos) * inside)


def _two_term_probs(p: MPF, t: MPF, v: Variant) -> tuple[MPF, MPF, MPF]:
    """-ap t (1-p)^g log p - an (1-t) p^g log(1-p) and d/dp (SPEC §2.2 two_term on probabilities).

    The factor slopes are written as g (1-p)^g * log(p)/(1-p) and g p^g * log1p(-p)/p, whose
    ratios tend to -1 at p = 1 and p = 0, so the endpoints need no special case."""
    g = mp.mpf(v.gamma)
    ap, an = (mp.one, mp.one) if v.alpha is None else (mp.mpf(v.alpha), 1 - mp.mpf(v.alpha))
    wp, wn = ap * t, an * (1 - t)
    q = 1 - p
    val, dpos, dneg = mp.zero, mp.zero, mp.zero
    if wp != 0:
        if p == 0:
            val, dpos = mp.inf, -mp.inf
        else:
            qg = _pow(q, g)
            lp_q = -mp.one if q == 0 else mp.log(p) / q
            val += wp * qg * (-mp.log(p)) if q != 0 else mp.zero
            dpos = wp * (g * qg * lp_q - qg / p)
    if wn != 0:
        if q == 0:
            val, dneg = mp.inf, mp.inf
        else:
            pg = _pow(p, g)
            lq_p = -mp.one if p == 0 else mp.log1p(-p) / p
            val += wn * pg * (-mp.log1p(-p)) if p != 0 else mp.zero
            dneg = wn * (-g * pg * lq_p + pg / q)
    return val, dpos + dneg, abs(dpos) + abs(dneg)


def sigmoid_probs_element(p: MPF, t: MPF, v: Variant) -> tuple[MPF, MPF, MPF]:
    """(loss, dloss/dp, gradient scale) for one probability p; clipping applied here."""
    if mp.isnan(p):
        return mp.nan, mp.nan, mp.nan
    if not 0 <= p <= 1:
        raise SpecError(f"probability input {mp.nstr(p, 8)} is outside [0, 1]")
    if v.clip_eps is not None and v.clip_scope == "ce":
        return _sigmoid_probs_clip_ce(p, t, v)
    if v.soft_target == "two_term":
        return _two_term_probs(p, t, v)
    p, inside = clipped(p, v)
    g = mp.mpf(v.gamma)
    a = alpha_weight(t, v.alpha)
    if a == 0:
        return mp.zero, mp.zero, mp.zero
    m = _mul0(t, 1 - p) + _mul0(1 - t, p)  # 1 - p_t
    if m == 0:  # p = t at a hard target: loss 0, one-sided derivative limit
        d = (-a if t == 1 else a) if g == 0 else mp.zero
        return mp.zero, d * inside, abs(d) * inside
    ce = _mul0(t, -mp.log(p)) + _mul0(1 - t, -mp.log1p(-p))
    mg = _pow(m, g)
    if (p == 0 and t > 0) or (p == 1 and t < 1):
        d = -mp.inf if p == 0 else mp.inf
        return a * mg * ce, d * inside, mp.inf * inside
    dce = _mul0(1 - t, 1 / (1 - p)) - _mul0(t, 1 / p)
    dce_scale = _mul0(1 - t, 1 / (1 - p)) + _mul0(t, 1 / p)
    t1 = g * mg / m * (1 - 2 * t) * ce
    return a * mg * ce, a * (t1 + mg * dce) * inside, a * (abs(t1) + mg * dce_scale) * inside


# ----------------------------------------------------------------------------- softmax


def _softmax_combine(h: list[MPF], p: list[MPF], q: list[MPF]) -> tuple[list[MPF], list[MPF]]:
    """d/dz_k of sum_j F_j(p_j), given h_j = dF_j/dlog p_j: h_k q_k - p_k sum_{j!=k} h_j."""
    c = len(p)
    grads, scales = [], []
    for k in range(c):
        others = [h[j] for j in range(c) if j != k]
        grads.append(h[k] * q[k] - p[k] * mp.fsum(others))
        scales.append(abs(h[k]) * q[k] + p[k] * mp.fsum(abs(o) for o in others))
    return grads, scales


def softmax_row(z: Sequence[MPF], t: Sequence[MPF], v: Variant) -> tuple[MPF, list[MPF], list[MPF]]:
    """(loss, gradient, gradient scale) for one row of C logits (or probabilities) and a
    target distribution t (one-hot for a class index; already label-smoothed)."""
    c = len(z)
    if any(mp.isnan(zj) for zj in z):
        return mp.nan, [mp.nan] * c, [mp.nan] * c
    g = mp.mpf(v.gamma)
    alphas = v.alpha_for_classes(c)
    w = [t[j] if alphas is None else mp.mpf(alphas[j]) * t[j] for j in range(c)]
    if v.input_kind == "logits":
        if any(mp.isinf(zj) for zj in z):
            raise SpecError("softmax focal loss is specified for finite logits only")
        jmax = max(range(c), key=lambda j: z[j])
        zmax = z[jmax]
        e = [mp.exp(zj - zmax) for zj in z]
        tot = mp.fsum(e)
        p = [ej / tot for ej in e]
        # log(tot) = log1p(sum of the others): tot - 1 may be far below the working precision
        log_tot = mp.log1p(mp.fsum(e[j] for j in range(c) if j != jmax))
        logp = [zj - zmax - log_tot for zj in z]
        q = [mp.fsum(e[i] for i in range(c) if i != j) / tot for j in range(c)]
        if v.clip_eps is None:
            # h_j = dF_j / dlog p_j with F_j = -w_j q_j^g log p_j
            h = []
            for j in range(c):
                if w[j] == 0:
                    h.append(mp.zero)
                    continue
                if q[j] == 0:  # a single class: p_j = 1 exactly, loss 0, d/dlog p_j the limit
                    h.append(-w[j] if g == 0 else mp.zero)
                    continue
                qg = _pow(q[j], g)
                extra = g * p[j] * (-logp[j]) / q[j] if g != 0 else mp.zero
                h.append(-w[j] * qg * (1 + extra))
            value = mp.fsum(_mul0(w[j], _pow(q[j], g) * (-logp[j])) for j in range(c))
            grads, scales = _softmax_combine(h, p, q)
            return value, grads, scales
        value, dp, _ = _softmax_probs_terms(p, w, g, v)
        # chain through softmax: h_j = dF/dp_j * p_j
        grads, scales = _softmax_combine([dp[j] * p[j] for j in range(c)], p, q)
        return value, grads, scales
    # probability inputs
    for pj in z:
        if not 0 <= pj <= 1:
            raise SpecError(f"probability input {mp.nstr(pj, 8)} is outside [0, 1]")
    if v.renormalize:
        s = mp.fsum(z)
        if s == 0:
            raise SpecError("a probability row sums to 0 and cannot be renormalized")
        qn = [pj / s for pj in z]
        value, dp, dscale = _softmax_probs_terms(qn, w, g, v)
        inner = mp.fsum(dp[j] * qn[j] for j in range(c))
        inner_scale = mp.fsum(abs(dp[j]) * qn[j] for j in range(c))
        return value, [(dp[k] - inner) / s for k in range(c)], [(dscale[k] + inner_scale) / s for k in range(c)]
    value, dp, dscale = _softmax_probs_terms(list(z), w, g, v)
    return value, dp, dscale


def _softmax_probs_terms(p: list[MPF], w: list[MPF], g: MPF, v: Variant) -> tuple[MPF, list[MPF], list[MPF]]:
    """sum_j -w_j (1-p_j)^g log p_j and its partials in each p_j (clipping applied)."""
    value, grads = mp.zero, []
    for pj, wj in zip(p, w, strict=True):
        pj, inside = clipped(pj, v)
        if wj == 0:
            grads.append(mp.zero)
            continue
        qj = 1 - pj
        if pj == 0:
            value += mp.inf
            grads.append(-mp.inf * inside)
            continue
        value += wj * _pow(qj, g) * (-mp.log(pj))
        if qj == 0:
            grads.append((-wj if g == 0 else mp.zero) * inside)
            continue
        d = wj * (g * _pow(qj, g) / qj * mp.log(pj) if g != 0 else mp.zero) - wj * _pow(qj, g) / pj
        grads.append(d * inside)
    return value, grads, [abs(d) for d in grads]


# ----------------------------------------------------------------------------- arrays


def to_mpf_array(a: Any) -> np.ndarray:
    """numpy/float/str data -> object array of mpf (floats converted exactly)."""
    arr = np.asarray(a, dtype=object) if not isinstance(a, np.ndarray) else a
    if arr.dtype != object:
        arr = arr.astype(np.float64).astype(object) if arr.dtype.kind in "fiub" else arr.astype(object)
    out = np.empty(arr.shape, dtype=object)
    for idx, val in np.ndenumerate(arr):
        out[idx] = mp.mpf(val) if not isinstance(val, str) else mp.mpf(val.strip())
    return out


def evaluate(v: Variant, inputs: Any, targets: Any, dps: int = DEFAULT_DPS) -> MpResult:
    """Evaluate the variant on whole arrays at ``dps`` decimal digits.

    sigmoid: ``targets`` has the shape of ``inputs`` (hard 0/1 or soft in [0, 1]).
    softmax: ``inputs`` is (..., C); ``targets`` is (...) class indices or (..., C)
    distributions.
    """
    with mp.workdps(dps):
        x = to_mpf_array(inputs)
        if v.activation == "sigmoid":
            losses, grad, scale, npos = _eval_sigmoid(v, x, targets)
        else:
            losses, grad, scale, npos = _eval_softmax(v, x, targets)
        return _reduce(v, losses, grad, scale, npos)


Evaluated = tuple[np.ndarray, np.ndarray, np.ndarray, int]  # losses, gradient, its scale, #positives


def _eval_sigmoid(v: Variant, x: np.ndarray, targets: Any) -> Evaluated:
    t = to_mpf_array(targets)
    if t.shape != x.shape:
        raise SpecError(f"targets have shape {t.shape} but inputs have shape {x.shape}")
    ls = mp.mpf(v.label_smoothing)
    losses = np.empty(x.shape, dtype=object)
    grad = np.empty(x.shape, dtype=object)
    scale = np.empty(x.shape, dtype=object)
    npos = 0
    elem = sigmoid_logits_element if v.input_kind == "logits" else sigmoid_probs_element
    for idx, xi in np.ndenumerate(x):
        ti = t[idx]
        if not 0 <= ti <= 1:
            raise SpecError(f"target {mp.nstr(ti, 8)} is outside [0, 1]")
        npos += int(ti == 1)
        losses[idx], grad[idx], scale[idx] = elem(xi, smooth_binary(ti, ls), v)
    return losses, grad, scale, npos


def _eval_softmax(v: Variant, z: np.ndarray, targets: Any) -> Evaluated:
    if z.ndim < 1:
        raise SpecError("softmax inputs need a class axis")
    c = z.shape[-1]
    tarr = np.asarray(targets)
    if tarr.shape == z.shape[:-1]:  # class indices
        if tarr.size and (tarr.dtype.kind not in "iu"):
            raise SpecError("softmax class-index targets must be integers")
        if tarr.size and (tarr.min() < 0 or tarr.max() >= c):
            raise SpecError(f"class index out of range [0, {c})")
        t = np.zeros(z.shape, dtype=object)
        t[...] = mp.zero
        for idx, ci in np.ndenumerate(tarr):
            t[(*idx, int(ci))] = mp.one
    elif tarr.shape == z.shape:
        t = to_mpf_array(tarr)
    else:
        raise SpecError(f"targets of shape {tarr.shape} fit neither class indices {z.shape[:-1]} nor {z.shape}")
    ls = mp.mpf(v.label_smoothing)
    losses = np.empty(z.shape[:-1], dtype=object)
    grad = np.empty(z.shape, dtype=object)
    scale = np.empty(z.shape, dtype=object)
    for idx in np.ndindex(*z.shape[:-1]):
        row_t = [tj * (1 - ls) + ls / c if ls else tj for tj in t[idx]]
        val, gr, sc = softmax_row(list(z[idx]), row_t, v)
        losses[idx] = val
        grad[idx] = np.array([*gr, None], dtype=object)[:-1]
        scale[idx] = np.array([*sc, None], dtype=object)[:-1]
    return losses, grad, scale, 0


def _reduce(v: Variant, losses: np.ndarray, grad: np.ndarray, scale: np.ndarray, npos: int) -> MpResult:
    if v.reduction == "none":
        return MpResult(losses, None, grad, scale)
    total = mp.fsum(losses.ravel()) if losses.size else mp.zero
    if v.reduction == "sum":
        return MpResult(losses, total, grad, scale)
    n = losses.size if v.reduction == "mean" else max(1, int(npos))
    if n == 0:  # mean of nothing: 0/0 (SPEC.md §7)
        return MpResult(losses, mp.nan, grad, scale)
    factor = mp.one / n
    return MpResult(losses, total * factor, _scaled(grad, factor), _scaled(scale, factor))


def _scaled(a: np.ndarray, f: MPF) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    for idx, val in np.ndenumerate(a):
        out[idx] = val * f
    return out
