"""focalspec's own PaddlePaddle focal loss: the specification evaluated in stable form.

Depends on paddle only (copy it if you like).  The same stable forms as
``focalspec.kernels.torch_loss``, for the part of the specification it covers:

* ``1 - p_t`` is never ``1 - p`` of a rounded probability: on logits it is
  ``t*sigmoid(-x) + (1-t)*sigmoid(x)``, on probabilities ``1 - p`` of the exact input.
* ``-log p`` is a softplus written as ``max(x, 0) + log1p(exp(-|x|))`` (paddle's own
  ``softplus`` returns ``x`` above its threshold 20, which loses ``exp(-x)`` in float64).
* Value and gradient come from one closed form in a ``paddle.autograd.PyLayer``: finite and
  right at saturation for ``0 < gamma < 1`` (autodiff of ``(1 - p_t)**gamma`` gives
  ``0 * inf = NaN``), and infinite logits give the limits of SPEC.md §1.4; NaN propagates.
* gamma is applied exactly (a float32 gamma like 0.3 is split into hi + lo).

Covered: sigmoid on logits or probabilities, canonical soft targets, alpha None or scalar,
label smoothing, reductions none/sum/mean/normalized; softmax on logits with class indices
or distributions, alpha None, scalar (every class) or per class, reductions none/sum/mean;
float64 and float32.  Anything else (clipping, the geometric/margin/two_term soft-target
forms, softmax on probabilities, float16/bfloat16) raises a ValueError that says so.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import paddle
from paddle.autograd import PyLayer

from focalspec.kernels import params

Tensor = paddle.Tensor

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]

_FLOAT = ("float64", "float32")
_SIGMOID_REDUCTIONS = ("none", "sum", "mean", "normalized")
_SOFTMAX_REDUCTIONS = ("none", "sum", "mean")


# ----------------------------------------------------------------------------- validation


def _dtype_name(x: Tensor) -> str:
    return str(x.dtype).removeprefix("paddle.")


def _check_inputs(inputs: object) -> Tensor:
    if not isinstance(inputs, paddle.Tensor):
        raise ValueError(f"inputs must be a paddle.Tensor, got {type(inputs).__name__}")
    if _dtype_name(inputs) not in _FLOAT:
        raise ValueError(
            f"inputs must be float64 or float32 (focalspec.kernels.paddle_loss), got {_dtype_name(inputs)}"
        )
    return inputs


def _check_range(name: str, values: Tensor, lo: float, hi: float) -> None:
    bad = (values < lo) | (values > hi)
    if bool(bad.any()):
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}]; found {float(values[bad].flatten()[0])!r}")


# ----------------------------------------------------------------------------- arithmetic


def _round_host(v: float, dtype: str) -> float:
    return v if dtype == "float64" else struct.unpack("<f", struct.pack("<f", v))[0]


def _split_const(v: float, dtype: str) -> tuple[float, float]:
    exact = Fraction(v)
    hi = _round_host(float(exact), dtype)
    return hi, _round_host(float(exact - Fraction(hi)), dtype)


def _eq(a: Tensor, v: float) -> Tensor:
    """a == v exactly.  Not ``a == v``: paddle's float ``equal`` has an absolute tolerance
    (in 3.3.1, ``paddle.to_tensor([1e-16], dtype='float64') == 0`` is True)."""
    return (a <= v) & (a >= v)


def _full(like: Tensor, v: float) -> Tensor:
    return paddle.full_like(like, v)


def _where(c: Tensor, a: Tensor | float, b: Tensor | float, like: Tensor) -> Tensor:
    a = a if isinstance(a, paddle.Tensor) else _full(like, a)
    b = b if isinstance(b, paddle.Tensor) else _full(like, b)
    return paddle.where(c, a, b)


def _mul0(c: Tensor, v: Tensor) -> Tensor:
    """c * v with 0 * anything = 0 (x log x -> 0)."""
    return _where(_eq(c, 0), 0.0, c * v, c)


def _div0(c: Tensor, d: Tensor) -> Tensor:
    return _where(_eq(c, 0), 0.0, c / d, c)


def _pow(m: Tensor, gamma: float) -> Tensor:
    """m ** gamma with gamma taken exactly (gamma = 2: one correctly rounded product, as pow)."""
    if gamma == 0:
        return paddle.ones_like(m)
    if gamma == 2:
        return m * m
    g_hi, g_lo = _split_const(gamma, _dtype_name(m))
    r = paddle.pow(m, g_hi)
    if g_lo:
        r = _where(m > 0, r + r * (g_lo * paddle.log(m)), r, m)
    return r


def _sigmoid_pair(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(sigmoid(x), sigmoid(-x), log1p(e^-|x|)) without overflow or cancellation on either side,
    from one exp and one log1p (each pass over the data costs as much as the arithmetic)."""
    e = paddle.exp(-paddle.abs(x))
    d = 1 + e
    inv, small = 1 / d, e / d
    pos = x >= 0
    return paddle.where(pos, inv, small), paddle.where(pos, small, inv), paddle.log1p(e)


# ----------------------------------------------------------------------------- sigmoid


def _sigmoid_logits(x: Tensor, t: Tensor, tn: Tensor, gamma: float, want_grad: bool) -> tuple[Tensor, Any]:
    """Unweighted canonical loss and d/dx (None unless ``want_grad``); infinite x take the limits
    of SPEC.md §1.4.  One look at the data (a host synchronisation) skips the limit passes
    when no logit is infinite, the common case."""
    inf = bool(paddle.isinf(x).any())
    fin = paddle.logical_not(paddle.isinf(x)) if inf else None
    xf = _where(fin, x, 0.0, x) if inf else x
    s_pos, s_neg, tail = _sigmoid_pair(xf)
    zero = paddle.zeros_like(xf)
    # softplus(+-x) = max(+-x, 0) + log1p(e^-|x|) is finite for finite x: t * it needs no 0 * inf guard
    ce = t * (paddle.maximum(-xf, zero) + tail) + tn * (paddle.maximum(xf, zero) + tail)
    m = t * s_neg + tn * s_pos  # 1 - p_t, no cancellation
    mg = _pow(m, gamma)
    value = mg * ce
    grad = None
    if want_grad:
        dce = tn * s_pos - t * s_neg
        grad = mg * dce
        if gamma != 0:
            # r = sigmoid(x) sigmoid(-x) / (1 - p_t), exact for hard targets
            r = _where(_eq(tn, 0), s_pos, _where(_eq(t, 0), s_neg, s_pos * s_neg / m, x), x)
            grad = grad + gamma * mg * (tn - t) * _where(_eq(r, 0), 0.0, r * ce, x)
    if not inf:
        return value, grad
    # limits at x = +-inf: u is the target mass on the wrong side
    pos = x > 0
    u = _where(pos, tn, t, x)
    lim_v = _where(u > 0, math.inf, 0.0, x)
    value = _where(fin, value, lim_v, x)
    if grad is not None:
        grad = _where(fin, grad, _where(pos, 1.0, -1.0, x) * paddle.pow(u, gamma + 1), x)
    return value, grad


def _sigmoid_probs(p: Tensor, t: Tensor, tn: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """Unweighted loss and d/dp from an exact probability (1 - p of it is accurate)."""
    q = 1 - p
    ce = _mul0(t, -paddle.log(p)) + _mul0(tn, -paddle.log1p(-p))
    m = t * q + tn * p
    mg = _pow(m, gamma)
    grad = mg * (_div0(tn, q) - _div0(t, p))
    if gamma != 0:
        grad = grad + gamma * mg * _where(_eq(m, 0), 0.0, ce / m, p) * (tn - t)
    grad = _where(_eq(p, 0) & (t > 0), -math.inf, grad, p)
    grad = _where(_eq(q, 0) & (tn > 0), math.inf, grad, p)
    return mg * ce, grad


class _SigmoidFL(PyLayer):
    @staticmethod
    def forward(ctx, x, t0, gamma, alpha, probs, ls):  # type: ignore[no-untyped-def]
        t, tn = (t0, 1 - t0) if not ls else (t0 * (1 - ls) + ls / 2, (1 - t0) * (1 - ls) + ls / 2)
        want_grad = not x.stop_gradient  # forward only: no gradient passes
        if probs:
            value, grad = _sigmoid_probs(x, t, tn, gamma)
        else:
            value, grad = _sigmoid_logits(x, t, tn, gamma, want_grad)
        if alpha is not None:
            w = alpha * t + (1 - alpha) * tn
            value, grad = w * value, None if grad is None else w * grad
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, dy):  # type: ignore[no-untyped-def]
        (grad,) = ctx.saved_tensor()
        return _where(_eq(dy, 0), 0.0, dy * grad, grad), None


def _reduce(loss: Tensor, reduction: str, t0: Tensor | None = None) -> Tensor:
    if reduction == "none":
        return loss
    total = paddle.sum(loss)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / max(1, loss.size) if loss.size else total * math.nan
    assert t0 is not None
    return total / max(1.0, float(paddle.sum(_eq(t0, 1).astype("float64"))))


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    input_kind: str = "logits",
    soft_target: str = "canonical",
    clip_eps: float | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
) -> Tensor:
    """Sigmoid focal loss of SPEC.md §2-§4 (logits or probabilities, targets in [0, 1])."""
    x = _check_inputs(inputs)
    params.choice("input_kind", input_kind, ("logits", "probs"))
    params.choice("reduction", reduction, _SIGMOID_REDUCTIONS)
    if soft_target != "canonical":
        raise ValueError(
            f"soft_target {soft_target!r} is not implemented in focalspec.kernels.paddle_loss (canonical only)"
        )
    if clip_eps is not None:
        raise ValueError("clip_eps is not implemented in focalspec.kernels.paddle_loss")
    g = params.real("gamma", gamma, 0.0)
    a = params.real_or_none("alpha", alpha, 0.0, 1.0)
    ls = params.real("label_smoothing", label_smoothing, 0.0, 1.0)
    if not isinstance(targets, paddle.Tensor) or list(targets.shape) != list(x.shape):
        raise ValueError("targets must be a paddle.Tensor of the shape of inputs")
    t0 = targets.astype(x.dtype)
    _check_range("targets", t0, 0.0, 1.0)
    if input_kind == "probs":
        _check_range("probabilities", x, 0.0, 1.0)
    loss = _SigmoidFL.apply(x, t0, g, a, input_kind == "probs", ls)
    return _reduce(loss, reduction, t0)


# ----------------------------------------------------------------------------- softmax


def _softmax_parts(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(p, 1 - p, log p) per component of rows z (..., C).  With e = exp(z - max) the first
    maximum has e = 1 exactly, so S = 1 + rest (rest: the others' sum) and log S = log1p(rest);
    1 - p is the sum of the other components over S, never 1 - p."""
    mx = paddle.max(z, axis=-1, keepdim=True)
    d, dl = _two_sum(z, -mx)  # z - max rounds; its error, times |z - max|, would reach exp()
    e0 = paddle.exp(d)
    e = e0 + e0 * dl
    top = _eq(d, 0)
    is_max = top & (paddle.cumsum(top.astype("int32"), axis=-1) == 1)
    rest = paddle.sum(_where(is_max, 0.0, e, e), axis=-1, keepdim=True)
    s = 1 + rest
    others = _others_sum(e)
    q = others / s
    logp = (d + dl) - paddle.log1p(rest)
    return e / s, q, logp


def _two_sum(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """s + err == a + b exactly (Knuth's TwoSum); err = 0 where s is not finite."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, _where(paddle.isfinite(err), err, 0.0, err)


def _others_sum(v: Tensor) -> Tensor:
    """For every component c, the sum of v over the other components (no S - v_c cancellation)."""
    n = int(v.shape[-1])
    mask = 1 - paddle.eye(n, dtype=v.dtype)
    return paddle.sum(v.unsqueeze(-2) * mask, axis=-1)


class _SoftmaxFL(PyLayer):
    @staticmethod
    def forward(ctx, z, w, gamma):  # type: ignore[no-untyped-def]
        # w: per-component weight alpha_c t_c; L = sum_c w_c f(p_c), f(p) = -(1-p)^g log p
        p, q, logp = _softmax_parts(z)
        qg = _pow(q, gamma)
        value = paddle.sum(_mul0(w, -qg * logp), axis=-1)
        # h_c = f'(p_c) p_c = g (1-p)^g p log p / (1-p) - (1-p)^g  (<= 0);
        # dL/dz_k = w_k h_k - p_k sum_c w_c h_c = w_k h_k (1 - p_k) - p_k sum_{c != k} w_c h_c
        h = -qg
        if gamma != 0:
            plq = _where(_eq(q, 0), -1.0, p * logp / q, q)  # p log p / (1 - p) -> -1 as p -> 1
            h = h + gamma * qg * plq
        wh = _mul0(w, h)
        grad = wh * q - p * _others_sum(wh)
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, dy):  # type: ignore[no-untyped-def]
        (grad,) = ctx.saved_tensor()
        return dy.unsqueeze(-1) * grad, None


def softmax_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | None = None,
    input_kind: str = "logits",
    clip_eps: float | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "none",
    renormalize: bool = False,
) -> Tensor:
    """Softmax focal loss of SPEC.md §5 on logits (..., C); targets are class indices (...)
    or distributions (..., C).  A scalar alpha multiplies every class, a sequence is per class."""
    z = _check_inputs(inputs)
    params.choice("reduction", reduction, _SOFTMAX_REDUCTIONS)
    if input_kind != "logits" or renormalize:
        raise ValueError("focalspec.kernels.paddle_loss's softmax takes logits only")
    if clip_eps is not None:
        raise ValueError("clip_eps is not implemented in focalspec.kernels.paddle_loss")
    if len(z.shape) < 1 or z.shape[-1] < 1:
        raise ValueError("softmax inputs need a class axis")
    n_classes = int(z.shape[-1])
    g = params.real("gamma", gamma, 0.0)
    ls = params.real("label_smoothing", label_smoothing, 0.0, 1.0)
    if not isinstance(targets, paddle.Tensor):
        raise ValueError(f"targets must be a paddle.Tensor, got {type(targets).__name__}")
    if _dtype_name(targets).startswith("int"):
        if list(targets.shape) != list(z.shape[:-1]):
            raise ValueError("class-index targets must have the shape of inputs without the class axis")
        _check_range("class indices", targets, 0, n_classes - 1)
        t = paddle.nn.functional.one_hot(targets.astype("int64"), n_classes).astype(z.dtype)
    else:
        if list(targets.shape) != list(z.shape):
            raise ValueError("target distributions must have the shape of inputs")
        t = targets.astype(z.dtype)
        _check_range("target distributions", t, 0.0, 1.0)
    if ls:
        t = t * (1 - ls) + ls / n_classes
    if alpha is None:
        w = t
    elif isinstance(alpha, int | float):
        w = params.real("alpha", alpha, 0.0, 1.0) * t
    else:
        vec = [params.real("alpha", a, 0.0, 1.0) for a in alpha]
        if len(vec) != n_classes:
            raise ValueError(f"alpha has {len(vec)} entries for {n_classes} classes")
        w = paddle.to_tensor(vec, dtype=z.dtype) * t
    loss = _SoftmaxFL.apply(z, w, g)
    return _reduce(loss, reduction)
