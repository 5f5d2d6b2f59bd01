"""focalspec.golden, the Python API: its doctests run here (so in CI), and its numbers match closed
forms evaluated independently in mpmath, with float32 inputs handled as a library receives them."""

from __future__ import annotations

import doctest

import mpmath
import numpy as np
import pytest

import focalspec
from focalspec.certified import api as golden_api
from focalspec.spec.variant import SpecError

mp = mpmath.mp


def test_doctests_run() -> None:
    res = doctest.testmod(golden_api, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 8 and res.failed == 0


def _sig(x, n: int) -> str:
    with mp.workdps(n + 20):
        return mpmath.nstr(x, n, strip_zeros=False, min_fixed=1, max_fixed=0)


def test_value_rounded_and_grad_against_closed_forms() -> None:
    g = focalspec.golden("0.95", 1, kind="probs")
    assert g.proven and g.digits == 34
    with mp.workdps(80):
        p = mpmath.mpf("0.95")
        fl = -mpmath.mpf("0.25") * (1 - p) ** 2 * mpmath.log(p)
        dfl = mpmath.mpf("0.25") * (2 * (1 - p) * mpmath.log(p) - (1 - p) ** 2 / p)
        assert mpmath.mpf(g.value) == mpmath.mpf(_sig(fl, 34))
        assert abs(mpmath.mpf(g.grad) / dfl - 1) < mpmath.mpf(10) ** -33
        want32 = float(np.float32(float(fl)))  # double rounding is harmless here: fl is far from a float32 tie
        assert abs(mpmath.mpf(float(np.float32(want32))) - fl) < abs(fl) * 2.0**-24
    assert g.rounded["float32"] == want32 and float(g) == float(fl)
    assert g.at(3) == "3.21e-05" and g.at(1) == "3e-05"


def test_python_floats_are_exact_binary_values() -> None:
    """0.95 (a float) is float64(0.95); "0.95" (a string) is 95/100: the two differ past digit 16."""
    a, b = focalspec.golden(0.95, 1, kind="probs"), focalspec.golden("0.95", 1, kind="probs")
    assert a.value != b.value and a.value[:12] == b.value[:12]


def test_input_dtype_equals_the_typed_float32_value() -> None:
    a = focalspec.golden("-18.6", 0, input_dtype="float32")
    b = focalspec.golden(repr(float(np.float32("-18.6"))), 0)  # its shortest repr, read as a decimal
    c = focalspec.golden(float(np.float32("-18.6")), 0)  # the float carries the exact float32 value
    assert a.value == c.value and a.request.inputs == float(np.float32("-18.6"))
    assert b.value != a.value  # '-18.600000381469727' is not the float32 value itself


def test_softmax_rows_alpha_vector() -> None:
    g = focalspec.golden([["2", "0", "-1"], ["0", "1", "0"]], [0, 2], softmax=True, alpha=[0.2, 0.4, 0.4])
    with mp.workdps(60):
        for k, (row, cls) in enumerate((((2, 0, -1), 0), ((0, 1, 0), 2))):
            z = [mpmath.mpf(v) for v in row]
            p = mpmath.exp(z[cls]) / mpmath.fsum(mpmath.exp(v) for v in z)
            want = -mpmath.mpf([0.2, 0.4, 0.4][cls]) * (1 - p) ** 2 * mpmath.log(p)
            assert mpmath.mpf(g.losses[k]) == mpmath.mpf(_sig(want, 34))
    assert g.value is None and g.proven


def test_command_reproduces_the_value(capsys) -> None:
    g = focalspec.golden([["-18.6", "0.51"], ["2.94", "-12.8"]], [[0, 1], [0, 0]], alpha=None, gamma=3,
                         reduction="keras-mean", sample_weight=["0.8", "0.2"], input_dtype="float32")  # fmt: skip
    words = g.command().split()
    assert words[:2] == ["focalspec", "golden"]
    assert focalspec.main(words[1:]) == 0
    out = capsys.readouterr().out
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("value ")] == [g.value]


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"x": "abc", "y": 1}, "malformed number for x"),
        ({"x": "1", "y": 1, "input_dtype": "float8"}, "unknown dtype"),
        ({"x": "1", "y": 1, "reduction": "avg"}, "unknown reduction"),
        ({"x": "1", "y": 1, "digits": 0}, "digits must be between"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, fragment) -> None:
    with pytest.raises(SpecError, match=fragment):
        focalspec.golden(**kwargs)
