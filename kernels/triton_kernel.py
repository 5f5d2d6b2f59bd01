"""focalspec's own fused sigmoid focal loss in Triton, for PyTorch users who need speed.

One pass over memory: the kernel reads logits and targets once and writes the loss (or one
partial sum per block for ``sum``/``mean``/``normalized``) and, when a gradient is wanted,
d loss / d logits in the same pass.  ``backward`` hands that saved gradient over untouched when
the upstream gradient is the scalar 1 (``loss.backward()`` of a reduced loss: logits and targets
read once, the gradient written once -- 12 B per float32 element) and scales it otherwise.

Scope: sigmoid on logits, hard or soft targets (the canonical ``1 - p_t = t sigma(-x) +
(1 - t) sigma(x)``), alpha a float or None, any gamma >= 0, reductions none | sum | mean |
normalized.  For probabilities, other soft-target conventions, clipping or label smoothing
use ``focalspec.kernels.torch_loss``.

Numerics (the same closed forms as ``focalspec.kernels.torch_loss``):

* exp(-|x|) in float64 for every dtype (compiled, float32 ``tl.exp`` is ``ex2.approx`` of an
  unreduced x log2 e, and libdevice's expf is 2 ulp: either is amplified (gamma + 1)-fold past
  the 'accurate' budget); float32 divisions by ``div_rn`` (``/`` compiles to div.full.f32, 2 ulp);
* softplus(x) = max(x, 0) + log1p(exp(-|x|)), log1p by Goldberg's ``log(u) * e / (u - 1)``
  with u = 1 + e (exact where u rounds to 1), so -log p and -log(1 - p) never go through
  a rounded p;
* 1 - p_t = t sigma(-x) + (1 - t) sigma(x), never 1 - p;
* float16 / bfloat16 / float32 inputs are computed in float32 and rounded once; float64 in
  float64;
* (1 - p_t)**gamma: integer gamma <= 16 by repeated multiplication; otherwise, for float32
  math, exp(gamma log m) evaluated in float64 (its error |gamma log m| 2**-53 is far below a
  float32 unit); for float64 math m = 2**k f (sqrt(1/2) <= f < sqrt(2)) and
  m**gamma = 2**n exp(r ln 2 + gamma log f) with k gamma = n + r split exactly, so the
  argument of exp stays small -- exp(gamma log m) in float64 would lose |gamma log m| units
  (up to 745 gamma), which is what made a first attempt fail the 'accurate' grade.

CUDA tensors run the compiled kernel; CPU tensors run the same kernel under Triton's
interpreter (numpy; slow, for checking only) -- ``last_mode()`` says which ran.  The
interpreter truncates float32 -> bfloat16 and misreads bfloat16 subnormals, so there bfloat16
tensors go in and come out as float32 and the host rounds to nearest.
Bad input (wrong type or dtype, shapes or devices that differ, targets needing a gradient)
is a one-line ``ValueError``; non-contiguous tensors are copied to contiguous ones; empty
tensors give an empty loss (``sum`` 0, ``mean`` NaN as ``torch.mean``) without a launch.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator
from typing import Any

import torch
import triton
import triton.language as tl
from triton.runtime.jit import JITFunction

from focalspec.kernels.params import choice, real

Tensor = torch.Tensor

__all__ = ["body", "constexprs", "last_mode", "sigmoid_focal_loss"]

_FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
_REDUCTIONS = ("none", "sum", "mean", "normalized")
MAX_INT_GAMMA = 16  # integer gammas up to this are powers by repeated multiplication
BLOCK_CUDA = 1024
BLOCK_INTERPRET = 8192  # the interpreter pays per program: fewer, larger blocks
# prm (float64, so that no constant is rounded to float32 on the way in):
# [0] alpha, [1] 1 - alpha, [2] gamma, [3] gamma_hi, [4] gamma_lo, [5] gradient scale, [6] ln 2


def _add(a, b):
    return a + b


_ADD = JITFunction(_add)  # a compiled combine function, even where TRITON_INTERPRET=1 makes triton.jit interpret


def _focal_body(
    x_ptr,
    t_ptr,
    loss_ptr,
    grad_ptr,
    part_ptr,
    prm_ptr,
    n,
    HAS_ALPHA: tl.constexpr,
    GAMMA_INT: tl.constexpr,  # >= 0: integer gamma by multiplication; -1: general power
    WRITE_LOSS: tl.constexpr,
    WRITE_GRAD: tl.constexpr,
    REDUCE: tl.constexpr,
    COUNT_POS: tl.constexpr,
    F64: tl.constexpr,
    BLOCK: tl.constexpr,
    NATIVE: tl.constexpr = False,  # compiled for a GPU (else run by Triton's interpreter)
):
    """One block of elements: loss, gradient and partial sums in one pass (see module docstring).

    Compiled, float32 ``tl.exp`` is exp2(x log2 e) by ``ex2.approx`` with no range reduction
    (relative error ~|x| 2**-24) and float32 ``/`` is ``div.full.f32`` (2 ulp): the kernel takes
    exp in float64 and divides with ``div_rn`` (correctly rounded); tests/test_kernels_gpu_aot.py
    reads both off the PTX and predicts the GPU's error from it."""
    CT: tl.constexpr = tl.float64 if F64 else tl.float32
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0).to(CT)
    t = tl.load(t_ptr + offs, mask=mask, other=0).to(CT)
    tn = 1 - t
    # sigma(+-x) and softplus(+-x) from e = exp(-|x|) in (0, 1]
    # exp in float64 for every dtype: compiled, float32 tl.exp is ex2.approx(x log2 e) (~|x| 2**-24
    # relative) and libdevice's expf is 2 ulp, either amplified (gamma + 1)-fold beyond the budget;
    # float64 exp (libdevice __nv_exp) rounded to float32 is within 0.5 ulp + 2**-29
    e = tl.exp(-tl.abs(x.to(tl.float64))).to(CT)
    d = 1 + e
    if F64:
        big = 1 / d
        small = e / d
        e_over = e / (d - 1)
    else:
        big = tl.div_rn(tl.full([BLOCK], 1.0, tl.float32), d)
        small = tl.div_rn(e, d)
        e_over = tl.div_rn(e, d - 1)
    pos = x >= 0
    s_pos = tl.where(pos, big, small)  # p = sigma(x)
    s_neg = tl.where(pos, small, big)  # 1 - p = sigma(-x)
    lp = tl.where(d == 1, e, tl.log(d) * e_over)  # log1p(e)
    sp_pos = tl.maximum(x, 0) + lp  # softplus(x) = -log(1 - p)
    sp_neg = tl.maximum(-x, 0) + lp  # softplus(-x) = -log p
    ce = tl.where(t == 0, 0, t * sp_neg) + tl.where(tn == 0, 0, tn * sp_pos)  # 0 * inf = 0 at x = +-inf
    m = t * s_neg + tn * s_pos  # 1 - p_t
    # mg = m ** gamma
    if GAMMA_INT >= 0:
        mg = tl.full([BLOCK], 1, CT)
        for _ in tl.static_range(GAMMA_INT):
            mg = mg * m
    elif F64:
        g_hi = tl.load(prm_ptr + 3)
        g_lo = tl.load(prm_ptr + 4)
        g = tl.load(prm_ptr + 2)
        ln2 = tl.load(prm_ptr + 6)
        sub = m < 2.2250738585072014e-308
        ms = tl.where(sub, m * 18014398509481984.0, m)  # 2**54: subnormals made normal
        bits = ms.to(tl.int64, bitcast=True)
        k = ((bits >> 52) & 0x7FF) - 1023 - tl.where(sub, 54, 0)
        f = ((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000).to(tl.float64, bitcast=True)  # [1, 2)
        hi = f > 1.4142135623730951
        f = tl.where(hi, f * 0.5, f)
        kf = tl.where(hi, k + 1, k).to(tl.float64)
        prod = kf * g_hi  # exact: g_hi has <= 40 significant bits, |k| < 2**11
        nf = tl.floor(prod + 0.5)
        r = (prod - nf) + kf * g_lo
        y = r * ln2 + g * tl.log(f)
        ni = tl.minimum(tl.maximum(nf, -2044.0), 1000.0).to(tl.int64)
        n1 = ni // 2
        n2 = ni - n1
        s1 = ((n1 + 1023) << 52).to(tl.float64, bitcast=True)
        s2 = ((n2 + 1023) << 52).to(tl.float64, bitcast=True)
        mg = tl.where(m > 0, (tl.exp(y) * s1) * s2, 0.0)
    else:
        g64 = tl.load(prm_ptr + 2)
        m64 = m.to(tl.float64)
        mg = tl.where(m > 0, tl.exp(g64 * tl.log(tl.maximum(m64, 1e-300))), 0.0).to(CT)
    value = mg * ce
    if HAS_ALPHA:
        a = tl.load(prm_ptr + 0).to(CT) * t + tl.load(prm_ptr + 1).to(CT) * tn
        value = tl.where(a == 0, 0, a * value)
    bad = (x != x) | (t != t)
    value = tl.where(bad, float("nan"), value)
    if WRITE_LOSS:
        tl.store(loss_ptr + offs, value.to(loss_ptr.dtype.element_ty), mask=mask)
    if REDUCE:
        # compiled: tl.reduce with a compiled combine function (_ADD); interpreted: tl.sum's Python
        # function, which the interpreter runs as one numpy sum (tl.sum itself is compiled-only unless
        # TRITON_INTERPRET=1 was set before triton was imported, and interpreted-only if it was)
        v_in = tl.where(mask, value, 0)
        if NATIVE:
            v_sum = tl.reduce(v_in, 0, _ADD)
        else:
            v_sum = tl.sum.fn(v_in, axis=0)
        tl.store(part_ptr + pid, v_sum)
        if COUNT_POS:
            npos = tl.where(mask & (t == 1), 1.0, 0.0).to(CT)
            if NATIVE:
                p_sum = tl.reduce(npos, 0, _ADD)
            else:
                p_sum = tl.sum.fn(npos, axis=0)
            tl.store(part_ptr + tl.num_programs(0) + pid, p_sum)
    if WRITE_GRAD:
        grad = mg * (tn * s_pos - t * s_neg)
        if GAMMA_INT != 0:
            g_c = tl.load(prm_ptr + 2).to(CT)
            # sigma(x) sigma(-x) / (1 - p_t), exact for hard targets; times the cross-entropy
            if F64:
                r_soft = s_pos * s_neg / m
            else:
                r_soft = tl.div_rn(s_pos * s_neg, m)
            rr = tl.where(tn == 0, s_pos, tl.where(t == 0, s_neg, r_soft))
            grad = grad + g_c * mg * (tn - t) * tl.where(rr == 0, 0, rr * ce)
        if HAS_ALPHA:
            grad = tl.where(a == 0, 0, a * grad)
        grad = grad * tl.load(prm_ptr + 5).to(CT)
        grad = tl.where(bad, float("nan"), grad)
        tl.store(grad_ptr + offs, grad.to(grad_ptr.dtype.element_ty), mask=mask)


_KERNELS: dict[str, Any] = {}
_LAST_MODE: list[str] = ["none"]


def _kernel(device: torch.device) -> tuple[Any, str, int]:
    """The compiled kernel for CUDA tensors, the interpreted one for CPU tensors."""
    native = device.type == "cuda" and not triton.knobs.runtime.interpret  # TRITON_INTERPRET=1 interprets all
    mode = "cuda" if native else "triton-interpret"
    if mode not in _KERNELS:
        if native:
            _KERNELS[mode] = triton.jit(_focal_body)
        else:
            from triton.runtime.interpreter import InterpretedFunction

            _KERNELS[mode] = InterpretedFunction(_focal_body)
    return _KERNELS[mode], mode, _block(device)


def _block(device: torch.device) -> int:
    native = device.type == "cuda" and not triton.knobs.runtime.interpret
    return BLOCK_CUDA if native else BLOCK_INTERPRET


def last_mode() -> str:
    """How the last launch ran: 'cuda' (compiled) or 'triton-interpret' (CPU interpreter)."""
    return _LAST_MODE[0]


def _split_gamma(gamma: float) -> tuple[float, float]:
    """gamma = hi + lo, hi with its 13 lowest significand bits cleared (so k * hi is exact)."""
    bits = struct.unpack("<Q", struct.pack("<d", gamma))[0] & ~((1 << 13) - 1)
    hi = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return hi, gamma - hi


def _gamma_int(gamma: float) -> int:
    return int(gamma) if gamma == int(gamma) and gamma <= MAX_INT_GAMMA else -1


def _run(kern: Any, n_blocks: int, *args: Any, **kwargs: Any) -> None:
    kern[(n_blocks,)](*args, **kwargs)


@contextlib.contextmanager
def _quiet(mode: str) -> Iterator[None]:
    """The interpreter evaluates masked-off lanes and x = +-inf in numpy, which warns about the
    0 * inf and 1 / 0 that the kernel's ``where`` then discards: silence numpy there only."""
    if mode != "triton-interpret":
        yield
        return
    import numpy as np

    with np.errstate(all="ignore"):
        yield


def _launch(
    x: Tensor, t: Tensor, alpha: float | None, gamma: float, reduction: str, want_grad: bool, scale: float
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Run the kernel once: (per-element loss or None, gradient or None, partials or None)."""
    kern, mode, block = _kernel(x.device)
    n = x.numel()
    reduce = reduction != "none"
    f64 = x.dtype == torch.float64
    ct = torch.float64 if f64 else torch.float32
    out_dtype = x.dtype
    if mode == "triton-interpret" and torch.bfloat16 in (x.dtype, t.dtype):
        # Triton's interpreter truncates float32 -> bfloat16 and misreads bfloat16 subnormals: the
        # kernel sees exact float32 copies and writes float32, which the host rounds to nearest once
        x, t = x.to(torch.float32), t.to(torch.float32)
    n_blocks = triton.cdiv(n, block)
    g_hi, g_lo = _split_gamma(gamma)
    a = 0.0 if alpha is None else alpha
    prm = torch.tensor([a, 1.0 - a, gamma, g_hi, g_lo, scale, math.log(2.0)], dtype=torch.float64, device=x.device)
    loss = None if reduce else torch.empty_like(x)
    grad = torch.empty_like(x) if want_grad else None
    part = torch.empty(2 * n_blocks if reduction == "normalized" else n_blocks, dtype=ct, device=x.device)
    dummy = part  # pointers that a constexpr switch leaves unused still need a tensor
    with _quiet(mode):
        _run(
            kern,
            n_blocks,
            x,
            t,
            loss if loss is not None else dummy,
            grad if grad is not None else dummy,
            part,
            prm,
            n,
            **constexprs(alpha is not None, gamma, reduction, want_grad, f64, block, mode == "cuda"),
        )
    _LAST_MODE[0] = mode
    if loss is not None:
        loss = loss.to(out_dtype)
    if grad is not None:
        grad = grad.to(out_dtype)
    return loss, grad, part if reduce else None


def constexprs(
    has_alpha: bool, gamma: float, reduction: str, want_grad: bool, f64: bool, block: int, native: bool
) -> dict[str, Any]:
    """The kernel's compile-time switches for one call (tests/test_kernels_gpu_aot.py compiles each)."""
    reduce = reduction != "none"
    return {
        "HAS_ALPHA": has_alpha,
        "GAMMA_INT": _gamma_int(gamma),
        "WRITE_LOSS": not reduce,
        "WRITE_GRAD": want_grad,
        "REDUCE": reduce,
        "COUNT_POS": reduction == "normalized",
        "F64": f64,
        "BLOCK": block,
        "NATIVE": native,
    }


def body() -> Any:
    """The kernel's Python function, for ahead-of-time compilation (``triton.compile``)."""
    return _focal_body


class _FusedFocal(torch.autograd.Function):
    """Forward runs the fused kernel (loss and gradient) when a gradient is needed, the
    forward-only kernel otherwise; backward hands the saved gradient back untouched when the
    upstream gradient is the scalar 1 (``loss.backward()`` of a reduced loss: read x and t,
    write the gradient, 12 B per float32 element in all) and scales it otherwise."""

    @staticmethod
    def forward(ctx, x: Tensor, t: Tensor, alpha: float | None, gamma: float, reduction: str) -> Tensor:  # type: ignore[override]
        want_grad = ctx.needs_input_grad[0]
        n = x.numel()
        ctx.scale_out = 1.0
        if n == 0:
            grad = torch.zeros_like(x) if want_grad else None
            out = x.new_zeros(x.shape) if reduction == "none" else x.new_zeros(())
            if reduction == "mean":
                out = x.new_full((), math.nan)
        else:
            scale = 1.0 / n if reduction == "mean" else 1.0
            loss, grad, part = _launch(x, t, alpha, gamma, reduction, want_grad, scale)
            if reduction == "none":
                out = loss  # type: ignore[assignment]
            else:
                assert part is not None
                nb = triton.cdiv(n, _block(x.device))
                total = part[:nb].to(torch.float64).sum()
                if reduction == "mean":
                    total = total / n
                elif reduction == "normalized":
                    npos = max(1.0, float(part[nb:].to(torch.float64).sum()))
                    total = total / npos
                    ctx.scale_out = 1.0 / npos
                out = total.to(x.dtype)
        # kept on ctx, not save_for_backward: backward drops the only reference, so autograd can
        # take the tensor as x.grad instead of copying it (a second backward is refused, not zero)
        ctx.grad = grad
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, None, None, None, None]:  # type: ignore[override]
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        if ctx.grad is None:
            raise RuntimeError(
                "the fused focal loss's saved gradient was handed over by an earlier backward: "
                "recompute the loss to differentiate it again (retain_graph=True does not keep it)"
            )
        grad, ctx.grad = ctx.grad, None
        return upstream(grad, grad_out, ctx.scale_out), None, None, None, None


def upstream(grad: Tensor, grad_out: Tensor, scale_out: float) -> Tensor:
    """grad * grad_out * scale_out, rounded once to grad's dtype (the upstream factor is formed in
    float32/float64, not in grad_out's half type); no pass at all when the factor is exactly 1."""
    if scale_out == 1.0 and grad_out.numel() == 1 and bool(grad_out.reshape(()) == 1):
        return grad
    ct = torch.float64 if torch.float64 in (grad.dtype, grad_out.dtype) else torch.float32
    go = grad_out.to(ct) * scale_out if scale_out != 1.0 else grad_out.to(ct)
    return (grad.to(ct) * go).to(grad.dtype)


def _check(logits: object, targets: object) -> tuple[Tensor, Tensor]:
    """Validated, contiguous (logits, targets); targets in a dtype the kernel can load."""
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"logits must be float64, float32, float16 or bfloat16, got {logits.dtype}")
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets have shape {tuple(targets.shape)} but logits have shape {tuple(logits.shape)}")
    if targets.device != logits.device:
        raise ValueError(f"targets are on {targets.device} but logits are on {logits.device}")
    if targets.dtype.is_complex or logits.dtype.is_complex:
        raise ValueError(f"targets must be real, got {targets.dtype}")
    if targets.requires_grad:
        raise ValueError("gradients with respect to the targets are not implemented; pass targets.detach()")
    if logits.device.type not in ("cpu", "cuda"):
        raise ValueError(f"the Triton kernel runs on CUDA (or CPU, interpreted), not on {logits.device}")
    if targets.dtype not in _FLOAT_DTYPES:  # bool / integer targets: one conversion to a float the kernel loads
        targets = targets.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
    return logits.contiguous(), targets.contiguous()


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    check: bool = True,
) -> Tensor:
    """Binary focal loss -alpha_t (1 - p_t)**gamma log p_t of ``logits``, fused in one Triton kernel.

    targets: same shape, hard {0, 1} or soft [0, 1] (any float, integer or bool dtype);
    alpha weights positives (negatives 1 - alpha), None disables it; reduction: none | sum |
    mean | normalized (sum / max(1, number of targets equal to 1)).  ``check`` verifies that
    targets lie in [0, 1] (one host synchronisation).  The result has the dtype of ``logits``.
    """
    choice("reduction", reduction, _REDUCTIONS)
    gamma = real("gamma", gamma, 0.0, math.inf)
    if alpha is not None:
        alpha = real("alpha", alpha, 0.0, 1.0)
    x, t = _check(logits, targets)
    if check and t.numel():
        bad = (t < 0) | (t > 1)
        if bool(bad.any()):
            raise ValueError(f"targets must lie in [0, 1]; found {t[bad].flatten()[0].item()!r}")
    return _FusedFocal.apply(x, t, alpha, gamma, reduction)
