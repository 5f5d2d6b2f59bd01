"""Correct rounding straight from mpmath to each format, and why it must not go via float64."""

from __future__ import annotations

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from focalspec.spec.rounding import FORMATS, round_mpf

mp = mpmath.mp


def test_double_rounding_through_float64_lands_on_the_wrong_bfloat16_neighbour() -> None:
    # 1 + 2^-8 is the midpoint between the bfloat16 neighbours 1 and 1 + 2^-7; a value a hair
    # above it must round up.  Through float64 the hair (2^-60) is lost, the tie goes to even: 1.
    with mp.workdps(40):
        v = 1 + mp.mpf(2) ** -8 + mp.mpf(2) ** -60
        via_float64 = float(ml_dtypes.bfloat16(float(v)))
        assert via_float64 == 1.0
        assert round_mpf(v, "bfloat16") == 1 + 2.0**-7


def test_double_rounding_through_float64_lands_on_the_wrong_float16_neighbour() -> None:
    with mp.workdps(40):
        v = 1 + mp.mpf(2) ** -11 + mp.mpf(2) ** -70  # just above the float16 midpoint
        assert float(np.float16(float(v))) == 1.0
        assert round_mpf(v, "float16") == 1 + 2.0**-10


# values of the size the suite rounds (and tiny ones, where float16/bfloat16 go subnormal or to zero);
# drawn by hypothesis, deterministic in CI (derandomize), with the edge values always tried
MODERATE = st.floats(min_value=-8.0, max_value=8.0, allow_nan=False, allow_infinity=False)
TINY = st.floats(min_value=-1e-5, max_value=1e-5, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=MODERATE | TINY)
@example(x=1e-45)
@example(x=6e-8)
@example(x=65519.9)
@example(x=65520.0)
def test_rounding_agrees_with_numpy_on_exactly_representable_float64_inputs(dtype: str, x: float) -> None:
    # for float64 inputs a single numpy cast is itself a correct rounding
    cast = FORMATS[dtype].numpy_type
    with np.errstate(over="ignore"):  # 65520 overflows float16 in both
        expected = float(cast(x))
    assert round_mpf(mp.mpf(x), dtype) == expected, (dtype, x)


def test_subnormals_overflow_and_specials() -> None:
    assert round_mpf(mp.mpf(2) ** -149, "float32") == 2.0**-149  # smallest float32 subnormal
    assert round_mpf(mp.mpf(2) ** -150, "float32") == 0.0  # tie to even: zero
    assert round_mpf(mp.mpf(2) ** -150 * mp.mpf("1.0000001"), "float32") == 2.0**-149
    assert round_mpf(mp.mpf(65520), "float16") == math.inf  # halfway to 2^16: overflows
    assert round_mpf(mp.mpf("65519.99"), "float16") == 65504.0
    assert round_mpf(mp.mpf(10) ** 400, "float64") == math.inf
    assert math.isnan(round_mpf(mp.nan, "float32"))
    assert round_mpf(-mp.inf, "bfloat16") == -math.inf
