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
    mant, exp = s.split("e")
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
