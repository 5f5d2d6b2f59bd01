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
  passes are needed, -log p and -log(1 - p) share one exp/log1p, the work is done in place,
  and a call that needs no gradient skips the ``autograd.Function``; compiled, everything fuses
  into one loop per pass.  torch 2.14's float32 log1p is slow where ATen runs AVX512 code, so
  there it is taken in float64 (torch_exact_ops).  ``focalspec bench`` measures it against
  torchvision (benchmarks/SPEED.md).
* Layout: this module holds the API, the argument and data checks and the softmax form;
  torch_sigmoid.py the element-wise sigmoid forms, torch_exact_ops.py the compensated
  arithmetic; argument checks shared with the other frameworks come from params.py.

It works under ``torch.compile(fullgraph=True)``; the data checks (targets in [0, 1],
probabilities in [0, 1], class indices in range) run in eager mode only, because they need
the data on the host.  Under compilation an out-of-range value gives NaN instead.
Gradients with respect to the targets are not provided (a ValueError says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from focalspec.kernels.params import choice, real
from focalspec.kernels.torch_exact_ops import _clip, _mul0, _opmath, _pow, _two_sum, closed_form_function
from focalspec.kernels.torch_sigmoid import _sigmoid_elementwise, _SigmoidFocal

Tensor = torch.Tensor

__all__ = ["sigmoid_focal_loss", "softmax_focal_loss"]

_FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
_INPUT_KINDS = ("logits", "probs")
_SOFT_TARGETS = ("canonical", "geometric", "margin", "two_term")
_SIGMOID_REDUCTIONS = ("none", "sum", "mean", "normalized")
_SOFTMAX_REDUCTIONS = ("none", "sum", "mean")


# ----------------------------------------------------------------------------- validation


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
    extremes = [m for c in filled for m in torch.aminmax(c[1].detach())]
    if any(m.dtype != extremes[0].dtype for m in extremes):
        extremes = [m.to(torch.float64) for m in extremes]
    stats = torch.stack(extremes).tolist()  # the one host synchronisation
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
    choice("input_kind", input_kind, _INPUT_KINDS)
    choice("soft_target", soft_target, _SOFT_TARGETS)
    choice("reduction", reduction, _SIGMOID_REDUCTIONS)
    gamma = real("gamma", gamma, 0.0, math.inf)
    if alpha is not None:
        alpha = real("alpha", alpha, 0.0, 1.0)
    if clip_eps is not None:
        clip_eps = real("clip_eps", clip_eps, 0.0, 0.5, lo_open=True, hi_open=True)
    label_smoothing = real("label_smoothing", label_smoothing, 0.0, 1.0)
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
    if x.requires_grad and torch.is_grad_enabled():
        loss = _SigmoidFocal.apply(x, t0, cfg)
    else:  # no gradient wanted: no autograd.Function (its bookkeeping is a fixed cost per call)
        loss = _sigmoid_elementwise(x, t0, cfg, False)[0]
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


# per-row softmax focal loss; the closed-form gradient is computed with the value
_SoftmaxFocal = closed_form_function(_softmax_rows, per_row=True)


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
    choice("input_kind", input_kind, _INPUT_KINDS)
    choice("reduction", reduction, _SOFTMAX_REDUCTIONS)
    gamma = real("gamma", gamma, 0.0, math.inf)
    if clip_eps is not None:
        clip_eps = real("clip_eps", clip_eps, 0.0, 0.5, lo_open=True, hi_open=True)
    label_smoothing = real("label_smoothing", label_smoothing, 0.0, 1.0)
    if not isinstance(renormalize, bool):
        raise ValueError(f"renormalize must be True or False, got {renormalize!r}")
    if renormalize and input_kind != "probs":
        raise ValueError("renormalize applies to probability inputs only")
    if inputs.dim() < 1:
        raise ValueError("softmax inputs need a class axis (the last one)")
    n_classes = inputs.shape[-1]
    alphas: tuple[float, ...] | None = None
    if isinstance(alpha, Sequence):
        alphas = tuple(real("alpha", a, 0.0, 1.0) for a in alpha)
        if len(alphas) != n_classes:
            raise ValueError(f"alpha has {len(alphas)} entries but the inputs have {n_classes} classes")
    elif alpha is not None:
        alphas = (real("alpha", alpha, 0.0, 1.0),) * n_classes
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
