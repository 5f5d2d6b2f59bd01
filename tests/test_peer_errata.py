"""Peer errata: the numbers Keras 3.15.1 and focal-loss 0.0.7 print in their focal-loss docstrings,
judged against certified values.  The expected verdicts were established by hand (SPEC conventions, each
library's source) and, for Keras, by running Keras 3.15.1 itself (reports/FINDINGS.md, 'Peer errata'); the
judge's categories are tested on constructed numbers whose verdict follows from the definitions alone."""

from __future__ import annotations

import json

import pytest

from focalspec.certified.peer_errata import ARITH_U, judge, load_examples, peer_errata
from focalspec.cli_main import main

ROWS = peer_errata()


def test_every_example_is_checked_and_proven() -> None:
    n_printed = sum(len(e["printed"]) for e in load_examples())
    assert len(ROWS) == n_printed >= 20
    assert {r.status for r in ROWS} == {"proven"}


def test_the_gamma_mixup_is_the_only_wrong_number() -> None:
    """binary_focal_crossentropy's docstring prints [0.916, 0.714] for a call with the default
    gamma=2: they are the gamma=0 values (Keras 3.15.1 itself returns [0.3298647, 0.2057984])."""
    wrong = [(r.example, r.printed) for r in ROWS if r.verdict == "wrong"]
    assert wrong == [("keras-binary-focal-fn-bce", "0.916"), ("keras-binary-focal-fn-bce", "0.714")]


def test_float32_arithmetic_is_told_apart() -> None:
    """CategoricalFocalCrossentropy prints its float32 result to 8 digits; 3.2058331e-05 is ~10 float32
    unit roundoffs above the exact value (its float32 row sum 0.05 + 0.95 rounds to 1)."""
    by = {(r.example, r.printed): r.verdict for r in ROWS}
    assert by[("keras-cfce-none", "3.2058331e-05")] == "dtype arithmetic"
    assert by[("keras-cfce-mean", "0.23315276")] == "dtype arithmetic"
    assert by[("keras-bfce-ex2-sum", "1.222")] == "correct"


@pytest.mark.parametrize(
    "printed,exact,dtype_value,verdict",
    [
        ("0.125", "0.1250000001", None, "correct"),
        ("0.1251", "0.1250000001", None, "wrong"),
        ("0.33333334", "0.33333333333", "0.3333333432674407958984375", "dtype print"),  # float32(1/3)
        ("0.33333336", "0.33333333333", "0.3333333432674407958984375", "dtype arithmetic"),  # ~0.5 u away
        (f"{1 + 2 * ARITH_U * 2.0**-24:.9f}", "1.0", "1.0", "wrong"),  # beyond ARITH_U unit roundoffs
    ],
)
def test_judge_categories(printed: str, exact: str, dtype_value: str | None, verdict: str) -> None:
    assert judge(printed, exact, dtype_value, "float32" if dtype_value else None)[0] == verdict


def test_cli_peer_errata(capsys) -> None:
    assert main(["golden", "--peer-errata"]) == 0
    out = capsys.readouterr().out
    assert "keras-binary-focal-fn-bce  printed 0.916  [wrong]" in out
    assert out.strip().splitlines()[-1] == "22 correct, 0 dtype print, 5 dtype arithmetic, 2 wrong"
    assert main(["golden", "--peer-errata", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(ROWS)
