"""The golden file: regenerates byte-identically, certifies >= 30 digits, agrees with closed
forms derived by hand (evaluated here in mpmath, independently of the reference), and the
errata mark the article's mistakes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import mpmath
import numpy as np
import pytest

from focalspec.certified import generate
from focalspec.certified.certify import format_sig, sig_digits
from focalspec.spec import golden
from focalspec.spec.catalogue import all_cases
from focalspec.spec.variant import SpecError

mp = mpmath.mp
ENTRIES = {e.id: e for e in golden.load_golden()}
ln, mpf = mpmath.log, mpmath.mpf


def agree(certified: str, exact, digits: int = 30) -> bool:
    """certified (a golden string) equals the closed form to ``digits`` significant digits."""
    with mp.workdps(80):
        c, x = mpf(certified), mpf(exact)
        if x == 0:
            return c == 0
        return abs(c - x) <= abs(x) * mpf(10) ** (1 - digits)


def test_regeneration_is_byte_identical(capsys) -> None:
    """Values regenerated; the proofs (~25 s for all 149) are re-run on a sample below and in
    full by ``python -m focalspec.certified.generate --check``."""
    assert generate.main(["--check", "--keep-proofs"]) == 0, capsys.readouterr().err


def test_check_detects_a_change(tmp_path: Path, capsys, monkeypatch) -> None:
    text = golden.GOLDEN_PATH.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert generate.render(doc) == text  # the writer is a pure function of the data
    monkeypatch.setattr(generate, "build", lambda **_: doc)  # skip a second regeneration
    bad = tmp_path / "golden.json"
    bad.write_text(text.replace("3.205830899221908339137259015917952e-05", "3.205830899221908339137259015917953e-05"))
    assert bad.read_text() != text
    assert generate.main(["--check", "--path", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "golden check failed" in err


def test_file_covers_the_catalogue_in_order() -> None:
    cases = all_cases()
    assert list(ENTRIES) == [c.id for c in cases]
    assert all(ENTRIES[c.id].case == c for c in cases)  # definitions round-trip through the file
    prov = golden.provenance()
    assert prov["catalogue_sha256"] == generate.catalogue_checksum(cases)
    assert prov["generator"] == golden.GENERATOR == "python -m focalspec.certified.generate --write"
    assert prov["mpmath"] == mpmath.__version__
    json.loads(golden.golden_text())  # strict JSON (no NaN/Infinity literals)


def _strings(x):
    if isinstance(x, list):
        for v in x:
            yield from _strings(v)
    elif x is not None:
        yield x


def test_certified_digits_at_least_30() -> None:
    for e in ENTRIES.values():
        assert e.digits >= 30, e.id
        for s in [*_strings(e.losses), *_strings(e.value), *_strings(e.grad)]:
            assert s in ("0", "inf", "-inf", "nan") or sig_digits(s) >= 30, (e.id, s)


def test_get_entry() -> None:
    assert golden.get_entry("seed000_fl_fg_easy").case.variant.gamma == 2
    with pytest.raises(SpecError, match="did you mean"):
        golden.get_entry("seed000_fl_fg_eazy")


# ----------------------------------------------------------------------------- closed forms


def fl_prob(p, y, gamma, alpha):
    """-alpha_t (1 - p_t)^gamma ln p_t for a hard target, written out."""
    p = mpf(p)
    pt = p if y == 1 else 1 - p
    at = 1 if alpha is None else (mpf(alpha) if y == 1 else 1 - mpf(alpha))
    return -at * (1 - pt) ** gamma * ln(pt)


@pytest.mark.parametrize(
    "case_id,p,y,gamma,alpha",
    [
        ("seed000_ce_fg_easy", "0.95", 1, 0, None),
        ("seed000_ce_bg_easy", "0.05", 0, 0, None),
        ("seed000_bce_fg_easy", "0.95", 1, 0, "0.25"),
        ("seed000_bce_bg_easy", "0.05", 0, 0, "0.25"),
        ("seed000_fl_fg_easy", "0.95", 1, 2, "0.25"),
        ("seed000_fl_bg_easy", "0.05", 0, 2, "0.25"),
        ("seed000_fl_fg_miscls", "0.05", 1, 2, "0.25"),
        ("seed000_fl_bg_miscls", "0.95", 0, 2, "0.25"),
        ("seed000_fl_fg_veryeasy", "0.99", 1, 2, "0.25"),
        ("seed000_fl_bg_veryeasy", "0.01", 0, 2, "0.25"),
        ("seed001_pos_ce", "0.02", 1, 0, None),
        ("seed001_neg_ce", "0.4", 0, 0, None),
    ],
)
def test_seed_values_match_closed_form(case_id, p, y, gamma, alpha) -> None:
    with mp.workdps(80):
        exact = fl_prob(p, y, gamma, alpha)
        # d/dp of -a_t (1-p_t)^g ln p_t, with dp_t/dp = +-1
        pt = mpf(p) if y == 1 else 1 - mpf(p)
        at = 1 if alpha is None else (mpf(alpha) if y == 1 else 1 - mpf(alpha))
        dpt = at * (gamma * (1 - pt) ** (gamma - 1) * ln(pt) - (1 - pt) ** gamma / pt) if gamma else -at / pt
        grad = dpt if y == 1 else -dpt
    e = ENTRIES[case_id]
    assert agree(e.losses, exact, 33)
    assert agree(e.grad, grad, 33)


def test_published_constants() -> None:
    # -ln 0.95, -ln 0.99 and -ln 0.05 to 30 digits (tables of natural logarithms)
    assert ENTRIES["seed000_ce_fg_easy"].losses.startswith("5.12932943875505334261961442546")
    assert ENTRIES["seed000_ce_fg_veryeasy"].losses.startswith("1.00503358535014411835488575585")
    assert ENTRIES["seed000_ce_fg_miscls"].losses.startswith("2.99573227355399099343522357614")
    assert ENTRIES["seed000_fl_fg_easy"].losses.startswith("3.2058308992219083")


def test_ratio_and_factor_quantities() -> None:
    # CE/FL = 1 / (alpha (1 - p_t)^2) exactly; factors are (1 - p_t)^2 exactly
    with mp.workdps(80):
        expected = [
            ("seed000_ratio_easy", 1600),
            ("seed000_ratio_veryeasy", 40000),
            ("seed000_ratio_miscls", mpf(1) / (mpf("0.25") * mpf("0.95") ** 2)),
            ("seed000_factor_fg_veryeasy", mpf("0.0001")),
            ("seed000_factor_bg_miscls", mpf("0.9801")),
            ("seed002_factor_pt0.9", mpf("0.01")),
            ("seed002_reduction_pt0.9", 100),
        ]
    for case_id, exact in expected:
        assert agree(ENTRIES[case_id].quantity["value"], exact, 33), case_id


def test_seed001_totals() -> None:
    with mp.workdps(80):
        assert agree(ENTRIES["seed001_lpos_sum_ce"].value, -10 * ln(mpf("0.02")))
        assert agree(ENTRIES["seed001_lneg_sum_ce"].value, -235 * ln(mpf("0.6")))
        assert agree(ENTRIES["seed001_lpos_sum_fl"].value, -10 * mpf("0.98") ** 2 * ln(mpf("0.02")))
        assert agree(ENTRIES["seed001_lneg_sum_fl"].value, -235 * mpf("0.4") ** 2 * ln(mpf("0.6")))


def soft_closed_forms(x, t, gamma):
    """The four soft-target conventions at logit x, target t, no alpha (from their definitions)."""
    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
    sp = lambda z: mpmath.log(1 + mpmath.exp(z))  # noqa: E731
    ce = t * sp(-x) + (1 - t) * sp(x)
    return {
        "canonical": (t * sig(-x) + (1 - t) * sig(x)) ** gamma * ce,
        "geometric": (1 - mpmath.exp(-ce)) ** gamma * ce,
        "margin": sig(-x * (2 * t - 1)) ** gamma * ce,
        "two_term": t * sig(-x) ** gamma * sp(-x) + (1 - t) * sig(x) ** gamma * sp(x),
    }


def test_soft_conventions_x2_t03() -> None:
    stated = {"canonical": 0.650, "geometric": 0.936, "margin": 0.727, "two_term": 1.156}
    with mp.workdps(80):
        forms = soft_closed_forms(mpf(2), mpf("0.3"), 2)
    for conv, approx in stated.items():
        got = ENTRIES[f"soft_{conv}_x2_t0.3"].losses
        assert round(float(got), 3) == approx, conv
        assert agree(got, forms[conv], 33), conv


def test_soft_grid_matches_closed_forms() -> None:
    for conv in ("canonical", "geometric", "margin", "two_term"):
        e = ENTRIES[f"soft_{conv}_grid"]
        for x, t, got in zip(e.case.inputs, e.case.targets, e.losses, strict=True):
            with mp.workdps(80):
                tt = mpf(t)
                if conv == "two_term":
                    a = mpf("0.25")  # weights alpha t and (1 - alpha)(1 - t) inside each term
                    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
                    sp = lambda z: mpmath.log(1 + mpmath.exp(z))  # noqa: E731
                    z = mpf(x)
                    exact = a * tt * sig(-z) ** 2 * sp(-z) + (1 - a) * (1 - tt) * sig(z) ** 2 * sp(z)
                else:
                    at = mpf("0.25") * tt + mpf("0.75") * (1 - tt)
                    exact = at * soft_closed_forms(mpf(x), tt, 2)[conv]
            assert agree(got, exact, 33), (conv, x, t)


def test_softmax_invariants() -> None:
    for suffix in ("", "_avec"):
        sm, sg = ENTRIES[f"softmax_c2_twin{suffix}"], ENTRIES[f"softmax_c2_twin{suffix}_sigmoid"]
        for a, b in zip(sm.losses, sg.losses, strict=True):
            assert agree(a, b, 33)
        for row, g in zip(sm.grad, sg.grad, strict=True):  # d/dz1 = d/dx, d/dz0 = -d/dx
            assert agree(row[1], g, 33) and agree(row[0], g[1:] if g.startswith("-") else "-" + g, 33)
    a, b = ENTRIES["symmetry_y1_a0.25"], ENTRIES["symmetry_y0_a0.75"]
    assert a.losses == b.losses
    assert [g[1:] if g.startswith("-") else "-" + g for g in a.grad] == b.grad
    e = ENTRIES["softmax_equal_logits"]
    with mp.workdps(80):
        exact = mpf("0.25") * (1 - mpf(1) / 5) ** 2 * ln(5)
    assert all(agree(v, exact, 33) for v in e.losses)
    # softmax is invariant under adding a constant to a row: every gradient row sums to 0
    row = ENTRIES["softmax_c1000_seeded"].mpf("grad")[0]
    with mp.workdps(80):
        scale = sum(abs(v) for v in row)
        assert abs(mpmath.fsum(row)) < scale * mpf(10) ** -30


def test_underflow_and_special_values() -> None:
    f32 = ENTRIES["underflow_y1_g2"].expected("float32")
    assert 0 < f32[2] < 2.0**-126  # x = 30: float32 subnormal
    assert f32[3] == 0.0  # x = 40: float32 zero
    f64 = ENTRIES["underflow_y1_g2"].expected("float64")
    assert 0 < f64[4] < 2.0**-1022 and f64[5] == 0.0
    with mp.workdps(80):  # y = 1, x = 40: 0.25 sigmoid(-40)^2 softplus(-40)
        exact = mpf("0.25") / (1 + mpmath.exp(40)) ** 2 * mpmath.log1p(mpmath.exp(-40))
    assert agree(ENTRIES["underflow_y1_g2"].losses[3], exact, 33)
    assert ENTRIES["empty_mean"].value == "nan"
    assert ENTRIES["empty_sum"].value == "0" and ENTRIES["empty_normalized"].value == "0"
    assert ENTRIES["inf_logits_g2"].losses == ["0", "inf", "inf", "0"]
    assert ENTRIES["nan_logit"].losses[0] == "nan"


def test_rounded_values_are_the_nearest_dtype_values() -> None:
    """Check the dtype columns with mpmath's own rounding at the dtype precision (normal range)."""
    bits = {"float64": 53, "float32": 24, "bfloat16": 8, "float16": 11}
    smallest = {"float64": 2.0**-1022, "float32": 2.0**-126, "bfloat16": 2.0**-126, "float16": 2.0**-14}
    largest = {"float64": 1.7e308, "float32": 3.4e38, "bfloat16": 3.3e38, "float16": 65504.0}
    checked = 0
    for e in ENTRIES.values():
        for dtype, p in bits.items():
            got = e.expected(dtype).ravel()
            for s, g in zip(np.asarray(e.losses, dtype=object).ravel(), got, strict=True):
                if s in ("0", "inf", "-inf", "nan"):
                    continue
                with mp.workprec(p):
                    want = float(+mpf(s))  # mpf(str) rounds the decimal once to p bits
                if smallest[dtype] <= abs(want) <= largest[dtype]:
                    assert g == want, (e.id, dtype, s)
                    checked += 1
    assert checked > 1000


def test_format_sig() -> None:
    with mp.workdps(50):
        assert format_sig(mpf(1600), 4) == "1.600e+03"
        assert format_sig(mpf("9.99996"), 3) == "1.00e+01"
        assert format_sig(-mpf("0.000123456"), 2) == "-1.2e-04"
        assert format_sig(mpf("2.5"), 1) == "2e+00"  # ties to even


# ----------------------------------------------------------------------------- errata


def test_parse_printed() -> None:
    assert golden.parse_printed("40,000") == (Decimal(40000), Decimal("1e4"))
    assert golden.parse_printed("2.51*10^-7") == (Decimal("2.51e-7"), Decimal("1e-9"))
    assert golden.parse_printed("0.051293294387550")[1] == Decimal("1e-15")
    assert golden.parse_printed("1600")[1] == Decimal(100)
    assert golden.parse_printed("235")[1] == Decimal(1)


def test_errata_verdicts() -> None:
    ers = {e.case_id: e for e in golden.errata()}
    assert set(ers) == {c.id for c in all_cases() if c.printed is not None}
    v = {k: e.verdict for k, e in ers.items()}
    assert v["seed000_fl_fg_easy"] == "correct"
    assert v["seed000_fl_bg_easy"] == "rounding/truncation" and "truncated" in ers["seed000_fl_bg_easy"].explanation
    assert "9.6175e-5" in ers["seed000_fl_bg_easy"].explanation
    # 1600 is the true ratio, but the printed arithmetic divides by 3.2058e-7 instead of 3.2058e-5
    e = ers["seed000_ratio_easy"]
    assert e.verdict == "wrong" and e.number_verdict == "correct"
    assert "3.2058e-7" in e.explanation and "100x too small" in e.explanation
    # 2.51e-7 is the right value, the formula printed with it squares (1 - 0.01) instead of (1 - 0.99)
    e = ers["seed000_fl_fg_veryeasy"]
    assert e.verdict == "wrong" and e.number_verdict == "correct" and "(1-0.01)^2" in e.explanation
    assert v["seed000_ratio_miscls"] == "wrong"  # 4.43, and 2.3 / 0.667 = 3.45 anyway
    assert v["seed000_ratio_veryeasy"] == "correct"
    assert v["seed000_ce_bg_miscls"] == "wrong"  # ...992, the value is ...99099
    assert v["seed001_pos_ce"] == "wrong" and v["seed001_lpos_sum_ce"] == "wrong"
    assert v["seed001_lneg_sum_ce"] == "wrong"
    assert v["seed002_factor_pt0.9"] == "correct" and v["seed002_reduction_pt0.9"] == "correct"


def test_hard_target_logit_cases_match_closed_form() -> None:
    """FL(x, y) = alpha_t sigmoid(-s)^gamma softplus(-s), s = x for y = 1 and -x for y = 0."""
    checked = 0
    for e in ENTRIES.values():
        v = e.case.variant
        if not e.id.startswith(("grid_", "sat_", "overflow_", "underflow_", "huge_", "small_")):
            continue
        assert v.activation == "sigmoid" and v.input_kind == "logits" and v.clip_eps is None
        for x, y, got in zip(e.case.inputs, e.case.targets, e.losses, strict=True):
            with mp.workdps(60):
                s = mpf(x) if y == 1 else -mpf(x)
                at = 1 if v.alpha is None else (mpf(v.alpha) if y == 1 else 1 - mpf(v.alpha))
                m = 1 / (1 + mpmath.exp(s))
                exact = at * (m**v.gamma if v.gamma else 1) * mpmath.log1p(mpmath.exp(-s))
            assert agree(got, exact, 33), (e.id, x, y)
            checked += 1
    assert checked > 500
