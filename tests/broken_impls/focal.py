"""Focal losses with the signature of ``torchvision.ops.sigmoid_focal_loss``.

``careful`` evaluates the spec's canonical sigmoid focal loss stably: sigmoid and softplus
from ``exp(-|x|)``, ``1 - p_t = t sigmoid(-x) + (1 - t) sigmoid(x)`` (never ``1 - p``), and a
closed-form gradient (``torch.autograd.Function``) with the bounded ratio
``sigmoid(x) sigmoid(-x) / (1 - p_t)`` instead of autodiff through ``pow`` -- finite at
saturation for 0 < gamma < 1 and at infinite logits.  Every other function here is ``careful``
with one defect.  alpha < 0 or None disables balancing (torchvision's convention); reduction
"normalized" is sum / max(1, #positives).
"""

from __future__ import annotations

import time
from typing import Any

import torch

Tensor = torch.Tensor


def _stable_sigmoid(x: Tensor) -> Tensor:
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class _Sigmoid(torch.autograd.Function):
    """sigmoid with full relative accuracy on both tails and the exact derivative
    sigmoid(x) sigmoid(-x) (autodiff of the exp(-|x|) form is wrong at x = 0, where |x| kinks)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        s, c = _stable_sigmoid(x), _stable_sigmoid(-x)
        ctx.save_for_backward(s, c)
        return s

    @staticmethod
    def backward(ctx: Any, g_out: Tensor) -> Tensor:
        s, c = ctx.saved_tensors
        return g_out * s * c


class _Softplus(torch.autograd.Function):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), with derivative sigmoid(x).  (torch's own
    softplus returns x for x > 20, off by exp(-x): 2e-9 relative at 20, many float64 u.)"""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx: Any, g_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return g_out * _stable_sigmoid(x)


def _sigmoids(x: Tensor) -> tuple[Tensor, Tensor]:
    """(sigmoid(x), sigmoid(-x)), each with full relative accuracy on both tails."""
    return _Sigmoid.apply(x), _Sigmoid.apply(-x)


def _softplus(x: Tensor) -> Tensor:
    return _Softplus.apply(x)


def _wmul(w: Tensor, v: Tensor) -> Tensor:
    """w * v with 0 * anything = 0 (the limits of the spec at infinite logits)."""
    return torch.where(w == 0, torch.zeros_like(v), w * v)


def _alpha_t(alpha: float | None, t: Tensor) -> Tensor | float:
    if alpha is None or alpha < 0:
        return 1.0
    return alpha * t + (1.0 - alpha) * (1.0 - t)


class _Focal(torch.autograd.Function):
    """Element-wise canonical focal loss with its closed-form derivative."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, a: Tensor, gamma: float) -> Tensor:
        s_pos, s_neg = _sigmoids(x)
        ce = _wmul(t, _softplus(-x)) + _wmul(1.0 - t, _softplus(x))
        m = _wmul(t, s_neg) + _wmul(1.0 - t, s_pos)  # 1 - p_t
        mg = torch.ones_like(m) if gamma == 0 else m**gamma
        ctx.save_for_backward(t, a, s_pos, s_neg, ce, m, mg)
        ctx.gamma = gamma
        return a * mg * ce

    @staticmethod
    def backward(ctx: Any, g_out: Tensor) -> tuple[Tensor | None, ...]:
        t, a, s_pos, s_neg, ce, m, mg = ctx.saved_tensors
        gamma = ctx.gamma
        dce = _wmul(1.0 - t, s_pos) - _wmul(t, s_neg)  # p - t without cancellation at hard targets
        # sigma(x) sigma(-x) / (1 - p_t) <= 1: exact shortcuts at hard targets, where m may underflow
        safe_m = torch.where(m > 0, m, torch.ones_like(m))
        r = torch.where(t == 1, s_pos, torch.where(t == 0, s_neg, s_pos * s_neg / safe_m))
        t1 = torch.zeros_like(ce) if gamma == 0 else _wmul(r, gamma * mg * (1.0 - 2.0 * t) * ce)
        return g_out * a * (t1 + mg * dce), None, None, None


def _elementwise(x: Tensor, t: Tensor, alpha: float | None, gamma: float) -> Tensor:
    t = t.to(x.dtype)
    work = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xw, tw = x.to(work), t.to(work)
    a = _alpha_t(alpha, tw)
    a = a if isinstance(a, Tensor) else torch.full_like(xw, a)
    return _Focal.apply(xw, tw, a, float(gamma)).to(x.dtype)


def _reduce(loss: Tensor, t: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    if reduction == "normalized":
        return loss.sum() / max(1, int((t == 1).sum()))
    raise ValueError(f"invalid reduction {reduction!r}")


def careful(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    return _reduce(_elementwise(inputs, targets, alpha, gamma), targets, reduction)


# ----------------------------------------------------------------------------- one defect each


def wrong_alpha_side(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """alpha weights the negatives and 1 - alpha the positives."""
    flipped = None if alpha is None or alpha < 0 else 1.0 - alpha
    return _reduce(_elementwise(inputs, targets, flipped, gamma), targets, reduction)


def _factor(x: Tensor, t: Tensor, gamma: float) -> Tensor:
    """(1 - p_t)**gamma from the stable 1 - p_t, differentiable only where it is bounded."""
    s_pos, s_neg = _sigmoids(x)
    m = _wmul(t, s_neg) + _wmul(1.0 - t, s_pos)
    return torch.ones_like(m) if gamma == 0 else m**gamma


class _ZeroWithSlope(torch.autograd.Function):
    """A zero-valued term whose derivative in x is ``slope`` (finite where autodiff of pow is not)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, slope: Tensor) -> Tensor:
        ctx.save_for_backward(slope)
        return torch.zeros_like(x)

    @staticmethod
    def backward(ctx: Any, g_out: Tensor) -> tuple[Tensor | None, ...]:
        (slope,) = ctx.saved_tensors
        return g_out * slope, None


def _factor_grad_term(x: Tensor, t: Tensor, alpha: float | None, gamma: float, ce: Tensor) -> Tensor:
    """Zero, with derivative alpha_t * d(1-p_t)^gamma/dx * ce in the bounded form."""
    if gamma == 0:
        return torch.zeros_like(x)
    s_pos, s_neg = _sigmoids(x.detach())
    m = _wmul(t, s_neg) + _wmul(1.0 - t, s_pos)
    safe_m = torch.where(m > 0, m, torch.ones_like(m))
    r = torch.where(t == 1, s_pos, torch.where(t == 0, s_neg, s_pos * s_neg / safe_m))
    slope = _wmul(r, gamma * m**gamma * (1.0 - 2.0 * t) * ce.detach())
    return _alpha_t(alpha, t) * _ZeroWithSlope.apply(x, slope)


def eps_in_log(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """-log(p + 1e-6): the 'safe log' that moves every value and caps the loss at -log(1e-6)."""
    x, t = inputs, targets.to(inputs.dtype)
    s_pos, s_neg = _sigmoids(x)
    ce = -(t * torch.log(s_pos + 1e-6) + (1.0 - t) * torch.log(s_neg + 1e-6))
    loss = _alpha_t(alpha, t) * _factor(x, t, gamma).detach() * ce + _factor_grad_term(x, t, alpha, gamma, ce)
    return _reduce(loss, t, reduction)


def detached_factor(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """``.detach()`` on (1 - p_t)**gamma: right values, the gradient misses the factor's derivative."""
    x, t = inputs, targets.to(inputs.dtype)
    ce = _wmul(t, _softplus(-x)) + _wmul(1.0 - t, _softplus(x))
    loss = _alpha_t(alpha, t) * _factor(x, t, gamma).detach() * ce
    return _reduce(loss, t, reduction)


def naive_pow(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Autodiff through (1 - p_t)**gamma: gamma (1-p_t)^(gamma-1) is inf where 1 - p_t underflows to 0,
    times d(1-p_t)/dx = 0 gives NaN for 0 < gamma < 1 (torchvision's defect, with stable values)."""
    x, t = inputs, targets.to(inputs.dtype)
    ce = _wmul(t, _softplus(-x)) + _wmul(1.0 - t, _softplus(x))
    m = t * torch.sigmoid(-x) + (1.0 - t) * torch.sigmoid(x)
    loss = _alpha_t(alpha, t) * m**gamma * ce
    return _reduce(loss, t, reduction)


def float32_inside(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Computes in float32 whatever the input dtype, and hands back the input dtype."""
    low = inputs.to(torch.float32) if inputs.dtype == torch.float64 else inputs
    out = careful(low, targets.to(low.dtype), alpha, gamma, reduction)
    return out.to(inputs.dtype)


def mean_over_rows(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """'mean' divides the total by the number of rows (first axis), not of elements."""
    loss = _elementwise(inputs, targets, alpha, gamma)
    if reduction == "mean" and loss.dim() >= 2:
        return loss.sum() / loss.shape[0]
    return _reduce(loss, targets, reduction)


def normalized_by_n(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """'normalized' divides by the number of elements instead of max(1, #positives)."""
    loss = _elementwise(inputs, targets, alpha, gamma)
    if reduction == "normalized":
        return loss.sum() / max(1, loss.numel())
    return _reduce(loss, targets, reduction)


def clamped_logits(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Logits clamped to [-20, 20] 'for stability'."""
    return careful(inputs.clamp(-20.0, 20.0), targets, alpha, gamma, reduction)


def naive_log_sigmoid(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Cross entropy as -log(sigmoid(x)) and -log(1 - sigmoid(x)): -log(0) = inf once sigmoid
    underflows or rounds to 1."""
    x, t = inputs, targets.to(inputs.dtype)
    p = torch.sigmoid(x)
    ce = -(_wmul(t, torch.log(p)) + _wmul(1.0 - t, torch.log(1.0 - p)))
    loss = _alpha_t(alpha, t) * _factor(x, t, gamma).detach() * ce + _factor_grad_term(x, t, alpha, gamma, ce)
    return _reduce(loss, t, reduction)


# ----------------------------------------------------------------------------- misbehaving callables


def raises_on_soft(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Raises for soft targets (it supports hard labels only)."""
    if bool(((targets != 0) & (targets != 1)).any()):
        raise ValueError("hard 0/1 targets only")
    return careful(inputs, targets, alpha, gamma, reduction)


def hangs_on_inf(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Hangs (sleeps 2 s, past the test's timeout) when an input is +inf and gamma is 0.5."""
    if gamma == 0.5 and bool(torch.isposinf(inputs).any()):
        time.sleep(2.0)
    return careful(inputs, targets, alpha, gamma, reduction)


def wrong_shape(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Flattens the unreduced loss."""
    out = careful(inputs, targets, alpha, gamma, reduction)
    return out.reshape(-1) if reduction == "none" else out


def wrong_dtype(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Reduced losses come back in float32."""
    out = careful(inputs, targets, alpha, gamma, reduction)
    return out.float() if reduction != "none" else out


def no_alpha_argument(inputs: Tensor, targets: Tensor, gamma: float = 2.0) -> Tensor:
    """Wrong signature for the gate: no alpha."""
    return careful(inputs, targets, 0.25, gamma)


NOT_CALLABLE = 42


# ----------------------------------------------------------------------------- a declared convention


def clip_in_ce_probs(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Keras' binary form on probabilities: BCE of clamp(p, 1e-7, 1 - 1e-7), the factor of the
    unclipped p.  Right for --clip-eps 1e-7 --clip-scope ce, wrong for a clip everywhere."""
    t = targets.to(inputs.dtype)
    pc = inputs.clamp(1e-7, 1 - 1e-7)
    bce = -(t * torch.log(pc) + (1 - t) * torch.log1p(-pc))
    # 1 - p_t chosen per element, not t (1 - p) + (1 - t) p: at p = t = 1 that sum's slope is
    # 0 * inf = NaN in autograd, the one-sided limit -inf (gamma < 1) is what the spec says
    m = torch.where(t == 1, 1 - inputs, torch.where(t == 0, inputs, t * (1 - inputs) + (1 - t) * inputs))
    loss = m.pow(gamma) * bce
    a = _alpha_t(alpha, t)
    return _reduce(a * loss, t, reduction)


def one_minus_p(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """1 - p_t formed as 1 - p from a rounded p (stable cross-entropy): the factor loses relative
    precision like e^|x| for confident correct predictions and is 0 once sigma(x) rounds to 1."""
    x, t = inputs, targets.to(inputs.dtype)
    ce = _wmul(t, _softplus(-x)) + _wmul(1.0 - t, _softplus(x))
    p = torch.sigmoid(x)
    p_t = t * p + (1.0 - t) * (1.0 - p)
    loss = _alpha_t(alpha, t) * (1.0 - p_t) ** gamma * ce
    return _reduce(loss, t, reduction)
