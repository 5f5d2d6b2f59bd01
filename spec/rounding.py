"""Correct rounding of an mpmath value straight to an IEEE binary format.

Rounding to float64 first and then to bfloat16/float16 can land on the wrong neighbour
(double rounding); here the exact binary significand of the mpf is rounded once, to
nearest with ties to even, with subnormals and overflow to infinity handled per IEEE 754.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

mp = mpmath.mp


@dataclass(frozen=True)
class Format:
    """An IEEE-style binary format: ``precision`` significand bits (hidden bit included),
    ``emin`` the exponent of the smallest normal, ``emax`` that of the largest finite."""

    name: str
    precision: int
    emin: int
    emax: int

    @property
    def numpy_type(self) -> Any:
        """The numpy scalar type (bfloat16 from ml_dtypes, imported only when asked: loading its
        extension costs ~0.5 s, more than a quick gate run spends on anything else of the kind)."""
        if self.name == "bfloat16":
            import ml_dtypes

            return ml_dtypes.bfloat16
        return {"float64": np.float64, "float32": np.float32, "float16": np.float16}[self.name]

    @property
    def unit_roundoff(self) -> float:
        return 2.0 ** (-self.precision)

    @property
    def smallest_normal(self) -> float:
        return 2.0**self.emin

    @property
    def max_finite(self) -> float:
        return (2 - 2.0 ** (1 - self.precision)) * 2.0**self.emax


FORMATS: dict[str, Format] = {
    "float64": Format("float64", 53, -1022, 1023),
    "float32": Format("float32", 24, -126, 127),
    "float16": Format("float16", 11, -14, 15),
    "bfloat16": Format("bfloat16", 8, -126, 127),
}


def get_format(dtype: str) -> Format:
    try:
        return FORMATS[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(FORMATS)}") from None


def round_mpf(value: Any, dtype: str) -> float:
    """The dtype value nearest to ``value`` (ties to even), returned as an exact Python float."""
    fmt = get_format(dtype)
    v = mp.mpf(value)
    if mp.isnan(v):
        return math.nan
    if mp.isinf(v):
        return math.inf if v > 0 else -math.inf
    if v == 0:
        return 0.0
    sign = -1.0 if v < 0 else 1.0
    man, exp = mp.mpf(abs(v)).man_exp  # |v| = man * 2**exp exactly, man odd
    man, exp = int(man), int(exp)
    top = exp + man.bit_length() - 1  # floor(log2 |v|)
    quantum = max(top, fmt.emin) - (fmt.precision - 1)
    if exp >= quantum:
        n = man << (exp - quantum)
    else:
        shift = quantum - exp
        n, rem = man >> shift, man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and n & 1):
            n += 1
    if n == 0:
        return sign * 0.0
    if quantum + n.bit_length() - 1 > fmt.emax:  # rounded past the largest finite value
        return sign * math.inf
    return sign * math.ldexp(float(n), quantum)  # n <= 2**precision: exact in float64


def to_dtype(value: Any, dtype: str) -> Any:
    """Correctly rounded value as a numpy scalar of the dtype (exact conversion)."""
    return get_format(dtype).numpy_type(round_mpf(value, dtype))


def round_array(values: np.ndarray, dtype: str) -> np.ndarray:
    """Object array of mpf -> float64 array holding the correctly rounded dtype values."""
    out = np.empty(values.shape, dtype=np.float64)
    for idx, val in np.ndenumerate(values):
        out[idx] = round_mpf(val, dtype)
    return out
