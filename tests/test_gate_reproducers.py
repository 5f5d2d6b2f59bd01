"""What a gate run prints can be acted on (issue 24, items 4 and 5).

* Every reproducer a gate run prints -- the per-check ``Reproduce:`` lines and the bisected
  ``--point`` ones, with negative and positive inputs -- runs as printed, through a shell, and
  reproduces: exit 1.
* One tally: pytest's line, the gate's verdict line, the results JSON and JUnit count the same
  checks as passed, failed, not required, xfailed and skipped (SPEC §10.5, ``results.TALLY``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")

from focalspec.conformance.suite.results import TALLY, tally_key
from focalspec.conformance.suite.tiers import UNREQUIRED_TEXT

TESTS = Path(__file__).resolve().parent
SMALL = ["--framework", "torch", "--depth", "quick", "--mode", "eager",
         "--families", "golden", "--case", "grid_g2_a0.25"]  # fmt: skip
REPRODUCER = re.compile(r"[Rr]eproduce(?: \([^)]*\))?: (focalspec check .*)$")


def _env(bin_dir: Path) -> dict[str, str]:
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PATH": os.pathsep.join([str(bin_dir), os.environ["PATH"]])}


@pytest.fixture(scope="module")
def shell_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``focalspec`` command on PATH (this interpreter's), so that a printed line runs verbatim."""
    folder = tmp_path_factory.mktemp("bin")
    script = folder / "focalspec"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m focalspec "$@"\n')
    script.chmod(0o755)
    return folder


def _sh(line: str, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, env=_env(bin_dir), timeout=600)


@pytest.mark.parametrize(
    ("target", "dtypes", "sign"),
    [
        ("broken_impls.declared:clamped_below", "float32", "-"),  # clamped at -4: fails at negative x only
        ("broken_impls.focal:one_minus_p", "bfloat16,float32", ""),  # 1 - p: fails at positive x, t = 1
    ],
)
def test_every_printed_reproducer_runs_as_printed(shell_bin: Path, target: str, dtypes: str, sign: str) -> None:
    run = _sh(f"focalspec check {target} {shlex.join(SMALL)} --dtype {dtypes}", shell_bin)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    lines = [m.group(1) for ln in run.stdout.splitlines() if (m := REPRODUCER.search(ln.strip()))]
    printed = list(dict.fromkeys(lines))
    points = [ln for ln in printed if "--point" in ln]
    assert points and all(f"--point {sign}" in ln and f"--point -{sign}" not in ln for ln in points), points
    assert any("--case" in ln for ln in printed), printed
    with ThreadPoolExecutor(2) as pool:  # two at a time: CI has two cores
        runs = list(pool.map(lambda ln: _sh(ln, shell_bin), printed))
    for line, rerun in zip(printed, runs, strict=True):
        verdict = rerun.stdout.strip().splitlines()[-1:] or [rerun.stderr]
        assert rerun.returncode == 1, f"{line}\n-> exit {rerun.returncode}: {verdict[0]}\n{rerun.stderr[-800:]}"
        assert verdict[0].startswith("focalspec check: FAIL"), verdict


# ----------------------------------------------------------------------------- one tally


def _counts(text: str) -> dict[str, int]:
    """'78 failed, 82 passed, 6 not required' -> {"failed": 78, ...} (pytest's plural 'errors' read as 'error')."""
    out = {k: 0 for k in TALLY}
    for n, word in re.findall(r"(\d+) ([a-z]+(?: required)?)", text):
        word = "error" if word == "errors" else word
        if word in out:
            out[word] = int(n)
    return out


def test_pytest_gate_json_and_junit_tell_one_tally(tmp_path: Path, shell_bin: Path) -> None:
    """A run with every kind of outcome: failures in required tiers, failures only at +-inf inputs
    (the extended tier, not required), an expected failure listed in --xfails, and skips."""
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("test_value[broken_impls.focal.one_minus_p-cpu-float32-eager-sat_naive_float32]  # known\n")
    res, junit = tmp_path / "r.json", tmp_path / "r.xml"
    args = ["--framework", "torch", "--depth", "quick", "--dtype", "float32", "--mode", "eager", "--families",
            "golden,edge", "--xfails", str(xfails), "--json", str(res), "--junitxml", str(junit)]  # fmt: skip
    run = _sh(f"focalspec check broken_impls.focal:one_minus_p {shlex.join(args)}", shell_bin)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    pytest_line = next(ln for ln in reversed(lines) if re.match(r"^=* ?\d+ \w+.* in [\d.]+s", ln))
    gate_line = lines[-1]
    assert gate_line.startswith("focalspec check: FAIL ")
    by_pytest = _counts(pytest_line)
    by_gate = _counts(gate_line.split(": ", 2)[2].split(" (")[0].split(";")[0])

    doc = json.loads(res.read_text())
    by_json = {k: doc["tally"][k.replace(" ", "_")] for k in TALLY}
    by_entries = Counter(tally_key(t) for t in doc["tests"])
    assert by_json == {k: by_entries.get(k, 0) for k in TALLY}

    by_junit = {k: 0 for k in TALLY}
    for case in ET.parse(junit).getroot().iter("testcase"):
        marks = [e for e in case if e.tag in ("failure", "error", "skipped")]
        if not marks:
            by_junit["passed"] += 1
        elif marks[0].tag in ("failure", "error"):
            by_junit["failed" if marks[0].tag == "failure" else "error"] += 1
        elif marks[0].get("type") != "pytest.xfail":
            by_junit["skipped"] += 1
        else:
            unrequired = (marks[0].get("message") or "").startswith(UNREQUIRED_TEXT)
            by_junit["not required" if unrequired else "xfailed"] += 1

    assert by_pytest == by_gate == by_json == by_junit, (pytest_line, gate_line, by_json, by_junit)
    for kind in ("passed", "failed", "not required", "xfailed", "skipped"):  # the run shows each kind
        assert by_json[kind] > 0, (kind, by_json)
    assert "xfailed" not in pytest_line or by_json["xfailed"] == 1  # the listed one only, not the unrequired


def test_a_run_failing_only_where_not_required_passes_and_says_so(shell_bin: Path) -> None:
    """PASS, the failures counted as not required on both lines, and the summary table's worst
    grade is that of the checks the verdict counts (it used to say "fail (acceptable)")."""
    args = ["--framework", "torch", "--depth", "quick", "--dtype", "float32", "--mode", "eager", "--families", "edge"]
    run = _sh(f"focalspec check broken_impls.declared:nan_at_infinity {shlex.join(args)}", shell_bin)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    pytest_line = next(ln for ln in reversed(lines) if re.match(r"^=* ?\d+ \w+.* in [\d.]+s", ln))
    assert lines[-1].startswith("focalspec check: PASS")
    n = _counts(pytest_line)["not required"]
    assert n > 0 and _counts(lines[-1])["not required"] == n and "xfailed" not in pytest_line
    row = next(ln for ln in lines if ln.startswith("broken_impls.declared.nan_at_infinity "))
    assert "fail (" not in row and row.rstrip().endswith("(acceptable)"), row
