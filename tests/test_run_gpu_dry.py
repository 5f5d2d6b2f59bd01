"""``benchmarks/run_gpu.sh --dry-run`` on a machine without a GPU: every phase runs on the CPU
under its own hard budget, writes its own files to $OUT and records itself in phases.tsv; a
phase that crashes or overruns its budget leaves every other phase's results in place."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run_gpu.sh"
PHASES = ["card", "versions", "conf-triton", "conf-pallas", "conf-torch", "bench-eager", "bench-compiled",
          "bench-pallas"]  # fmt: skip
needs_tools = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("timeout") is None, reason="run_gpu.sh needs bash and timeout"
)


def _has(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def _dry_run(out: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]:
    full = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "CUDA_VISIBLE_DEVICES": "", **env}
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], env=full, capture_output=True, text=True, timeout=600)
    with (out / "phases.tsv").open() as f:
        rows = {r["phase"]: r for r in csv.DictReader(f, delimiter="\t")}
    return proc, rows


# the CI run keeps to a few phases' worth of work: the conformance phases on triton only
# (pallas and torch interpreted take minutes on 2 cores; their budgets stop them), the benches
# at their smallest size
FAST = {
    "BUDGET_CONF_PALLAS": "8",
    "BUDGET_CONF_TORCH": "8",
    "BUDGET_BENCH_COMPILED": "8",
    "BUDGET_BENCH_PALLAS": "8",
    "BUDGET_VERSIONS": "60",
}


@needs_tools
def test_every_phase_reports_and_a_crash_keeps_the_others(tmp_path: Path) -> None:
    """conf-pallas is made to crash (SIGSEGV, as an import of torch with TensorFlow did): the script
    still exits 0, records 139 for it, and every other phase runs and writes its files; the
    interpreted Triton conformance before it is complete and never labelled CUDA."""
    proc, rows = _dry_run(tmp_path, FAIL_PHASE="conf-pallas", **FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(rows) == PHASES
    assert rows["conf-pallas"]["exit"] == "139"
    for name in PHASES:
        assert (tmp_path / f"{name}.log").exists(), name
    for name in ("conf-torch", "bench-compiled", "bench-pallas"):  # stopped at 8 s, or done
        assert int(rows[name]["wall_s"]) <= 8 + 6, rows[name]
    assert rows["card"]["exit"] == "0"
    assert "torch" in (tmp_path / "versions.log").read_text()
    if _has("triton"):
        assert rows["conf-triton"]["exit"] == "0", (tmp_path / "conf-triton.log").read_text()[-2000:]
        results = json.loads((tmp_path / "conformance-triton.json").read_text())
        outcomes = [t["outcome"] for t in results["tests"]]
        assert outcomes.count("passed") > 50 and "failed" not in outcomes
        ran = [t for t in results["tests"] if t["outcome"] == "passed"]
        assert {t["device"] for t in ran} == {"cpu"} and {t["mode"] for t in ran} == {"triton-interpret"}
    if _has("torchvision") and _has("triton"):
        bench = json.loads(next(tmp_path.glob("gpu-*-eager.json")).read_text())
        ran = [r for r in bench["results"] if r["median_s"] is not None]
        assert ran and {r["device"] for r in ran} == {"cpu"}  # never passed off as a CUDA result
        assert rows["bench-eager"]["exit"] in ("0", "1")  # 1: a shipped implementation was wrong (a finding)


@needs_tools
def test_a_phase_past_its_budget_is_stopped(tmp_path: Path) -> None:
    """A hang is stopped at the budget (124, or 137 after the KILL) and the total budget skips the rest."""
    proc, rows = _dry_run(tmp_path, BUDGET_VERSIONS="1", TOTAL_S="12", BUDGET_CONF_TRITON="30")
    assert proc.returncode == 0
    assert rows["versions"]["exit"] in ("124", "137") and int(rows["versions"]["wall_s"]) <= 7
    assert rows["bench-pallas"]["exit"] == "skipped"


def test_unknown_argument_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "OUT": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 2 and "unknown argument" in proc.stderr


def test_the_symlinked_tree_has_every_part_of_the_namespace() -> None:
    """The device has no installed focalspec: run_gpu.sh builds the namespace from symlinks, and a part
    missing there (benchmarks/, certified/ once were) fails only on the GPU, where time is scarce."""
    import re
    import tomllib

    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    parts = {d.split("/")[0] for name, d in dirs.items() if name != "focalspec"}
    loop = re.search(r"^for part in ([a-z ]+); do", SCRIPT.read_text(), re.M)
    assert loop, "run_gpu.sh: the 'for part in ...' symlink loop is gone"
    assert parts <= set(loop.group(1).split()), f"run_gpu.sh does not link {sorted(parts - set(loop.group(1).split()))}"
