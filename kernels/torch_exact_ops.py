"""Compensated arithmetic for focalspec's own PyTorch kernels (``focalspec.kernels.torch_loss``).

Why a module of its own: every form of the loss (sigmoid, softmax, clipped probabilities) needs
the same few exact building blocks -- constants split into hi + lo, TwoSum / TwoProduct, a
cancellation-free expm1, a power with gamma taken exactly, and a fast accurate log1p on [0, 1] --
and they are tested once here rather than per form; with them the ``autograd.Function`` shape
that both forms share (value and closed-form gradient from one call).  Depends on torch only.
"""

from __future__ import annotations

import math
import os
import struct
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import torch

Tensor = torch.Tensor

# ATen's float32 log1p is the one transcendental of the canonical loss whose speed depends on
# the CPU: on one AVX512 machine here (AMD EPYC) it ran about 6x slower than its AVX2 kernel and
# than float64 log1p (2^16 elements, one thread: 547 us against 156 us via float64, conversions
# included), on another (Intel Xeon, also AVX512) 3x faster than the float64 route (40 us against
# 127 us).  The capability flag does not tell them apart, so the route is measured once, at
# import, on a buffer too small for ATen to split across threads (about a millisecond); both
# routes stay within an ulp (the float64 one rounds once: 0.5 ulp).  FOCALSPEC_F32_LOG1P=native
# or =float64 fixes the route (reproducible timings, or a result that must not depend on it).


def _f32_log1p_route() -> bool:
    """True where float32 log1p is faster through float64 (see above)."""
    forced = os.environ.get("FOCALSPEC_F32_LOG1P", "").strip().lower()
    if forced in ("native", "float64"):
        return forced == "float64"
    if forced:
        raise ValueError(f"FOCALSPEC_F32_LOG1P must be 'native' or 'float64', got {forced!r}")
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    e = torch.rand(1 << 13)

    def fastest(f: Any) -> float:
        best = math.inf
        for _ in range(7):
            t0 = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t0)
        return best

    native = fastest(lambda: torch.log1p(e))
    via = fastest(lambda: torch.log1p(e.double()).float())
    return via < native


_F32_LOG1P_VIA_F64 = _f32_log1p_route()
_LOG1P_SLICE = 1 << 16  # elements per float64 slice (512 KiB): stays in a core's L2 between its three passes

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
    return torch.where(um1 == -1, -1.0, torch.where(isinf(u), u, r))


def isnan(v: Tensor) -> Tensor:
    """torch.isnan, but as ``v != v`` under torch.compile: Inductor's CPU code runs isnan and
    isinf element by element outside its vector loop (a scalar loop per 16 floats), a comparison
    inside it; in eager mode ATen's own kernel is the one pass."""
    return v != v if torch.compiler.is_compiling() else torch.isnan(v)


def isinf(v: Tensor) -> Tensor:
    """torch.isinf, as ``|v| == inf`` under torch.compile (see ``isnan``)."""
    return v.abs() == math.inf if torch.compiler.is_compiling() else torch.isinf(v)


def _log1p_unit(e: Tensor, inplace: bool) -> Tensor:
    """log1p(e) for e in [0, 1] (the exp(-|x|) of a logit), to at most an ulp, fast on every CPU
    (see _F32_LOG1P_VIA_F64).  ``inplace``: e is a fresh contiguous buffer that may be
    overwritten; eager, the float64 copy is then made a slice at a time into one small buffer,
    since at 2^20 elements the page faults of a fresh 8 MB buffer cost more than the log1p."""
    if e.dtype == torch.float32 and e.device.type == "cpu" and _F32_LOG1P_VIA_F64:
        if not inplace or not e.is_contiguous():
            return torch.log1p(e.double()).float()
        flat = e.view(-1)
        buf = torch.empty(min(flat.numel(), _LOG1P_SLICE), dtype=torch.float64)
        for i in range(0, flat.numel(), _LOG1P_SLICE):
            part = flat[i : i + _LOG1P_SLICE]
            b = buf[: part.numel()]
            part.copy_(b.copy_(part).log1p_())
        return e
    return e.log1p_() if inplace else torch.log1p(e)


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


def closed_form_function(
    compute: Callable[[Tensor, Tensor, Any, bool], tuple[Tensor, Tensor | None]], per_row: bool
) -> type[torch.autograd.Function]:
    """An ``autograd.Function`` whose forward runs ``compute(x, other, cfg, need_grad)`` -> (value,
    d value/dx) and keeps the gradient for backward; ``per_row``: the value is reduced over the
    last axis, so the incoming gradient is broadcast back over it."""

    class ClosedForm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: Tensor, other: Tensor, cfg: Any) -> Tensor:  # type: ignore[override]
            value, grad = compute(x, other, cfg, ctx.needs_input_grad[0])
            if grad is not None:
                ctx.save_for_backward(grad)
            return value

        @staticmethod
        def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
            if not ctx.needs_input_grad[0]:
                return None, None, None
            (grad,) = ctx.saved_tensors
            return (grad_out.unsqueeze(-1) if per_row else grad_out) * grad, None, None

    return ClosedForm
