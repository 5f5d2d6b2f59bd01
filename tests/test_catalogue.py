"""The case catalogue: well-formed ids and tags, every seed worked example present, and the
dtype edge points where they claim to be (checked with the dtype's own arithmetic)."""

from __future__ import annotations

import re
from decimal import Decimal

import ml_dtypes
import mpmath
import numpy as np
import pytest

from focalspec.spec.case import TAGS
from focalspec.spec.catalogue import all_cases, as_dtype, cases_with_tag, get_case, seeded_logits
from focalspec.spec.rounding import round_mpf
from focalspec.spec.variant import SpecError

CASES = all_cases()
BY_ID = {c.id: c for c in CASES}
NP_TYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}


def test_ids_unique_and_pytest_safe() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    for i in ids:
        assert re.fullmatch(r"[a-z0-9][a-z0-9_.\-]*", i), i
        assert len(i) <= 40, i


def test_tags_valid_and_every_tag_used() -> None:
    used = set()
    for c in CASES:
        assert c.tags, c.id
        assert set(c.tags) <= set(TAGS), c.id
        used |= set(c.tags)
    assert used == set(TAGS)


def test_lookup_and_errors() -> None:
    assert get_case("seed000_fl_fg_easy").printed == "3.2058308992219E-5"
    with pytest.raises(SpecError, match="did you mean seed000_fl_fg_easy"):
        get_case("seed000_fl_fg_eazy")
    with pytest.raises(SpecError, match="unknown tag"):
        cases_with_tag("no-such-tag")
    assert {c.id for c in cases_with_tag("ratio")} >= {"seed000_ratio_easy", "seed000_ratio_veryeasy"}


# (printed, p, y, gamma, alpha, reduction, n elements) transcribed from the seed articles
SEED_EXAMPLES = [
    # seed 000, 'Problem with Cross-Entropy' and 'Balanced Cross-Entropy'
    ("0.05", "0.95", 1, 0, None, "none", 1),
    ("0.05", "0.05", 0, 0, None, "none", 1),
    ("0.0128", "0.95", 1, 0, 0.25, "none", 1),
    ("0.038", "0.05", 0, 0, 0.25, "none", 1),
    # seed 000, 'Cross-Entropy vs Focal Loss'
    ("0.0512932943875505", "0.95", 1, 0, None, "none", 1),
    ("0.051293294387550", "0.05", 0, 0, None, "none", 1),
    ("3.2058308992219E-5", "0.95", 1, 2, 0.25, "none", 1),
    ("9.61E-5", "0.05", 0, 2, 0.25, "none", 1),
    ("2.995732273553991", "0.05", 1, 0, None, "none", 1),
    ("2.995732273553992", "0.95", 0, 0, None, "none", 1),
    ("0.675912094220619", "0.05", 1, 2, 0.25, "none", 1),
    ("2.027736282661858", "0.95", 0, 2, 0.25, "none", 1),
    ("0.0100503358535014", "0.99", 1, 0, None, "none", 1),
    ("0.0100503358535014", "0.01", 0, 0, None, "none", 1),
    ("2.51*10^-7", "0.99", 1, 2, 0.25, "none", 1),
    ("7.5377518901261E-7", "0.01", 0, 2, 0.25, "none", 1),
    # seed 001: loss of a positive at p = 0.02, a negative at 0.6 confidence, the two totals
    ("5", "0.02", 1, 0, None, "none", 1),
    ("1", "0.4", 0, 0, None, "none", 1),
    ("50", "0.02", 1, 0, None, "sum", 10),
    ("235", "0.4", 0, 0, None, "sum", 235),
]


@pytest.mark.parametrize("printed,p,y,gamma,alpha,reduction,n", SEED_EXAMPLES)
def test_seed_worked_example_present(printed, p, y, gamma, alpha, reduction, n) -> None:
    def matches(c) -> bool:
        v = c.variant
        inputs = c.inputs if isinstance(c.inputs, list) else [c.inputs]
        targets = c.targets if isinstance(c.targets, list) else [c.targets]
        return (
            c.printed == printed
            and "quantity" not in c.extra
            and v.input_kind == "probs"
            and v.gamma == gamma
            and v.alpha == alpha
            and v.reduction == reduction
            and len(inputs) == n
            and all(Decimal(str(i)) == Decimal(p) for i in inputs)
            and all(t == y for t in targets)
        )

    found = [c.id for c in CASES if matches(c)]
    assert found, f"no case for the printed {printed} (p={p}, y={y}, gamma={gamma}, alpha={alpha})"
    assert all("worked-example" in BY_ID[i].tags and BY_ID[i].source for i in found)


@pytest.mark.parametrize(
    "printed,p,numerator_gamma,denominator_gamma",
    [
        ("1600", "0.95", 0, 2),  # seed 000 scenario 1: CE / FL
        ("4.5", "0.05", 0, 2),
        ("40,000", "0.99", 0, 2),
        ("0.0001", "0.99", 2, 0),  # modulating factors: FL(alpha None) / CE
        ("0.0001", "0.01", 2, 0),
        ("0.9801", "0.01", 2, 0),
        ("0.9801", "0.99", 2, 0),
        ("0.01", "0.9", 2, 0),  # seed 002
        ("100", "0.9", 0, 2),
    ],
)
def test_printed_ratios_and_factors_present(printed, p, numerator_gamma, denominator_gamma) -> None:
    found = []
    for c in CASES:
        q = c.extra.get("quantity")
        if c.printed != printed or not q or Decimal(c.inputs) != Decimal(p):
            continue
        num = c.variant.to_dict() if q["numerator"] == "self" else q["numerator"]
        den = c.variant.to_dict() if q["denominator"] == "self" else q["denominator"]
        if num["gamma"] == numerator_gamma and den["gamma"] == denominator_gamma:
            found.append(c.id)
    assert found, f"no ratio/factor case printing {printed} at p={p}"


def test_worked_examples_carry_printed_and_source() -> None:
    for c in cases_with_tag("worked-example"):
        assert c.source and c.source.startswith("seed 00"), c.id
    assert sum(c.printed is not None for c in CASES) >= 29


def _sigmoid_one_naive(x: float, dtype: str) -> bool:
    """1 + exp(-x) == 1 in the dtype's own arithmetic (the naive sigmoid saturating)."""
    t = NP_TYPES[dtype]
    e = t(np.exp(np.float64(-x)))  # exp correctly rounded to the dtype (far from a tie here)
    return bool(t(t(1) + e) == t(1))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_saturation_points(dtype: str) -> None:
    for kind in ("naive", "rounded"):
        c = BY_ID[f"sat_{kind}_{dtype}"]
        lo, hi = c.inputs[0], c.inputs[1]
        assert lo < hi and float(NP_TYPES[dtype](lo)) == lo and float(NP_TYPES[dtype](hi)) == hi
        if kind == "naive":
            assert not _sigmoid_one_naive(lo, dtype) and _sigmoid_one_naive(hi, dtype)
        else:
            with mpmath.workdps(60):
                sig = [1 / (1 + mpmath.exp(-mpmath.mpf(v))) for v in (lo, hi)]
            assert round_mpf(sig[0], dtype) < 1 and round_mpf(sig[1], dtype) == 1
    assert 16.6 < BY_ID["sat_naive_float32"].inputs[1] < 16.7
    assert 36.7 < BY_ID["sat_naive_float64"].inputs[1] < 36.8


@pytest.mark.parametrize("dtype,bound", [("float32", np.float32), ("float64", np.float64)])
def test_overflow_points(dtype, bound) -> None:
    lo, hi = BY_ID[f"overflow_{dtype}_g2"].inputs[:2]
    with np.errstate(over="ignore"):
        assert np.isfinite(np.exp(bound(lo))) and np.isinf(np.exp(bound(hi)))


def test_seeded_logits_exact_in_float32_and_reproducible() -> None:
    a = seeded_logits(80, 80)
    assert a == seeded_logits(80, 80) and a != seeded_logits(81, 80)
    assert all(float(np.float32(v)) == v and -8 <= v < 8 for v in a)
    row = BY_ID["softmax_c1000_seeded"].inputs
    assert len(row) == 1 and len(row[0]) == 1000 and len(set(row[0])) > 990


def test_softmax_c2_twins_are_logit_differences() -> None:
    for suffix in ("", "_avec"):
        sm, sg = BY_ID[f"softmax_c2_twin{suffix}"], BY_ID[f"softmax_c2_twin{suffix}_sigmoid"]
        assert [r[1] - r[0] for r in sm.inputs] == sg.inputs
        assert sm.targets == sg.targets


def test_as_dtype_rounds_decimals_once() -> None:
    assert as_dtype(["0.95", "0.1"], "float64").tolist() == [0.95, 0.1]
    # 1 + 2**-11 + 2**-60 lies just above a float16 tie; through float64 it would become the tie
    # itself (1 + 2**-11) and round to even, 1.0; rounded once it must go up
    s = format(Decimal(1) + Decimal(2) ** -11 + Decimal(2) ** -60, "f")
    assert as_dtype([s], "float16")[0] == 1 + 2.0**-10
    assert as_dtype(["inf", "-inf"], "float32").tolist() == [np.inf, -np.inf]


def test_clip_scope_needs_a_sigmoid_clip_and_round_trips() -> None:
    from focalspec.spec.variant import Variant

    with pytest.raises(SpecError, match="clip_scope='ce' needs clip_eps"):
        Variant(clip_scope="ce")
    with pytest.raises(SpecError, match="needs clip_eps and activation='sigmoid'"):
        Variant(activation="softmax", clip_eps=1e-7, clip_scope="ce")
    with pytest.raises(SpecError, match="unknown clip_scope 'bce'"):
        Variant(clip_eps=1e-7, clip_scope="bce")  # type: ignore[arg-type]
    v = Variant(clip_eps=1e-7, clip_scope="ce")
    assert Variant.from_dict(v.to_dict()) == v and v.label().endswith("clip1e-07-ce")
    assert "clip_scope" not in Variant(clip_eps=1e-7).to_dict()  # golden data predating the field reads the same
