"""focalspec's own PyTorch focal loss: the specification evaluated in stable form.

This file depends on torch only; copy it into your project if you like.  It is written for
the last digit rather than for brevity, because the naive formula fails where focal loss
matters most -- at confident predictions:

* ``1 - p_t`` is never formed as ``1 - p``: it is ``t*sigmoid(-x) + (1-t)*sigmoid(x)``
  (sigmoid), the sum of the other classes (softmax), or ``1 - p`` of an exact input only.
* Logarithms come from ``logsigmoid`` / a ``log1p``-based log-softmax, never ``log(p)``
  of a rounded probability.
* Value and gradient come from one closed form inside a ``torch.autograd.Function``, so
  the gradient is finite and correct at saturation for ``0 < gamma < 1`` (autodiff of
  ``(1 - p_t)**gamma`` gives ``0 * inf = NaN`` there) and infinite logits give the limits
  of the specification (value 0 or inf, gradient the limit); NaN propagates.
* Where the specification is exponentially sensitive to an argument that a plain
  evaluation would round (the ``margin`` form ``sigmoid(-x(2t-1))``, ``z - max(z)`` in the
  softmax, a gamma that float32 cannot hold), the rounding error is carried along in
  double-word arithmetic (TwoSum / TwoProduct) so that it does not get amplified.
* float16 / bfloat16 are evaluated in float32 and rounded once at the end.
* Speed (the common canonical loss on logits): eager, every operation is a pass over memory,
  so the data check is one ``aminmax`` per tensor that also tells whether the limit and NaN
  passes are needed, -log p and -log(1 - p) share one exp/log1p, and the work is done in
  place; compiled, everything fuses into one loop per pass.  ``focalspec bench`` measures it
  against torchvision (benchmarks/SPEED.md).

It works under ``torch.compile(fullgraph=True)``; the data checks (targets in [0, 1],
probabilities in [0, 1], class indices in range) run in eager mode only, because they need
the data on the host.  Under compilation an out-of-range value gives NaN instead.
Gradients with respect to the targets are not provided (a ValueError says so).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from fractions import Fraction

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]

_FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
_INPUT_KINDS = ("logits", "probs")
_SOFT_TARGETS = ("canonical", "geometric", "margin", "two_term")
_SIGMOID_REDUCTIONS = ("none", "sum", "mean", "normalized")
_SOFTMAX_REDUCTIONS = ("none", "sum", "mean")


# ----------------------------------------------------------------------------- validation


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def _real(name: str, value: object, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    if value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi):
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo:g}, {hi:g}{right}, got {value!r}")
    return float(value)


def _check_inputs(inputs: object) -> Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"inputs must be float64, float32, float16 or bfloat16, got {inputs.dtype}")
    return inputs


def _check_targets_tensor(targets: object, inputs: Tensor) -> Tensor:
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.device != inputs.device:
        raise ValueError(f"targets are on {targets.device} but inputs are on {inputs.device}")
    if targets.requires_grad:
        raise ValueError("gradients with respect to the targets are not implemented; pass targets.detach()")
    return targets


def _eager_checks() -> bool:
    return not torch.compiler.is_compiling()


def _check_range(name: str, values: Tensor, lo: float, hi: float) -> None:
    """Raise on the first value outside [lo, hi] (NaN passes: it propagates to the loss)."""
    bad = (values < lo) | (values > hi)
    if bool(bad.any()):
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}]; found {values[bad].flatten()[0].item()!r}")


def _checked_ranges(checks: Sequence[tuple[str, Tensor, float, float]]) -> bool:
    """Check every (name, values, lo, hi) with one ``aminmax`` pass per tensor and one host
    synchronisation; the element-wise search for the message runs only when a range fails
    or a NaN hides the extremes.  Returns whether every value is finite (no NaN, no inf),
    which lets the caller skip the passes that only infinite or NaN inputs need."""
    filled = [c for c in checks if c[1].numel()]
    if not filled:
        return True
    stats = torch.stack([m.to(torch.float64) for c in filled for m in torch.aminmax(c[1].detach())]).tolist()
    finite = True
    for i, (name, values, lo, hi) in enumerate(filled):
        vmin, vmax = stats[2 * i], stats[2 * i + 1]
        if math.isnan(vmin) or math.isnan(vmax):
            finite = False
            _check_range(name, values.detach(), lo, hi)
        elif vmin < lo or vmax > hi:
            _check_range(name, values.detach(), lo, hi)
        finite = finite and math.isfinite(vmin) and math.isfinite(vmax)
    return finite


# ----------------------------------------------------------------------------- arithmetic


def _opmath(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _round_host(v: float, dtype: torch.dtype) -> float:
    """``v`` rounded to nearest in ``dtype`` (float64 or float32), as a Python float."""
    return v if dtype == torch.float64 else struct.unpack("<f", struct.pack("<f", v))[0]


def _split_const(v: float | Fraction, dtype: torch.dtype) -> tuple[float, float]:
    """A constant as hi + lo, hi the nearest ``dtype`` value, lo the rest (rounded)."""
    exact = Fraction(v)
    hi = _round_host(float(exact), dtype)
    return hi, _round_host(float(exact - Fraction(hi)), dtype)


def _next_up_or_equal(v: float, dtype: torch.dtype) -> float:
    """The smallest ``dtype`` value >= v, so that ``p < v`` is ``p < this`` exactly for dtype p."""
    r = _round_host(v, dtype)
    if r >= v:
        return r
    if dtype == torch.float64:
        return math.nextafter(r, math.inf)
    bits = struct.unpack("<I", struct.pack("<f", r))[0]
    return struct.unpack("<f", struct.pack("<I", bits + 1))[0]  # r > 0 here


def _mul0(c: Tensor, v: Tensor) -> Tensor:
    """c * v with 0 * anything = 0 (the x log x -> 0 convention of the specification)."""
    return torch.where(c == 0, 0.0, c * v)


def _div0(c: Tensor, d: Tensor) -> Tensor:
    """c / d with 0 / anything = 0."""
    return torch.where(c == 0, 0.0, c / d)


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """s + err == a + b exactly (Knuth); no multiplications, so FMA contraction cannot spoil it."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, torch.where(torch.isfinite(err), err, 0.0)


def _split(a: Tensor) -> tuple[Tensor, Tensor]:
    """a == hi + lo with hi holding the upper half of the significand, by masking bits
    (not Veltkamp's multiply-subtract, which a contracting compiler could turn into an FMA)."""
    if a.dtype == torch.float64:
        hi = (a.view(torch.int64) & -(1 << 27)).view(torch.float64)
    else:
        hi = (a.view(torch.int32) & -(1 << 12)).view(torch.float32)
    return hi, a - hi


def _two_prod(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """p + err == a * b up to a relative 2**-100 or so (Dekker), err = 0 where a*b overflows."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, torch.where(torch.isfinite(err), err, 0.0)


def _expm1(y: Tensor) -> Tensor:
    """exp(y) - 1 without cancellation, by Kahan's (u - 1) y / log u with u = fl(exp y).

    Not ``torch.expm1``: Inductor's vectorised CPU code in torch 2.13 lowers it to
    ``exp(y) - 1``, which returns 0 for |y| below 1e-16 under ``torch.compile``."""
    u = torch.exp(y)
    um1 = u - 1
    r = torch.where(u == 1, y, um1 * y / torch.log(u))
    return torch.where(um1 == -1, -1.0, torch.where(torch.isinf(u), u, r))


def _pow(m: Tensor, gamma: float) -> Tensor:
    """m ** gamma with gamma taken exactly (float32 rounds a gamma like 0.3; the error would be
    amplified by |log m|)."""
    if gamma == 0:
        return torch.ones_like(m)
    g_hi, g_lo = _split_const(gamma, m.dtype)
    r = torch.pow(m, g_hi)
    if g_lo:
        r = torch.where(m > 0, r + r * (g_lo * torch.log(m)), r)
    return r


# ----------------------------------------------------------------------------- sigmoid

_SigmoidCfg = tuple  # (gamma, alpha, input_kind, soft_target, clip_eps, label_smoothing, finite)


def _smoothed(t0: Tensor, ls: float) -> tuple[Tensor, Tensor]:
    """(t, 1 - t) after binary label smoothing, the complement computed without cancellation."""
    if not ls:
        return t0, 1 - t0
    return t0 * (1 - ls) + ls / 2, (1 - t0) * (1 - ls) + ls / 2


def _clip(
    p: Tensor, q: Tensor, logp: Tensor, logq: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Clip (p, 1-p) to [eps, 1-eps]; the masks compare with the exact eps, the clipped
    complement is eps itself (not 1 - fl(1 - eps)), the logs are those of the exact eps."""
    dt = p.dtype
    e_up = _next_up_or_equal(eps, dt)
    e_near, one_m = _round_host(eps, dt), _round_host(1 - eps, dt)
    log_e, log_1me = math.log(eps), math.log1p(-eps)
    lo, hi = p < e_up, q < e_up
    pc = torch.where(lo, e_near, torch.where(hi, one_m, p))
    qc = torch.where(lo, one_m, torch.where(hi, e_near, q))
    logpc = torch.where(lo, log_e, torch.where(hi, log_1me, logp))
    logqc = torch.where(lo, log_1me, torch.where(hi, log_e, logq))
    return pc, qc, logpc, logqc, ~(lo | hi)


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
    (1 - p_t)**gamma, measured by the conformance suite).  Eager, where every operation is a
    pass over memory, the work is done in place on fresh buffers; compiled, it fuses."""
    if compiled:
        log1pe = torch.log1p(torch.exp(-x.abs()))
        return torch.sigmoid(x), torch.sigmoid(-x), log1pe + torch.clamp(-x, min=0), log1pe + torch.clamp(x, min=0)
    log1pe = x.abs().neg_().exp_().log1p_()
    nx = -x
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
) -> tuple[Tensor, Tensor | None]:
    """Unweighted canonical loss (1 - p_t)^g CE and d/dx for finite x, in the fewest passes.

    1 - p_t = tn p + t q and CE = tn (-log(1 - p)) + t (-log p) (``_mix``); d CE/dx =
    tn p - t q; d(1 - p_t)/dx = p q (tn - t).  For gamma = 2 the gradient is
    (1 - p_t) ((1 - p_t) dCE + 2 p q (tn - t) CE): no division.  For other gamma,
    p q / (1 - p_t) is taken where 1 - p_t > 0 (where it is 0, so is CE, and the term)."""
    p, q, nlogp, nlogq = _canonical_parts(x, compiled)
    if compiled:
        return _canonical_fused(p, q, nlogp, nlogq, t, 1 - t if tn is None else tn, gamma, need_grad)
    if not need_grad and (exact_tn or tn is None):  # p and -log(1 - p) are not needed again
        m, ce = p.lerp_(q, t), nlogq.lerp_(nlogp, t)  # fresh buffers reused: fewer page faults
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
        return value, None
    # d CE/dx = tn p - t q; without smoothing (1 - p_t) - 2 t q, one pass: exact at t = 0 and
    # t = 1 (q - 2q = -q), and elsewhere rounded on the scale of tn p + t q, as the two products are
    dce = torch.addcmul(m, t, q, value=-2.0) if exact_tn or tn is None else torch.addcmul(tn * p, t, q, value=-1.0)
    if gamma == 0:
        return value, dce
    w = torch.rsub(t, 1.0, alpha=2.0) if exact_tn or tn is None else tn - t  # 1 - 2t: exact or rounded once
    pqw = p * q
    pqw.mul_(w)
    if gamma == 2:
        grad = m * dce
        grad.addcmul_(pqw, ce, value=2.0)
        grad.mul_(m)
        return value, grad
    r = torch.where(m == 0, 0.0, pqw / m * ce)  # p q / (1 - p_t) first: p q CE alone can underflow
    grad = torch.add(dce, r, alpha=gamma)
    grad.mul_(mg)
    return value, grad


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
    isinf = torch.isinf(x)
    w_lim = torch.where(x > 0, wn, wp)
    value = torch.where(isinf, torch.where(w_lim > 0, math.inf, 0.0), value)
    if grad is not None:
        grad = torch.where(isinf, torch.where(x > 0, w_lim, -w_lim), grad)
    return value, grad


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
    value, grad = _canonical_unweighted(x, t, tn, gamma, exact_tn, need_grad, compiled)
    a = None
    if alpha is not None:
        if exact_tn:
            # alpha t + (1 - alpha)(1 - t): two non-negative terms (the folded (1 - alpha) +
            # (2 alpha - 1) t cancels for small alpha); 1 - t is exact or rounded once
            a = torch.rsub(t, 1.0).mul_(1.0 - alpha).add_(t, alpha=alpha)
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
    isinf = torch.isinf(x)
    value = torch.where(isinf, v_lim, value)
    grad = None if grad is None else torch.where(isinf, g_lim, grad)
    return _weighted_with_nan(value, grad, a, x, t0)


def _weighted_with_nan(
    value: Tensor, grad: Tensor | None, a: Tensor | None, x: Tensor, t0: Tensor
) -> tuple[Tensor, Tensor | None]:
    """alpha_t times value and gradient (0 times the limit inf is 0), then NaN wherever the
    logit or the target is NaN."""
    if a is not None:
        value = _mul0(a, value)
        grad = None if grad is None else _mul0(a, grad)
    bad = torch.isnan(x) | torch.isnan(t0)
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
            isinf = torch.isinf(x)
            value = torch.where(isinf, v_lim, value)
            grad = None if grad is None else torch.where(isinf, g_lim, grad)
        if alpha is not None:
            return _weighted_with_nan(value, grad, alpha * t + (1.0 - alpha) * tn, x, t0)
    return _weighted_with_nan(value, grad, None, x, t0)


class _SigmoidFocal(torch.autograd.Function):
    """Element-wise sigmoid focal loss; the closed-form gradient is computed with the value."""

    @staticmethod
    def forward(ctx, x: Tensor, t0: Tensor, cfg: _SigmoidCfg) -> Tensor:  # type: ignore[override]
        value, grad = _sigmoid_elementwise(x, t0, cfg, ctx.needs_input_grad[0])
        if grad is not None:
            ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (grad,) = ctx.saved_tensors
        return grad_out * grad, None, None


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    input_kind: str = "logits",
    soft_target: str = "canonical",
    clip_eps: float | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
    check: bool = True,
) -> Tensor:
    """Binary focal loss FL = -alpha_t (1 - p_t)**gamma log p_t, element-wise on ``inputs``.

    inputs: logits (``input_kind='logits'``) or probabilities in [0, 1]; targets: same shape,
    hard {0, 1} or soft [0, 1].  alpha weights positives (negatives get 1 - alpha); None
    disables it.  soft_target picks the convention for 0 < t < 1 (canonical, geometric =
    smp, margin = MONAI, two_term = kornia; logits only, no clipping).  clip_eps declares
    the Keras-style clipping of probabilities to [eps, 1 - eps]; label_smoothing maps t to
    t (1 - ls) + ls / 2.  reduction: none | sum | mean | normalized (sum / max(1, #t == 1)).
    ``check`` validates data ranges in eager mode (one host synchronisation).
    """
    inputs = _check_inputs(inputs)
    targets = _check_targets_tensor(targets, inputs)
    _choice("input_kind", input_kind, _INPUT_KINDS)
    _choice("soft_target", soft_target, _SOFT_TARGETS)
    _choice("reduction", reduction, _SIGMOID_REDUCTIONS)
    gamma = _real("gamma", gamma, 0.0, math.inf)
    if alpha is not None:
        alpha = _real("alpha", alpha, 0.0, 1.0)
    if clip_eps is not None:
        clip_eps = _real("clip_eps", clip_eps, 0.0, 0.5, lo_open=True, hi_open=True)
    label_smoothing = _real("label_smoothing", label_smoothing, 0.0, 1.0)
    if soft_target != "canonical" and (input_kind != "logits" or clip_eps is not None):
        raise ValueError(f"soft_target={soft_target!r} is defined for logits without clipping only")
    if targets.shape != inputs.shape:
        raise ValueError(f"targets have shape {tuple(targets.shape)} but inputs have shape {tuple(inputs.shape)}")
    if targets.dtype.is_complex:
        raise ValueError(f"targets must be real, got {targets.dtype}")
    ct = _opmath(inputs.dtype)
    t0 = targets.to(ct)
    x = inputs.to(ct)
    finite = False
    if check and _eager_checks():
        limits = (0.0, 1.0) if input_kind == "probs" else (-math.inf, math.inf)
        finite = _checked_ranges(
            [("targets", t0, 0.0, 1.0), ("probabilities" if input_kind == "probs" else "logits", x, *limits)]
        )
    cfg = (gamma, alpha, input_kind, soft_target, clip_eps, label_smoothing, finite)
    loss = _SigmoidFocal.apply(x, t0, cfg)
    if reduction == "sum":
        loss = loss.sum()
    elif reduction == "mean":
        loss = loss.mean()
    elif reduction == "normalized":
        loss = loss.sum() / torch.clamp((t0 == 1).sum(), min=1).to(ct)
    return loss.to(inputs.dtype)


# ----------------------------------------------------------------------------- softmax

_SoftmaxCfg = tuple  # (gamma, input_kind, clip_eps, renormalize)


def _argmax_mask(z: Tensor) -> Tensor:
    """True at the first maximum of each row (the class whose complement is cancellation-prone)."""
    idx = torch.argmax(z, dim=-1, keepdim=True)
    return torch.arange(z.shape[-1], device=z.device) == idx


def _combine(h: Tensor, p: Tensor, q: Tensor, is_max: Tensor) -> Tensor:
    """d/dz_k of sum_j F_j given h_j = dF_j/dlog p_j: h_k q_k - p_k sum_{j != k} h_j, the sum
    over the others taken directly for the dominant class (H - h_k would cancel there)."""
    total = h.sum(-1, keepdim=True)
    others_of_max = torch.where(is_max, 0.0, h).sum(-1, keepdim=True)
    others = torch.where(is_max, others_of_max, total - h)
    return h * q - p * others


def _softmax_probs_terms(
    pc: Tensor, qc: Tensor, logpc: Tensor, w: Tensor, gamma: float, inside: Tensor | None, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Per-class -w (1-p)^g log p and its partial in p (clipping already applied)."""
    qg = _pow(qc, gamma)
    terms = _mul0(w, qg * -logpc)
    if not need_grad:
        return terms, None
    dp = -qg / pc
    if gamma != 0:
        dp = dp + gamma * qg * torch.where(qc == 0, -1.0, logpc / qc)
    dp = torch.where(pc == 0, -math.inf, w * dp)
    dp = torch.where(w == 0, 0.0, dp)
    if inside is not None:
        dp = torch.where(inside, dp, 0.0)
    return terms, dp


def _softmax_rows(z: Tensor, w: Tensor, cfg: _SoftmaxCfg, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    gamma, input_kind, clip_eps, renormalize = cfg
    is_max = _argmax_mask(z)
    if input_kind == "logits":
        zmax = torch.amax(z, dim=-1, keepdim=True)
        dh, dl = _two_sum(z, -zmax)  # z - max(z) exactly: its rounding would be amplified by exp
        e = torch.exp(dh)
        e = e + e * dl
        rest = torch.where(is_max, 0.0, e).sum(-1, keepdim=True)  # sum of the non-dominant classes
        total = 1 + rest
        logp = (dh + dl) - torch.log1p(rest)
        p = e / total
        q = torch.where(is_max, rest, total - e) / total  # 1 - p without cancellation
        if clip_eps is None:
            qg = _pow(q, gamma)
            terms = _mul0(w, qg * -logp)
            if not need_grad:
                return terms.sum(-1), None
            h = -w * qg
            if gamma != 0:
                h = h * (1 + gamma * p * torch.where(q == 0, 1.0, -logp / q))
            h = torch.where(w == 0, 0.0, h)
            return terms.sum(-1), _combine(h, p, q, is_max)
        logq = torch.where(is_max, torch.log(rest) - torch.log1p(rest), torch.log1p(-p))
        pc, qc, logpc, _, inside = _clip(p, q, logp, logq, clip_eps)
        terms, dp = _softmax_probs_terms(pc, qc, logpc, w, gamma, inside, need_grad)
        return terms.sum(-1), None if dp is None else _combine(dp * p, p, q, is_max)
    # probabilities
    if renormalize:
        s = z.sum(-1, keepdim=True)
        p = z / s
        q = torch.where(is_max, torch.where(is_max, 0.0, z).sum(-1, keepdim=True), s - z) / s
        logp = torch.where(p > 0.5, torch.log1p(-q), torch.log(p))
    else:
        s, p, q, logp = None, z, 1 - z, torch.log(z)
    inside = None
    if clip_eps is not None:
        logq = torch.where(q < 0.5, torch.log(q), torch.log1p(-p))
        p, q, logp, _, inside = _clip(p, q, logp, logq, clip_eps)
    terms, dp = _softmax_probs_terms(p, q, logp, w, gamma, inside, need_grad)
    if dp is None:
        return terms.sum(-1), None
    if s is not None:
        pn = z / s
        dp = (dp - (dp * pn).sum(-1, keepdim=True)) / s
    return terms.sum(-1), dp


class _SoftmaxFocal(torch.autograd.Function):
    """Per-row softmax focal loss; the closed-form gradient is computed with the value."""

    @staticmethod
    def forward(ctx, z: Tensor, w: Tensor, cfg: _SoftmaxCfg) -> Tensor:  # type: ignore[override]
        value, grad = _softmax_rows(z, w, cfg, ctx.needs_input_grad[0])
        if grad is not None:
            ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (grad,) = ctx.saved_tensors
        return grad_out.unsqueeze(-1) * grad, None, None


def softmax_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | None = 0.25,
    input_kind: str = "logits",
    clip_eps: float | None = None,
    label_smoothing: float = 0.0,
    renormalize: bool = False,
    reduction: str = "none",
    check: bool = True,
) -> Tensor:
    """Multi-class focal loss per row: -sum_j alpha_j t_j (1 - p_j)**gamma log p_j.

    inputs: (..., C) logits or probabilities; targets: (...) int64 class indices or (..., C)
    distributions.  alpha: None, one weight for every class, or C weights.  clip_eps,
    label_smoothing (t (1 - ls) + ls / C) and renormalize (probabilities divided by their row
    sum first) follow Keras.  reduction: none (per row) | sum | mean (over rows).  Rows
    with an infinite logit, or (when compiled) an out-of-range class index, give NaN.
    """
    inputs = _check_inputs(inputs)
    targets = _check_targets_tensor(targets, inputs)
    _choice("input_kind", input_kind, _INPUT_KINDS)
    _choice("reduction", reduction, _SOFTMAX_REDUCTIONS)
    gamma = _real("gamma", gamma, 0.0, math.inf)
    if clip_eps is not None:
        clip_eps = _real("clip_eps", clip_eps, 0.0, 0.5, lo_open=True, hi_open=True)
    label_smoothing = _real("label_smoothing", label_smoothing, 0.0, 1.0)
    if not isinstance(renormalize, bool):
        raise ValueError(f"renormalize must be True or False, got {renormalize!r}")
    if renormalize and input_kind != "probs":
        raise ValueError("renormalize applies to probability inputs only")
    if inputs.dim() < 1:
        raise ValueError("softmax inputs need a class axis (the last one)")
    n_classes = inputs.shape[-1]
    alphas: tuple[float, ...] | None = None
    if isinstance(alpha, Sequence):
        alphas = tuple(_real("alpha", a, 0.0, 1.0) for a in alpha)
        if len(alphas) != n_classes:
            raise ValueError(f"alpha has {len(alphas)} entries but the inputs have {n_classes} classes")
    elif alpha is not None:
        alphas = (_real("alpha", alpha, 0.0, 1.0),) * n_classes
    ct = _opmath(inputs.dtype)
    z = inputs.to(ct)
    check = check and _eager_checks()
    valid = None
    if targets.shape == inputs.shape[:-1]:
        if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
            raise ValueError(f"class-index targets must be integers, got {targets.dtype}")
        idx = targets.to(torch.int64)
        if check:
            _check_range("class indices", idx, 0, n_classes - 1)
        valid = (idx >= 0) & (idx < n_classes)
        t = (torch.arange(n_classes, device=z.device) == idx.unsqueeze(-1)).to(ct)
    elif targets.shape == inputs.shape:
        if not targets.dtype.is_floating_point:
            raise ValueError(f"target distributions must be floating point, got {targets.dtype}")
        t = targets.to(ct)
        if check:
            _check_range("targets", t, 0.0, 1.0)
    else:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} fit neither class indices {tuple(inputs.shape[:-1])} "
            f"nor distributions {tuple(inputs.shape)}"
        )
    if check and input_kind == "probs":
        _check_range("probabilities", inputs.detach(), 0.0, 1.0)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / n_classes
    w = t if alphas is None else t * torch.tensor(alphas, dtype=ct, device=z.device)
    loss = _SoftmaxFocal.apply(z, w, (gamma, input_kind, clip_eps, renormalize))
    if valid is not None:
        loss = torch.where(valid, loss, math.nan)
    if reduction == "sum":
        loss = loss.sum()
    elif reduction == "mean":
        loss = loss.mean()
    return loss.to(inputs.dtype)
