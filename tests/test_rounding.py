"""Correct rounding straight from mpmath to each format, and why it must not go via float64."""

from __future__ import annotations

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest

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


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_rounding_agrees_with_numpy_on_exactly_representable_float64_inputs(dtype: str) -> None:
    # for float64 inputs a single numpy cast is itself a correct rounding
    rng = np.random.default_rng(1)
    vals = np.concatenate([rng.normal(0, 1, 200), rng.normal(0, 1, 200) * 1e-6, [1e-45, 6e-8, 65519.9, 65520.0]])
    cast = FORMATS[dtype].numpy_type
    for x in vals:
        assert round_mpf(mp.mpf(float(x)), dtype) == float(cast(x)), (dtype, x)


def test_subnormals_overflow_and_specials() -> None:
    assert round_mpf(mp.mpf(2) ** -149, "float32") == 2.0**-149  # smallest float32 subnormal
    assert round_mpf(mp.mpf(2) ** -150, "float32") == 0.0  # tie to even: zero
    assert round_mpf(mp.mpf(2) ** -150 * mp.mpf("1.0000001"), "float32") == 2.0**-149
    assert round_mpf(mp.mpf(65520), "float16") == math.inf  # halfway to 2^16: overflows
    assert round_mpf(mp.mpf("65519.99"), "float16") == 65504.0
    assert round_mpf(mp.mpf(10) ** 400, "float64") == math.inf
    assert math.isnan(round_mpf(mp.nan, "float32"))
    assert round_mpf(-mp.inf, "bfloat16") == -math.inf
