"""The element-wise sigmoid focal loss of ``focalspec.kernels.torch_loss``: value and closed-form
gradient for every convention (canonical, geometric, margin, two_term; logits or probabilities;
clipping; label smoothing), and the ``autograd.Function`` that carries them.

Split from torch_loss.py (which keeps the public API, the argument checks and the softmax form)
because the sigmoid forms alone are a module's worth; see torch_loss.py for the numerics.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F

from focalspec.kernels.torch_exact_ops import (
    _clip,
    _div0,
    _expm1,
    _log1p_unit,
    _mul0,
    _pow,
    _round_host,
    _split_const,
    _two_prod,
    _two_sum,
    closed_form_function,
    isinf,
    isnan,
)

Tensor = torch.Tensor


# ----------------------------------------------------------------------------- sigmoid

_SigmoidCfg = tuple  # (gamma, alpha, input_kind, soft_target, clip_eps, label_smoothing, finite)


def _smoothed(t0: Tensor, ls: float) -> tuple[Tensor, Tensor]:
    """(t, 1 - t) after binary label smoothing, the complement computed without cancellation."""
    if not ls:
        return t0, 1 - t0
    return t0 * (1 - ls) + ls / 2, (1 - t0) * (1 - ls) + ls / 2


def _sigmoid_from_probs(
    p: Tensor,
    q: Tensor,
    logp: Tensor,
    logq: Tensor,
    t: Tensor,
    tn: Tensor,
    gamma: float,
    clip_eps: float | None,
    need_grad: bool,
) -> tuple[Tensor, Tensor | None]:
    """Unweighted loss and d/dp from a probability and its accurate complement q = 1 - p."""
    inside = None
    if clip_eps is not None:
        p, q, logp, logq, inside = _clip(p, q, logp, logq, clip_eps)
    m = t * q + tn * p  # 1 - p_t
    ce = _mul0(t, -logp) + _mul0(tn, -logq)
    mg = _pow(m, gamma)
    value = mg * ce
    if not need_grad:
        return value, None
    dce = _div0(tn, q) - _div0(t, p)
    grad = mg * dce
    if gamma != 0:
        grad = grad + gamma * mg * torch.where(m == 0, 0.0, ce / m) * (tn - t)
    grad = torch.where((p == 0) & (t > 0), -math.inf, grad)
    grad = torch.where((q == 0) & (tn > 0), math.inf, grad)
    if inside is not None:
        grad = torch.where(inside, grad, 0.0)
    return value, grad


def _margin_dw(x: Tensor, t0: Tensor, ls: float) -> tuple[Tensor, Tensor, Tensor]:
    """(2t - 1) and y = x (2t - 1) of the margin form, y as a double word (yh, yl)."""
    mh, ml = _two_sum(2 * t0, torch.full_like(t0, -1.0))
    if ls:
        c_hi, c_lo = _split_const(1 - Fraction(ls), x.dtype)
        ph, e = _two_prod(mh, torch.full_like(mh, c_hi))
        mh, ml = ph, e + mh * c_lo + ml * c_hi
    yh, yl = _two_prod(x, mh)
    return mh, yh, yl + x * ml


def _sigmoid_logits_unweighted(
    x: Tensor, t0: Tensor, t: Tensor, tn: Tensor, gamma: float, soft_target: str, ls: float, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Unweighted canonical / geometric / margin loss and d/dx for finite x."""
    s_pos, s_neg = torch.sigmoid(x), torch.sigmoid(-x)  # p, 1 - p
    sp_pos, sp_neg = -F.logsigmoid(-x), -F.logsigmoid(x)  # -log(1 - p), -log p
    ce = t * sp_neg + tn * sp_pos  # finite x here: infinite ones are replaced by their limits
    dce = tn * s_pos - t * s_neg if need_grad else None
    if soft_target == "canonical":
        mg = _pow(t * s_neg + tn * s_pos, gamma)
        if not need_grad:
            return mg * ce, None
        grad = mg * dce
        if gamma != 0:
            # r = sigmoid(x) sigmoid(-x) / (1 - p_t), exact for hard targets
            r = torch.where(tn == 0, s_pos, torch.where(t == 0, s_neg, s_pos * s_neg / (t * s_neg + tn * s_pos)))
            grad = grad + gamma * mg * (tn - t) * torch.where(r == 0, 0.0, r * ce)
        return mg * ce, grad
    if soft_target == "geometric":
        m = -_expm1(-ce)
        mg = _pow(m, gamma)
        if not need_grad:
            return mg * ce, None
        inner = mg
        if gamma != 0:
            e = torch.exp(-ce)
            inner = inner + gamma * mg * torch.where(e == 0, 0.0, torch.where(m == 0, 1.0, ce / m) * e)
        return mg * ce, dce * inner
    # margin: 1 - p_t = sigmoid(-y), y = x (2t - 1); log of it as a double word lh + ll
    mh, yh, yl = _margin_dw(x, t0, ls)
    unscale: Tensor | float = 1.0
    if gamma == 0:
        mg = torch.ones_like(x)
    else:
        lh = -torch.clamp(yh, min=0)
        ll = F.logsigmoid(yh.abs()) - yl * torch.sigmoid(yh)  # -log1p(exp(-|yh|)) - yl sig(yh)
        g_hi, g_lo = _split_const(gamma, x.dtype)
        ph, pl = _two_prod(lh, torch.full_like(lh, g_hi))
        # (1 - p_t)^g can be subnormal while the loss, times a large CE, is not: where it is that
        # small, compute it times e^s (ph + s is exact) and take e^-s off the product at the end
        s = 128.0 if x.dtype == torch.float64 else 64.0
        low = ph < -s
        mg = torch.exp(torch.where(low, ph + s, ph)) * torch.exp(pl + g_hi * ll + g_lo * (lh + ll))
        unscale = torch.where(low, torch.full_like(ph, _round_host(math.exp(-s), x.dtype)), 1.0)
    if not need_grad:
        return (mg * ce) * unscale, None
    sy, syn = torch.sigmoid(yh), torch.sigmoid(-yh)
    sy = sy + yl * sy * syn
    return (mg * ce) * unscale, (mg * (dce - gamma * mh * sy * ce)) * unscale


def _mix(a: Tensor, b: Tensor, t: Tensor, tn: Tensor | None, exact_tn: bool) -> Tensor:
    """tn a + t b in one pass.  ``torch.lerp`` forms it as a + t (b - a) for t < 1/2 and
    b - (1 - t)(b - a) otherwise, where 1 - t is exact (Sterbenz): the same as the two
    products whenever tn = 1 - t exactly (no label smoothing); with smoothing tn is not
    1 - fl(t), so the products are kept."""
    if exact_tn or tn is None:
        return torch.lerp(a, b, t)
    return torch.addcmul(tn * a, t, b)


def _canonical_parts(x: Tensor, compiled: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(p, 1 - p, -log p, -log(1 - p)) of logits x, each to a few ulp.

    -log p = log1p(e) + max(-x, 0) and -log(1 - p) = log1p(e) + max(x, 0) share one
    e = exp(-|x|) (two non-negative terms: no cancellation); p and 1 - p are two sigmoids
    (1 / (1 + e) and e / (1 + e) from the same e would save an exp but cost up to 3 u in
    (1 - p_t)**gamma, measured by the conformance suite; compiled, sigma(-|x|) and its
    complement 1 - sigma(-|x|) saved 1 % of the time and cost 0.18 u in float32).  Eager, where
    every operation is a pass over memory, the work is done in place on fresh buffers; compiled,
    it fuses."""
    if compiled:
        log1pe = _log1p_unit(torch.exp(-x.abs()), inplace=False)
        return torch.sigmoid(x), torch.sigmoid(-x), log1pe + torch.clamp(-x, min=0), log1pe + torch.clamp(x, min=0)
    nx = -x
    log1pe = _log1p_unit(torch.minimum(x, nx).exp_(), inplace=True)  # -|x| in one pass
    nlogp = torch.clamp(nx, min=0).add_(log1pe)
    return torch.sigmoid(x), nx.sigmoid_(), nlogp, torch.clamp(x, min=0).add_(log1pe)


def _canonical_fused(
    p: Tensor, q: Tensor, nlogp: Tensor, nlogq: Tensor, t: Tensor, tn: Tensor, gamma: float, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """The compiled form: Inductor fuses it into one loop, so its selects and products cost
    little, and it keeps the fewest roundings: the ratio r = p q / (1 - p_t), exactly p or
    1 - p at hard targets, and (1 - p_t)**gamma factored out of the gradient."""
    m = t * q + tn * p
    ce = t * nlogp + tn * nlogq
    mg = _pow(m, gamma)
    if not need_grad:
        return mg * ce, None
    dce = tn * p - t * q
    if gamma == 0:
        return mg * ce, dce
    r = torch.where(tn == 0, p, torch.where(t == 0, q, p * q / m))
    return mg * ce, mg * dce + gamma * mg * (tn - t) * torch.where(r == 0, 0.0, r * ce)


def _canonical_unweighted(
    x: Tensor, t: Tensor, tn: Tensor | None, gamma: float, exact_tn: bool, need_grad: bool, compiled: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Unweighted canonical loss (1 - p_t)^g CE and d/dx for finite x, in the fewest passes, and
    a spare buffer of x's shape that the caller may overwrite (eager, no gradient), or None.

    1 - p_t = tn p + t q and CE = tn (-log(1 - p)) + t (-log p) (``_mix``); d CE/dx =
    tn p - t q; d(1 - p_t)/dx = p q (tn - t).  For gamma = 2 the gradient is
    (1 - p_t) ((1 - p_t) dCE + 2 p q (tn - t) CE): no division.  For other gamma,
    p q / (1 - p_t) is taken where 1 - p_t > 0 (where it is 0, so is CE, and the term)."""
    p, q, nlogp, nlogq = _canonical_parts(x, compiled)
    if compiled:
        return (*_canonical_fused(p, q, nlogp, nlogq, t, 1 - t if tn is None else tn, gamma, need_grad), None)
    spare = None
    if not need_grad and (exact_tn or tn is None):  # p and -log(1 - p) are not needed again
        m, ce = p.lerp_(q, t), nlogq.lerp_(nlogp, t)  # fresh buffers reused: fewer page faults
        spare = q
    else:
        m = _mix(p, q, t, tn, exact_tn)
        ce = _mix(nlogq, nlogp, t, tn, exact_tn)
    if gamma == 0:
        value = ce
    elif gamma == 2:
        value = m.square_() if not need_grad else m * m
        value.mul_(ce)
    else:
        mg = _pow(m, gamma)
        value = mg * ce
    if not need_grad:
        return value, None, spare
    # d CE/dx = tn p - t q; without smoothing (1 - p_t) - 2 t q, one pass: exact at t = 0 and
    # t = 1 (q - 2q = -q), and elsewhere rounded on the scale of tn p + t q, as the two products are
    dce = torch.addcmul(m, t, q, value=-2.0) if exact_tn or tn is None else torch.addcmul(tn * p, t, q, value=-1.0)
    if gamma == 0:
        return value, dce, None
    w = torch.rsub(t, 1.0, alpha=2.0) if exact_tn or tn is None else tn - t  # 1 - 2t: exact or rounded once
    pqw = p * q
    pqw.mul_(w)
    if gamma == 2:
        grad = m * dce
        grad.addcmul_(pqw, ce, value=2.0)
        grad.mul_(m)
        return value, grad, None
    r = torch.where(m == 0, 0.0, pqw / m * ce)  # p q / (1 - p_t) first: p q CE alone can underflow
    grad = torch.add(dce, r, alpha=gamma)
    grad.mul_(mg)
    return value, grad, None


def _sigmoid_logits_limits(
    x: Tensor, t: Tensor, tn: Tensor, mh: Tensor | None, gamma: float, soft_target: str
) -> tuple[Tensor, Tensor]:
    """Unweighted (value, d/dx) at x = +-inf (SPEC.md §1.4); u is the target mass on the wrong side."""
    pos = x > 0
    u = torch.where(pos, tn, t)
    sgn = torch.where(pos, 1.0, -1.0)
    inf = torch.where(u > 0, math.inf, 0.0)
    if soft_target == "canonical":
        return inf, sgn * torch.pow(u, gamma + 1)
    if soft_target == "geometric":
        return inf, sgn * u
    assert mh is not None
    mm = torch.where(pos, mh, -mh)  # 2t - 1 of the mirrored problem
    grows = (mm < 0) | (gamma == 0)
    half = mm == 0
    value = torch.where(grows | half, inf, 0.0)
    grad = torch.where(grows, u, torch.where(half, 0.5**gamma * u, 0.0))
    return value, sgn * grad


def _sigmoid_two_term(
    x: Tensor, t: Tensor, tn: Tensor, gamma: float, alpha: float | None, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """kornia's per-component form, weighted: alpha t sig(-x)^g softplus(-x) + (1-alpha)(1-t) ..."""
    ap, an = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    wp, wn = ap * t, an * tn
    s_pos, s_neg = torch.sigmoid(x), torch.sigmoid(-x)
    sp_pos, sp_neg = -F.logsigmoid(-x), -F.logsigmoid(x)
    gp, gn = _pow(s_neg, gamma), _pow(s_pos, gamma)
    value = _mul0(wp, gp * sp_neg) + _mul0(wn, gn * sp_pos)
    grad = None
    if need_grad:
        grad = _mul0(wn, gn * (gamma * s_neg * sp_pos + s_pos)) - _mul0(wp, gp * (gamma * s_pos * sp_neg + s_neg))
    at_inf = isinf(x)
    w_lim = torch.where(x > 0, wn, wp)
    value = torch.where(at_inf, torch.where(w_lim > 0, math.inf, 0.0), value)
    if grad is not None:
        grad = torch.where(at_inf, torch.where(x > 0, w_lim, -w_lim), grad)
    return value, grad


def _alpha_weight(t: Tensor, alpha: float, out: Tensor | None = None) -> Tensor:
    """alpha t + (1 - alpha)(1 - t) for t in [0, 1] with 1 - t exact (no label smoothing).

    Where 1 - alpha and 2 alpha - 1 are exact and 2 alpha - 1 is 0 or a power of two (alpha =
    0.25, 0.5, 0.75, 0.375, ...: the usual ones), (1 - alpha) + (2 alpha - 1) t has an exact
    product and so one rounding, in two passes.  Otherwise the folded form could cancel (small
    alpha), and the two non-negative terms are kept (three passes, 1 - t exact or rounded once).
    ``out``: a spare buffer of t's shape and dtype to write into (no fresh memory to fault in)."""
    k, c = 2.0 * alpha - 1.0, 1.0 - alpha
    dt = t.dtype
    if (k == 0 or abs(math.frexp(k)[0]) == 0.5) and _round_host(k, dt) == k and _round_host(c, dt) == c:
        return torch.mul(t, k, out=out).add_(c) if out is not None else torch.mul(t, k).add_(c)
    a = torch.rsub(t, 1.0) if out is None else torch.sub(1.0, t, out=out)
    return a.mul_(c).add_(t, alpha=alpha)


def _sigmoid_canonical(
    x: Tensor, t0: Tensor, gamma: float, alpha: float | None, ls: float, finite: bool, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """The canonical form on logits without clipping (the common case), weighted.

    ``finite``: the caller saw (one host synchronisation, eager only) that x and the targets
    hold no inf or NaN, so the passes that substitute the limits at x = +-inf and propagate
    NaN are skipped.  Otherwise they run (under ``torch.compile`` they fuse and cost little)."""
    exact_tn = not ls
    t, tn = (t0, None) if exact_tn else _smoothed(t0, ls)
    compiled = torch.compiler.is_compiling()
    value, grad, spare = _canonical_unweighted(x, t, tn, gamma, exact_tn, need_grad, compiled)
    a = None
    if alpha is not None:
        if exact_tn:
            a = _alpha_weight(t, alpha, spare)
        else:
            assert tn is not None
            a = alpha * t + (1.0 - alpha) * tn
    if finite:
        if a is not None:
            value.mul_(a)
            if grad is not None:
                grad.mul_(a)
        return value, grad
    if tn is None:
        tn = 1 - t
    v_lim, g_lim = _sigmoid_logits_limits(x, t, tn, None, gamma, "canonical")
    at_inf = isinf(x)
    value = torch.where(at_inf, v_lim, value)
    grad = None if grad is None else torch.where(at_inf, g_lim, grad)
    return _weighted_with_nan(value, grad, a, x, t0)


def _weighted_with_nan(
    value: Tensor, grad: Tensor | None, a: Tensor | None, x: Tensor, t0: Tensor
) -> tuple[Tensor, Tensor | None]:
    """alpha_t times value and gradient (0 times the limit inf is 0), then NaN wherever the
    logit or the target is NaN."""
    if a is not None:
        value = _mul0(a, value)
        grad = None if grad is None else _mul0(a, grad)
    bad = isnan(x) | isnan(t0)
    value = torch.where(bad, math.nan, value)
    grad = None if grad is None else torch.where(bad, math.nan, grad)
    return value, grad


def _sigmoid_elementwise(x: Tensor, t0: Tensor, cfg: _SigmoidCfg, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    gamma, alpha, input_kind, soft_target, clip_eps, ls, finite = cfg
    if soft_target == "canonical" and input_kind == "logits" and clip_eps is None:
        return _sigmoid_canonical(x, t0, gamma, alpha, ls, finite, need_grad)
    t, tn = _smoothed(t0, ls)
    if soft_target == "two_term":
        value, grad = _sigmoid_two_term(x, t, tn, gamma, alpha, need_grad)
    else:
        if input_kind == "probs":
            value, grad = _sigmoid_from_probs(
                x, 1 - x, torch.log(x), torch.log1p(-x), t, tn, gamma, clip_eps, need_grad
            )
        elif clip_eps is not None:
            s_pos, s_neg = torch.sigmoid(x), torch.sigmoid(-x)
            value, grad = _sigmoid_from_probs(
                s_pos, s_neg, F.logsigmoid(x), F.logsigmoid(-x), t, tn, gamma, clip_eps, need_grad
            )
            grad = None if grad is None else grad * (s_pos * s_neg)
        else:
            value, grad = _sigmoid_logits_unweighted(x, t0, t, tn, gamma, soft_target, ls, need_grad)
            mh = (2 * t0 - 1) * (1 - ls) if soft_target == "margin" else None  # its sign and zeros are exact
            v_lim, g_lim = _sigmoid_logits_limits(x, t, tn, mh, gamma, soft_target)
            at_inf = isinf(x)
            value = torch.where(at_inf, v_lim, value)
            grad = None if grad is None else torch.where(at_inf, g_lim, grad)
        if alpha is not None:
            return _weighted_with_nan(value, grad, alpha * t + (1.0 - alpha) * tn, x, t0)
    return _weighted_with_nan(value, grad, None, x, t0)


# element-wise sigmoid focal loss; the closed-form gradient is computed with the value
_SigmoidFocal = closed_form_function(_sigmoid_elementwise, per_row=False)
