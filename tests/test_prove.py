"""Proven digits (focalspec.certified.prove): a sample of golden entries proven afresh, a changed digit
or dtype entry refused, a tie or an undecided branch reported as 'agreed' with its reason, and the
interval log1p/expm1 enclosing the exact value where mpmath's iv drops the series remainder."""

from __future__ import annotations

import copy
import json
import random
from decimal import Decimal, localcontext

import mpmath
import pytest

from focalspec.certified import generate
from focalspec.certified.prove import INTERVALS, Disproved, flatten, prove_fn, reference_in_intervals, round_sig
from focalspec.spec import golden

iv = mpmath.iv
DOC = json.loads(golden.golden_text())
CASES = {d["id"]: d for d in DOC["cases"]}


def _size(d) -> int:
    return len(json.dumps(d["losses"]))


# every 7th case that is small enough to prove in well under a second (the full set: --check)
SAMPLE = [i for n, i in enumerate(CASES) if n % 7 == 0 and _size(CASES[i]) < 2000]


@pytest.mark.parametrize("case_id", SAMPLE)
def test_sample_is_proven_afresh(case_id: str) -> None:
    d = CASES[case_id]
    p = generate.prove_entry_data(d)
    assert p.proven, p.why
    assert generate.proof_record(p)["status"] == d["proof"]["status"] == "proven"
    assert p.counts["float32:losses"] == p.counts["losses"] == len(flatten(d["losses"]))


def test_every_stored_entry_says_proven_or_why() -> None:
    for d in DOC["cases"]:
        assert d["proof"]["status"] in ("proven", "agreed"), d["id"]
        assert d["proof"]["status"] == "proven" or d["proof"]["why"], d["id"]
    assert golden.get_entry("seed000_fl_fg_easy").status == "proven"


def test_a_changed_last_digit_is_disproved() -> None:
    d = copy.deepcopy(CASES["seed000_fl_fg_easy"])
    s = d["losses"]
    d["losses"] = s[:-5] + str((int(s[-5]) + 1) % 10) + s[-4:]
    with pytest.raises(Disproved, match="losses"):
        generate.prove_entry_data(d)


def test_a_float32_neighbour_is_disproved() -> None:
    import numpy as np

    d = copy.deepcopy(CASES["seed000_fl_fg_easy"])
    f = np.float32(d["rounded"]["float32"]["losses"])
    d["rounded"]["float32"]["losses"] = repr(float(np.nextafter(f, np.float32(1))))
    with pytest.raises(Disproved, match="float32"):
        generate.prove_entry_data(d)


def test_a_tie_is_agreed_not_proven() -> None:
    """exp(log(1/8)) is exactly 0.125, a tie at 2 digits; its enclosure straddles it."""

    def fn(dps: int) -> dict:
        with INTERVALS.workdps(dps):
            return {"value": [iv.exp(iv.log(iv.mpf("0.125")))]}

    p = prove_fn(fn, {"value": ["1.2e-01"]}, {}, 30)
    assert not p.proven and p.status == "agreed"
    assert "straddles a rounding boundary at 2 digits" in p.why
    assert prove_fn(fn, {"value": ["1.250000e-01"]}, {}, 30).proven  # the same value at 7 digits is settled


def test_an_undecided_branch_is_agreed_not_proven() -> None:
    def fn(dps: int) -> dict:
        with INTERVALS.workdps(dps):
            x = iv.exp(iv.log(iv.mpf(3)))
            return {"value": [x if x == 3 else -x]}  # equal mathematically; the intervals cannot say

    p = prove_fn(fn, {"value": ["3.0e+00"]}, {}, 30)
    assert not p.proven and "undecided" in p.why


def test_comparisons_are_restored() -> None:
    with reference_in_intervals():
        pass
    assert (iv.mpf([1, 2]) < iv.mpf(1.5)) is None  # mpmath's own semantics again


@pytest.mark.parametrize("y", ["1e-300", "-3e-40", "2.5e-12", "0.3", "-0.7", "40"])
def test_log1p_expm1_enclose(y: str) -> None:
    with INTERVALS.workdps(30):
        l_enc, e_enc = INTERVALS.log1p(iv.mpf(y))._mpi_, INTERVALS.expm1(iv.mpf(y))._mpi_
    with mpmath.workdps(400):
        exact_l, exact_e = mpmath.log1p(mpmath.mpf(y)), mpmath.expm1(mpmath.mpf(y))
        for (lo, hi), exact in ((l_enc, exact_l), (e_enc, exact_e)):
            assert mpmath.mpf(lo) <= exact <= mpmath.mpf(hi)
            assert mpmath.mpf(hi) - mpmath.mpf(lo) <= abs(exact) * mpmath.mpf(10) ** -25


def test_round_sig_is_exact() -> None:
    """Against Python's decimal on the exact binary value (an independent rounding)."""
    rng = random.Random(5)
    with mpmath.workprec(200):
        for _ in range(300):
            v = mpmath.mpf(rng.uniform(-1, 1)) * mpmath.mpf(2) ** rng.randint(-400, 400)
            k = rng.randint(1, 40)
            sign, man, exp, _ = v._mpf_
            with localcontext() as ctx:
                ctx.prec = 2000
                exact = (-1 if sign else 1) * Decimal(int(man)) * Decimal(2) ** int(exp)
                want = f"{exact:.{k - 1}e}"
            m, e = want.split("e")
            assert round_sig(v, k) == f"{m}e{e[0]}{abs(int(e)):02d}"


def test_equal_inputs_compare_equal_but_unequal_spellings_do_not() -> None:
    """Equal decimal inputs share one interval, so the reference's choice of the largest logit is
    decided; '0.1' and '0.10' are two enclosures of one number that no interval test can order."""
    from focalspec.certified.api import golden

    assert golden([["0.1", "0.1", "0"]], [0], softmax=True).status == "proven"
    g = golden([["0.1", "0.10", "0"]], [0], softmax=True)
    assert g.status == "agreed" and "undecided" in g.why and "0.1..0.1" in g.why
    assert g.losses == golden([["0.1", "0.1", "0"]], [0], softmax=True).losses  # the same certified digits


def test_a_failing_interval_evaluation_is_agreed_with_the_reason() -> None:
    def fn(dps: int) -> dict:
        raise TypeError("unsupported operand")

    p = prove_fn(fn, {"value": ["1.0e+00"]}, {}, 30)
    assert not p.proven and "interval evaluation failed: TypeError: unsupported operand" in p.why


def test_iv_elementary_functions_enclose() -> None:
    """The proof leans on mpmath's iv exp, log and power rounding outward: spot-check it against
    400-digit values on random arguments (decimal strings, so the arguments are intervals too)."""
    rng = random.Random(11)
    for _ in range(200):
        x = f"{rng.uniform(-30, 30):.12f}"
        p = f"{rng.uniform(1e-6, 1):.15f}"
        g = f"{rng.uniform(0, 5):.6f}"
        with INTERVALS.workdps(30):
            encs = [iv.exp(iv.mpf(x))._mpi_, iv.log(iv.mpf(p))._mpi_, (iv.mpf(p) ** iv.mpf(g))._mpi_]
        with mpmath.workdps(400):
            exact = [mpmath.exp(mpmath.mpf(x)), mpmath.log(mpmath.mpf(p)), mpmath.mpf(p) ** mpmath.mpf(g)]
            for (lo, hi), e in zip(encs, exact, strict=True):
                assert mpmath.mpf(lo) <= e <= mpmath.mpf(hi), (x, p, g)
