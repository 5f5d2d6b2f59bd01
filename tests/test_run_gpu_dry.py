"""``benchmarks/run_gpu.sh --dry-run`` works on a machine without a GPU: it builds the package
tree, imports the frameworks and kernels, runs a small conformance selection on CPU (the
Triton kernel under the interpreter where triton is installed) and parses the bench command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "run_gpu.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="run_gpu.sh needs bash")
def test_dry_run_passes_without_a_gpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    assert "the bench command line parses" in proc.stderr
    results = json.loads((tmp_path / "conformance-dry.json").read_text())
    outcomes = [t["outcome"] for t in results["tests"]]
    assert outcomes.count("passed") > 50 and "failed" not in outcomes
    ran = [t for t in results["tests"] if t["outcome"] == "passed"]
    assert {t["device"] for t in ran} == {"cpu"}  # never passed off as a CUDA result
    has_triton = subprocess.run([sys.executable, "-c", "import triton"], capture_output=True).returncode == 0
    assert {t["mode"] for t in ran} == ({"triton-interpret"} if has_triton else {"eager"})


def test_unknown_argument_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "OUT": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 2 and "unknown argument" in proc.stderr
