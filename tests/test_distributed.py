"""The conformance suite under pytest-xdist writes the same results as a serial run: no entry
lost or duplicated, the same outcomes, grades, worst elements, failure tiers and faults, the
same sweeps, and one JSON written by the controller (workers never write it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("xdist")

from focalspec.conformance.suite.distributed import combination_of

TESTS = Path(__file__).resolve().parent
# a callable that hangs at +inf (2 s, past the 1 s timeout): passes, failures in tiers required and not,
# faults and not-run checks all have to travel from the workers
BASE = ["--focal-depth", "quick", "--focal-dtypes", "float32,float64", "--focal-modes", "eager", "--focal-timeout", "1"]
# (hang budget 1: after its first hang the rest of a dtype is "not run", in both runs in the same order)
VOLATILE = {"duration_s"}


def run(tmp_path: Path, name: str, impl: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "pytest", "--pyargs", "focalspec.conformance", "-q", "-p", "no:cacheprovider"]
    args += [*BASE, "--focal-impl", f"broken_impls.focal:{impl}", "--focal-framework", "torch"]
    proc = subprocess.run(
        [*args, "--focal-json", str(out), *extra], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, json.loads(out.read_text()), proc.stdout


def comparable(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tests = {}
    for t in doc["tests"]:
        assert t["nodeid"] not in tests, f"duplicated entry {t['nodeid']}"
        tests[t["nodeid"]] = {k: v for k, v in t.items() if k not in VOLATILE}
    return tests


@pytest.mark.slow
def test_xdist_results_equal_a_serial_run(tmp_path: Path) -> None:
    code_1, serial, _ = run(tmp_path, "serial", "hangs_on_inf", "--focal-hang-budget", "1")
    code_n, parallel, stdout = run(tmp_path, "parallel", "hangs_on_inf", "--focal-hang-budget", "1", "-n", "2")
    assert code_1 == code_n == 1, stdout[-2000:]
    a, b = comparable(serial), comparable(parallel)
    assert sorted(set(a) - set(b)) == [] and sorted(set(b) - set(a)) == [], "entries lost or added under -n 2"
    differ = {k: {f: (a[k][f], b[k].get(f)) for f in a[k] if a[k][f] != b[k].get(f)} for k in a if a[k] != b[k]}
    assert not differ, f"{len(differ)} entries differ, e.g. {next(iter(differ.items()))}"
    outcomes = {t["outcome"] for t in parallel["tests"]}
    assert {"passed", "failed", "skipped"} <= outcomes, outcomes
    assert {True, False} <= {t["tier_required"] for t in parallel["tests"] if t["outcome"] == "failed"}
    assert {"hang", "not-run"} <= {t["fault"] for t in parallel["tests"]}
    key = ("adapter", "device", "dtype", "mode", "gamma", "target")
    assert sorted(tuple(s[k] for k in key) for s in serial["sweeps"]) == sorted(
        tuple(s[k] for k in key) for s in parallel["sweeps"]
    )
    assert [x["name"] for x in serial["adapters"]] == [x["name"] for x in parallel["adapters"]]
    assert parallel["run"]["status"] == "finished"
    assert "focalspec conformance" in stdout and "tiers (* = required" in stdout


def test_one_worker_runs_one_combination() -> None:
    nodeid = "conformance/test_conformance.py::test_value[focalspec-torch-cpu-float32-eager-golden-seed-1]"
    assert combination_of(nodeid) == "focalspec-torch-cpu-float32-eager"
    grad = nodeid.replace("test_value", "test_grad")
    assert combination_of(grad) == combination_of(nodeid)
    assert combination_of(nodeid.replace("float32", "float64")) != combination_of(nodeid)
    assert combination_of("tests/test_x.py::test_y[a-b]") is None
