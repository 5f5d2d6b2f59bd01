"""``focalspec golden``: the done-when line, case lookups, errata, and one-line errors (exit 2),
both as a subprocess and in-process through focalspec.cli_main.main."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import mpmath
import numpy as np
import pytest

from focalspec.cli_main import main

mp = mpmath.mp


def fl_easy_fg():
    """-0.25 (1 - 0.95)^2 ln 0.95, the seed article's FL(FG), at 60 digits."""
    with mp.workdps(60):
        return -mpmath.mpf("0.25") * (1 - mpmath.mpf("0.95")) ** 2 * mpmath.log(mpmath.mpf("0.95"))


def digits_of(text: str) -> tuple[str, int]:
    """'3.2058...e-05' -> ('32058...', -5)."""
    m = re.fullmatch(r"(-?)(\d)\.(\d+)e([+-]\d+)", text)
    assert m, text
    return m.group(2) + m.group(3), int(m.group(4))


def expected_digits(x, n: int) -> tuple[str, int]:
    """n significant digits of x, rounded, from mpmath's own formatting (independent of focalspec)."""
    with mp.workdps(n + 30):
        s = mpmath.nstr(x, n, strip_zeros=False, min_fixed=1, max_fixed=0)
    mant, exp = s.split("e") if "e" in s else (s, "0")
    return mant.replace(".", "").lstrip("-"), int(exp)


def loss_line(out: str) -> str:
    for line in out.splitlines():
        if line.startswith("loss "):
            return line.split()[1]
    raise AssertionError(out)


def test_done_when_subprocess() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "focalspec", "golden", "--x", "0.95", "--kind", "prob", "--y", "1",
         "--alpha", "0.25", "--gamma", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "3.2058308992219083" in r.stdout and "e-05" in r.stdout
    assert digits_of(loss_line(r.stdout)) == expected_digits(fl_easy_fg(), 34)


def test_digits_and_dtype(capsys) -> None:
    assert main(["golden", "--x", "0.95", "--kind", "prob", "--y", "1", "--digits", "50", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert digits_of(loss_line(out)) == expected_digits(fl_easy_fg(), 50)
    line = next(ln for ln in out.splitlines() if ln.startswith("loss float32"))
    with mp.workprec(24):
        want = np.float32(float(+fl_easy_fg()))
    assert np.float32(line.split()[2]) == want


def test_json_and_grad(capsys) -> None:
    assert main(["golden", "--x", "2", "--y", "0.3", "--soft", "--alpha", "none", "--variant", "geometric",
                 "--grad", "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert d["variant"]["soft_target"] == "geometric" and d["variant"]["alpha"] is None
    assert round(float(d["losses"]), 3) == 0.936 and "grad" in d


def test_case_lookup_and_more_digits_agree(capsys) -> None:
    assert main(["golden", "seed000_fl_fg_easy"]) == 0
    stored = loss_line(capsys.readouterr().out)
    assert main(["golden", "seed000_fl_fg_easy", "--digits", "45"]) == 0
    fresh = loss_line(capsys.readouterr().out)
    assert digits_of(stored) == expected_digits(fl_easy_fg(), 34)
    assert digits_of(fresh) == expected_digits(fl_easy_fg(), 45)


def test_ratio_case_shows_quantity(capsys) -> None:
    assert main(["golden", "seed000_ratio_easy"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^quantity\s+1\.6000+e\+03", out, re.M)


def test_softmax_row(capsys) -> None:
    assert main(["golden", "--softmax", "--x", "2,0,-1", "--y", "0", "--alpha", "none", "--gamma", "0"]) == 0
    got = loss_line(capsys.readouterr().out.replace("loss[0]", "loss "))
    with mp.workdps(60):
        z = [mpmath.mpf(v) for v in (2, 0, -1)]
        ce = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z)) - z[0]
    assert digits_of(got) == expected_digits(ce, 34)


def test_list_and_errata(capsys) -> None:
    assert main(["golden", "--list", "--tag", "ratio"]) == 0
    out = capsys.readouterr().out
    assert "seed000_ratio_easy" in out and out.strip().endswith("4 case(s)")
    assert main(["golden", "--errata"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("seed000_ratio_easy") :].splitlines()
    assert "[wrong]" in block[0] and "3.2058e-7" in block[1]
    assert main(["golden", "--errata", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["verdict"] for r in rows} == {"correct", "rounding/truncation", "wrong"}


BAD = [
    (["golden", "seed000_fl_fg_eazy"], "did you mean seed000_fl_fg_easy"),
    (["golden", "--x", "1", "--y", "1", "--gamma", "-1"], "gamma"),
    (["golden", "--x", "1", "--y", "1", "--alpha", "1.5"], "alpha"),
    (["golden", "--x", "1", "--y", "2"], "--y must be 0 or 1"),
    (["golden", "--x", "0.9.5", "--y", "1"], "malformed number for --x"),
    (["golden", "--x", "1", "--y", "1", "--gamma", "two"], "malformed number for --gamma"),
    (["golden", "seed000_fl_fg_easy", "--x", "1"], "either a CASE_ID or --x"),
    (["golden", "seed000_fl_fg_easy", "--gamma", "1"], "only apply to --x"),
    (["golden", "--x", "1.5", "--kind", "prob", "--y", "1"], "outside [0, 1]"),
    (["golden", "--x", "1"], "--y"),
    (["golden"], "give a CASE_ID"),
    (["golden", "--list", "--tag", "nope"], "unknown tag"),
    (["golden", "--x", "1,2", "--y", "1"], "--y has 1 values but --x has 2"),
    (["golden", "--softmax", "--x", "1,2", "--y", "5"], "out of range"),
    (["golden", "--x", "1", "--y", "1", "--digits", "0"], "--digits"),
]


@pytest.mark.parametrize("argv,fragment", BAD, ids=[" ".join(a[1:]) or "none" for a, _ in BAD])
def test_errors_in_process(argv, fragment, capsys) -> None:
    assert main(argv) == 2
    cap = capsys.readouterr()
    err = cap.err
    assert err.startswith("focalspec golden: error:") and err.count("\n") == 1, err
    assert fragment in err
    assert cap.out == ""


@pytest.mark.parametrize("argv", [BAD[0][0], BAD[3][0], BAD[6][0]])
def test_errors_subprocess(argv) -> None:
    r = subprocess.run([sys.executable, "-m", "focalspec", *argv], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def test_clip_scope_of_an_adhoc_value(capsys: pytest.CaptureFixture[str]) -> None:
    """x = 20, y = 1 beyond Keras' clip: clipped everywhere the factor freezes at eps^2 and the
    gradient is 0; clipped in the cross-entropy only (Keras binary) the factor keeps falling."""
    base = ["golden", "--x", "20", "--y", "1", "--clip-eps", "1e-7", "--grad", "--json"]
    assert main(base) == 0
    everywhere = json.loads(capsys.readouterr().out)
    assert main([*base, "--clip-scope", "ce"]) == 0
    in_ce = json.loads(capsys.readouterr().out)
    assert in_ce["variant"]["clip_scope"] == "ce" and "clip_scope" not in everywhere["variant"]
    assert float(everywhere["grad"]) == 0 and float(in_ce["grad"]) < 0
    assert float(in_ce["losses"]) < 1e-3 * float(everywhere["losses"])


# ----------------------------------------------------------------------------- issue 28: a docs writer's lookups
# Each test below reproduces one bullet of the "Why" (each failed before the fix); the expected
# numbers are closed forms evaluated here in mpmath, or the numbers Keras' own docstring prints.


def _fl_logit(x, t: int, gamma, alpha):
    """-alpha_t (1 - p_t)^gamma log p_t of a logit (an mpf), by hand."""
    p = 1 / (1 + mpmath.exp(-x))
    pt = p if t == 1 else 1 - p
    at = 1 if alpha is None else (alpha if t == 1 else 1 - alpha)
    return -at * (1 - pt) ** gamma * mpmath.log(pt)


def _value(out: str) -> str:
    return next(ln.split()[1] for ln in out.splitlines() if ln.startswith("value "))


def _f32(s: str):
    return mpmath.mpf(float(np.float32(s)))  # the exact float32 value (float32 -> float64 is exact)


def test_negative_list_as_typed(capsys) -> None:
    """`--x -18.6,0.51,2.94` failed with 'argument --x: expected one argument'."""
    assert main(["golden", "--x", "-18.6,0.51,2.94", "--y", "0,1,0", "--reduction", "sum", "--alpha", "none"]) == 0
    got = _value(capsys.readouterr().out)
    with mp.workdps(60):
        want = mpmath.fsum(_fl_logit(mpmath.mpf(x), t, 2, None) for x, t in (("-18.6", 0), ("0.51", 1), ("2.94", 0)))
    assert digits_of(got) == expected_digits(want, 34)
    r = subprocess.run([sys.executable, "-m", "focalspec", "golden", "--x", "-2.5", "--y", "1", "--gamma", "0",
                        "--alpha", "none"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    with mp.workdps(60):
        assert digits_of(loss_line(r.stdout)) == expected_digits(mpmath.log1p(mpmath.exp(mpmath.mpf("2.5"))), 34)


def test_help_says_what_is_exact_and_what_float64(capsys) -> None:
    """The docstring claimed every number is an exact decimal; parameters are float64 (SPEC)."""
    with pytest.raises(SystemExit):
        main(["golden", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--x 0.95 is 95/100" in out
    assert "--alpha, --gamma, --label-smoothing and --clip-eps are float64" in out
    assert "--x -18.6,0.51" in out and "keras-sum" in out and "--input-dtype" in out


def test_per_class_alpha_vector(capsys) -> None:
    """`--alpha 0.2,0.8,0.8` was 'malformed number'."""
    assert main(["golden", "--softmax", "--x", "2,0,-1", "--y", "2", "--alpha", "0.2,0.8,0.8"]) == 0
    got = loss_line(capsys.readouterr().out.replace("loss[0]", "loss "))
    with mp.workdps(60):
        z = [mpmath.mpf(v) for v in (2, 0, -1)]
        p2 = mpmath.exp(z[2]) / mpmath.fsum(mpmath.exp(v) for v in z)
        want = -mpmath.mpf(0.8) * (1 - p2) ** 2 * mpmath.log(p2)
    assert digits_of(got) == expected_digits(want, 34)


def test_renormalize(capsys) -> None:
    """The variant had renormalize; the CLI had no flag for it."""
    assert main(["golden", "--softmax", "--kind", "probs", "--x", "0.2,0.3,0.1", "--y", "1", "--renormalize"]) == 0
    got = loss_line(capsys.readouterr().out.replace("loss[0]", "loss "))
    with mp.workdps(60):
        want = -mpmath.mpf(0.25) * mpmath.mpf("0.5") ** 2 * mpmath.log(mpmath.mpf("0.5"))  # 0.3 / 0.6
    assert digits_of(got) == expected_digits(want, 34)


def test_batched_softmax_rows(capsys) -> None:
    """Softmax took one row per call."""
    assert main(["golden", "--softmax", "--x", "2,0,-1", "--x", "0,1,0", "--y", "0", "--y", "2", "--alpha", "none",
                 "--gamma", "0", "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    with mp.workdps(60):
        for row, k, got in (((2, 0, -1), 0, d["losses"][0]), ((0, 1, 0), 2, d["losses"][1])):
            z = [mpmath.mpf(v) for v in row]
            want = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z)) - z[k]
            assert digits_of(got) == expected_digits(want, 34)
    assert main(["golden", "--softmax", "--x", "2,0,-1;0,1,0", "--y", "0,2", "--alpha", "none", "--gamma", "0",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["losses"] == d["losses"]  # the same batch, written as ';' rows


KERAS_X, KERAS_Y = (("-18.6", "0.51"), ("2.94", "-12.8")), ((0, 1), (0, 0))


def _keras_rows(gamma: int, alpha=None) -> list:
    """Per-sample losses of Keras' docstring example 2: the mean over the last axis, float32 inputs."""
    return [mpmath.fsum(_fl_logit(_f32(x), t, gamma, alpha) for x, t in zip(xr, yr, strict=True)) / 2
            for xr, yr in zip(KERAS_X, KERAS_Y, strict=True)]  # fmt: skip


@pytest.mark.parametrize(
    "extra,gamma,printed,combine",
    [
        (["--reduction", "keras-sum"], 4, "1.222", lambda r: r[0] + r[1]),
        (["--reduction", "keras-mean"], 3, "0.647", lambda r: (r[0] + r[1]) / 2),
        (["--reduction", "keras-mean", "--sample-weight", "0.8,0.2"], 3, "0.133",
         lambda r: (_f32("0.8") * r[0] + _f32("0.2") * r[1]) / 2),
        (["--reduction", "keras-weighted-mean", "--sample-weight", "0.8,0.2"], 3, None,
         lambda r: (_f32("0.8") * r[0] + _f32("0.2") * r[1]) / (_f32("0.8") + _f32("0.2"))),
    ],
    ids=["sum", "mean", "sample-weight", "weighted-mean"],
)
def test_keras_reductions_by_name(extra, gamma, printed, combine, capsys) -> None:
    """`--reduction sum` printed 2.4438 where Keras prints 1.222: its sum is a sum of row means."""
    argv = ["golden", "--x", "-18.6,0.51", "--x", "2.94,-12.8", "--y", "0,1", "--y", "0,0", "--alpha", "none",
            "--gamma", str(gamma), "--input-dtype", "float32", *extra]  # fmt: skip
    assert main(argv) == 0
    got = _value(capsys.readouterr().out)
    with mp.workdps(60):
        want = combine(_keras_rows(gamma))
    assert digits_of(got) == expected_digits(want, 34)
    if printed:  # Keras' docstring number, at its printed digits
        assert round(float(got), len(printed) - 2) == float(printed)


def test_class_weight_is_a_per_label_sample_weight(capsys) -> None:
    argv = ["golden", "--x", "0.5;-1;2", "--y", "1;0;1", "--gamma", "0", "--alpha", "none", "--reduction",
            "keras-mean", "--class-weight", "0.25,3"]  # fmt: skip
    assert main(argv) == 0
    got = _value(capsys.readouterr().out)
    with mp.workdps(60):
        w = {0: mpmath.mpf("0.25"), 1: mpmath.mpf(3)}
        terms = (("0.5", 1), ("-1", 0), ("2", 1))
        want = mpmath.fsum(w[t] * _fl_logit(mpmath.mpf(x), t, 0, None) for x, t in terms) / 3
    assert digits_of(got) == expected_digits(want, 34)


def test_input_dtype_rounds_the_inputs(capsys) -> None:
    """Reproducing a float32 print needed the exact decimal of float32(0.95) typed by hand."""
    base = ["golden", "--x", "0.95", "--kind", "prob", "--y", "1", "--dtype", "float32"]
    assert main([*base, "--input-dtype", "float32"]) == 0
    rounded = loss_line(capsys.readouterr().out)
    assert main([*base[:2], "0.949999988079071044921875", *base[3:]]) == 0  # float32(0.95), exactly
    assert loss_line(capsys.readouterr().out) == rounded
    assert main(base) == 0
    assert loss_line(capsys.readouterr().out) != rounded
    # --round-params: alpha 0.1 becomes float32(0.1) too
    assert main(["golden", "--x", "1", "--y", "1", "--alpha", "0.1", "--input-dtype", "float32", "--round-params"]) == 0
    got = loss_line(capsys.readouterr().out)
    with mp.workdps(60):
        assert digits_of(got) == expected_digits(_fl_logit(mpmath.mpf(1), 1, 2, _f32("0.1")), 34)


def test_two_term_on_probabilities(capsys) -> None:
    """`--variant two_term` refused `--kind prob`, the convention of focal-loss (PyPI)."""
    assert main(["golden", "--x", "0.3", "--kind", "prob", "--y", "0.6", "--soft", "--variant", "two_term",
                 "--alpha", "none", "--gamma", "2"]) == 0  # fmt: skip
    got = loss_line(capsys.readouterr().out)
    with mp.workdps(60):
        p, t = mpmath.mpf("0.3"), mpmath.mpf("0.6")
        want = -t * (1 - p) ** 2 * mpmath.log(p) - (1 - t) * p**2 * mpmath.log(1 - p)
    assert digits_of(got) == expected_digits(want, 34)


def test_status_proven_is_printed(capsys) -> None:
    assert main(["golden", "seed000_fl_fg_easy"]) == 0
    assert re.search(r"^status\s+proven", capsys.readouterr().out, re.M)
    assert main(["golden", "--x", "0.95", "--kind", "prob", "--y", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "proven" and d["command"].startswith("focalspec golden --x 0.95")


BAD_28 = [
    (["golden", "--x", "1", "--y", "1", "--alpha", "0.2,0.8"], "per-class alpha vector needs activation='softmax'"),
    (["golden", "--softmax", "--x", "1,2,3", "--y", "0", "--alpha", "0.2,0.8"], "alpha has 2 entries"),
    (["golden", "--x", "1", "--y", "1", "--renormalize"], "renormalize applies to softmax on probabilities only"),
    (["golden", "--x", "1", "--y", "1", "--sample-weight", "2"], "go with a library reduction"),
    (["golden", "--x", "1,2", "--y", "1,1", "--reduction", "keras-mean", "--sample-weight", "1,2"], "1 sample"),
    (["golden", "--x", "1", "--y", "1", "--round-params"], "round_params needs input_dtype"),
    (["golden", "--x", "1,2;3", "--y", "1,1;1"], "same number of values"),
    (["golden", "--softmax", "--x", "1,2", "--x", "1,2", "--y", "0"], "1 target(s) for 2 softmax sample(s)"),
    (["golden", "--x", "1", "--kind", "prob", "--y", "1", "--variant", "margin"], "logits without clipping only"),
]


@pytest.mark.parametrize("argv,fragment", BAD_28, ids=[" ".join(a[1:]) for a, _ in BAD_28])
def test_new_options_fail_in_one_line(argv, fragment, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("focalspec golden: error:") and err.count("\n") == 1 and fragment in err, err


def test_printed_numbers_of_a_library_are_checked(capsys) -> None:
    """Keras' binary_focal_crossentropy docstring: [0.330, 0.206] for gamma=2 is right; the
    [0.916, 0.714] it prints for the same call (default gamma=2) are the gamma=0 values."""
    base = ["golden", "--x", "0.6,0.4", "--x", "0.4,0.6", "--y", "0,1", "--y", "0,0", "--kind", "probs",
            "--alpha", "none", "--clip-eps", "1e-7", "--clip-scope", "ce", "--reduction", "keras-none",
            "--input-dtype", "float32"]  # fmt: skip
    assert main([*base, "--dtype", "float32", "--printed", "0.330,0.206"]) == 0
    assert main([*base, "--printed", "0.916,0.714"]) == 1
    out = capsys.readouterr().out
    assert out.count("[wrong]") == 2
    assert main([*base, "--gamma", "0", "--printed", "0.916,0.714", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [v["verdict"] for v in d["printed"]] == ["correct", "correct"]
    with mp.workdps(60):  # the per-sample values by hand: mean over the last axis of the BCE terms
        rows = [[("0.6", 0), ("0.4", 1)], [("0.4", 0), ("0.6", 0)]]
        want = [mpmath.fsum(-mpmath.log(_f32(p) if t else 1 - _f32(p)) for p, t in r) / 2 for r in rows]
    assert [digits_of(v) for v in d["value"]] == [expected_digits(w, 34) for w in want]
    assert main([*base, "--printed", "0.33"]) == 2  # one number for two values
    assert "--printed has 1 number(s) for 2 certified value" in capsys.readouterr().err
