"""Single-defect focal losses in torch (issue 24): ``careful`` and one planted defect each.

``f(inputs, targets, alpha=0.25, gamma=2.0)``, element-wise, the same family as
single_defect_jax.py and single_defect_tf.py: ``careful`` computes half types in float32 and
rounds once, forms 1 − p_t as σ(−s·x), the cross-entropy with softplus written as
max(x, 0) + log1p(e^{−|x|}), and gives (1 − p_t)^γ a bounded derivative (a custom backward, 0 at
1 − p_t = 0).  Every other function is ``careful`` with the one defect its name says;
``PLANTED`` maps each to its cause.  (A stable form computed op by op in bfloat16 stays
within 8 u of the exact value on the test's grid: not a defect there, so no half-precision one.)
(tests/broken_impls/focal.py holds the gate's broken implementations; its ``one_minus_p`` also
differentiates the power by autodiff.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from broken_impls._single_defects import install

Tensor = torch.Tensor


class _Pow(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, m: Tensor, g: float) -> Tensor:
        ctx.save_for_backward(m)
        ctx.g = g
        return m**g

    @staticmethod
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor, None]:
        (m,) = ctx.saved_tensors
        safe = torch.where(m > 0, m, torch.ones_like(m))
        return dy * torch.where(m > 0, ctx.g * safe ** (ctx.g - 1.0), torch.zeros_like(m)), None


def _softplus(z: Tensor) -> Tensor:
    return torch.clamp(z, min=0) + torch.log1p(torch.exp(-z.abs()))


def _focal(x: Tensor, t: Tensor, alpha: float | None, gamma: float, *, factor: str = "stable",
           ce: str = "stable", power: str = "bounded", alpha_side: str = "right", detach: bool = False,
           compute: str = "upcast", clamp: float | None = None) -> Tensor:  # fmt: skip
    out_dtype = x.dtype
    half = x.dtype in (torch.bfloat16, torch.float16)
    xc = x.float() if (compute == "upcast" and half) or compute == "float32" else x
    t = t.to(xc.dtype)
    if clamp is not None:
        xc = xc.clamp(-clamp, clamp)
    p, q = torch.sigmoid(xc), torch.sigmoid(-xc)
    m = 1.0 - (p * t + (1.0 - p) * (1.0 - t)) if factor == "one_minus_p" else t * q + (1.0 - t) * p
    if ce == "naive_log":
        c = -(t * torch.log(p) + (1.0 - t) * torch.log(1.0 - p))
    elif ce == "eps":
        c = -(t * torch.log(p + 1e-6) + (1.0 - t) * torch.log(q + 1e-6))
    elif ce == "torch":
        c = F.binary_cross_entropy_with_logits(xc, t, reduction="none")
    else:
        c = t * _softplus(-xc) + (1.0 - t) * _softplus(xc)
    f = m**gamma if power == "autodiff" else _Pow.apply(m, gamma)
    if detach:
        f = f.detach()
    a = alpha if alpha_side == "right" or alpha is None else 1.0 - alpha
    at = 1.0 if a is None else a * t + (1.0 - a) * (1.0 - t)
    return (at * f * c).to(out_dtype)


PLANTED = install(globals(), _focal, {"torch_bce": ({"ce": "torch"}, "bce_cancellation",
                                                 "The cross-entropy by F.binary_cross_entropy_with_logits.")})
