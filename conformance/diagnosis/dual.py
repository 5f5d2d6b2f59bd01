"""Rounded dual numbers: the arithmetic the catalogue of mechanisms (mechanisms.py) runs its models in.

Every operation's value and derivative in x is rounded to a working dtype (numpy float32/float16,
ml_dtypes bfloat16; float64 as is), as a framework's kernels round them, so that a model of an
implementation reproduces its last bits, forward value and autodiff gradient alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.reference.rounding import get_format

# ----------------------------------------------------------------------------- rounded dual numbers


class Arith:
    """Arithmetic whose every result is rounded to a working dtype (values held as float64)."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.npt = None if dtype == "float64" else get_format(dtype).numpy_type

    def r(self, a: Any) -> Any:
        """Round to the working dtype (callers run under np.errstate(all="ignore"): overflow is ±∞)."""
        if self.npt is None:
            return a
        return np.asarray(a, dtype=np.float64).astype(self.npt).astype(np.float64)


@dataclass
class D:
    """A value and its derivative in x, both rounded to the working dtype."""

    v: np.ndarray
    d: np.ndarray


def _c(ar: Arith, a: Any, like: np.ndarray) -> D:
    """A constant (a number or the targets): rounded, derivative 0 (broadcast by numpy)."""
    return a if isinstance(a, D) else D(ar.r(np.asarray(a, dtype=np.float64)), np.float64(0.0))


def _mul0(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * b  # IEEE: 0 · ∞ = NaN, as autodiff does


class Ops:
    """The primitives implementations call, each rounded once (a fused kernel) to the working dtype."""

    def __init__(self, ar: Arith, sigmoid: str = "formula") -> None:
        self.ar = ar
        self.sig_mode = sigmoid  # formula: 1/(1 + e^{−x}) in float32 steps (torch); rounded: σ rounded once

    def add(self, a: D, b: Any) -> D:
        b = _c(self.ar, b, a.v)
        return D(self.ar.r(a.v + b.v), self.ar.r(a.d + b.d))

    def sub(self, a: Any, b: Any) -> D:
        like = a.v if isinstance(a, D) else b.v
        a, b = _c(self.ar, a, like), _c(self.ar, b, like)
        return D(self.ar.r(a.v - b.v), self.ar.r(a.d - b.d))

    def mul(self, a: Any, b: Any) -> D:
        like = a.v if isinstance(a, D) else b.v
        a, b = _c(self.ar, a, like), _c(self.ar, b, like)
        r = self.ar.r
        return D(r(a.v * b.v), r(r(_mul0(a.d, b.v)) + r(_mul0(a.v, b.d))))

    def neg(self, a: D) -> D:
        return D(-a.v, -a.d)

    def exp(self, a: D) -> D:
        v = self.ar.r(np.exp(a.v))
        return D(v, self.ar.r(_mul0(v, a.d)))

    def log(self, a: D) -> D:
        return D(self.ar.r(np.log(a.v)), self.ar.r(a.d / a.v))

    def log1p(self, a: D) -> D:
        return D(self.ar.r(np.log1p(a.v)), self.ar.r(a.d / self.ar.r(1.0 + a.v)))

    def sigmoid(self, a: D) -> D:
        """σ as torch/JAX/TF compute it; derivative y·(1 − y) from the rounded y (their backward)."""
        r = self.ar.r
        if self.sig_mode == "steps":  # the stable form written with tensor ops, each rounded to the dtype
            e = r(np.exp(-np.abs(a.v)))
            den = r(1.0 + e)
            y = np.where(a.v >= 0, r(1.0 / den), r(e / den))
            c = np.where(a.v >= 0, r(e / den), r(1.0 / den))  # σ(−x), the custom backward's s·c
            return D(y, r(_mul0(r(y * c), a.d)))
        elif self.sig_mode == "ratio":  # e^x/(1 + e^x) (TensorFlow's float64 σ: 1 − σ(36.7368) = 2^−53)
            e = r(np.exp(a.v))
            y = np.where(np.isinf(e), 1.0, r(e / r(1.0 + e)))
        elif self.sig_mode == "formula" and self.ar.dtype == "float64":  # 1/(1 + e^{−x}) in float64 steps
            y = 1.0 / (1.0 + np.exp(-a.v))
        elif self.sig_mode == "formula":
            # 1/(1 + e^{−x}) in float32 steps (half types: float32 inside, rounded once): σ(17) = 1 in float32
            r32 = _R32.r
            y = r(r32(1.0 / r32(1.0 + r32(np.exp(-a.v)))))
        else:
            y = r(_sig(a.v))
        return D(y, self.ar.r(_mul0(self.ar.r(y * self.ar.r(1.0 - y)), a.d)))

    def softplus(self, a: D) -> D:
        """log(1 + e^x), stable (log_sigmoid(−x) in JAX/optax, the spec's form); derivative σ(x)."""
        return D(self.ar.r(_softplus(a.v)), self.ar.r(self.ar.r(_sig(a.v)) * a.d))

    def log_sigmoid(self, a: D) -> D:
        """torch's log_sigmoid: min(x, 0) − log1p(e^{−|x|}) in one kernel; derivative σ(−x)."""
        return D(self.ar.r(-_softplus(-a.v)), self.ar.r(self.ar.r(_sig(-a.v)) * a.d))

    def pow(self, a: D, g: float, autodiff: bool) -> D:
        """a^g; ``autodiff``: derivative g·a^(g−1)·a' (∞·0 = NaN at a = 0 for 0 < g < 1), else the
        bounded form a custom backward gives (0 where a = 0)."""
        if not g:  # JAX/TF differentiate a**0 as 0·a^(−1)·a' (NaN at a = 0); torch masks it to 0
            d = self.ar.r(_mul0(self.ar.r(0.0 * np.power(a.v, -1.0)), a.d)) if autodiff else np.zeros_like(a.v)
            return D(np.ones_like(a.v), d)
        v = self.ar.r(np.power(a.v, g))
        k = self.ar.r(g * self.ar.r(np.power(a.v, g - 1.0)))
        d = self.ar.r(_mul0(k, a.d))
        if not autodiff:
            d = np.where(a.v == 0, 0.0, d)
            d = np.where(np.isfinite(d), d, 0.0)
        return D(v, d)

    def clip(self, a: D, lo: float, hi: float, exact: bool = False) -> D:
        lo_r, hi_r = (lo, hi) if exact else (self.ar.r(np.float64(lo)), self.ar.r(np.float64(hi)))
        inside = (a.v >= lo_r) & (a.v <= hi_r)
        return D(np.clip(a.v, lo_r, hi_r), np.where(inside, a.d, 0.0))

    def where(self, c: np.ndarray, a: D, b: D) -> D:
        return D(np.where(c, a.v, b.v), np.where(c, a.d, b.d))


def _sig(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


_R32 = Arith("float32")
