"""Misuse of ``focalspec check`` fails fast: one line on stderr, exit 2 (issue 24, item 6).

Option values are judged before any framework is imported or worker started; a callable given
without its colon gets "did you mean"; the first call of a callable (in its eager worker) tells
a wrong ``--framework`` and a KeyboardInterrupt apart from the checks' own failures.  Each case
runs ``python -m focalspec`` in a real process, as a user types it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
OPTION_S = 5.0  # a bare interpreter and the CLI, no framework (0.4-0.6 s here; CI is slower)
PROBE_S = 40.0  # the eager worker imports torch (and jax) and calls once (5-6 s here; it took 45 s to fail)


def check(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "focalspec", "check", *args], capture_output=True, text=True, env=env, timeout=300
    )
    return out, time.monotonic() - t0


def one_line_usage_error(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, (out.returncode, out.stdout[-1500:], out.stderr[-1500:])
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert not out.stdout.strip(), out.stdout[-1500:]  # no usage block, no pytest output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["torchvision", "--depth", "nonsense"], "argument --depth: invalid choice: 'nonsense'"),
        (["torchvision", "--timeout", "-1"], "--timeout must be a number >= 0, got -1"),
        (["torchvision", "--timeout", "-1.5"], "--timeout must be a number >= 0, got -1.5"),
        (["torchvision", "--memory-limit", "-2"], "--memory-limit must be a number >= 0"),
        (["torchvision", "--xfails", "/no/such/xfails.txt"], "--xfails: cannot read /no/such/xfails.txt"),
        (["torchvision", "--families", "golden,nonsense"], "--families: unknown nonsense"),
        (["torchvision", "--dtype", "float128"], "--dtype: unknown float128"),
        (["torchvision", "--require", "finite,everything"], "unknown tier everything"),
        (["torchvision", "--jobs", "0"], "--jobs must be >= 1"),
        (["torchvision", "--point", "-2.5"], "is not X:T"),
        (["torchvision", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["broken_impls.focal.careful", "--framework", "torch"], "did you mean broken_impls.focal:careful?"),
        (["torchvison"], "no adapter named 'torchvison'; did you mean torchvision?"),
    ],
)
def test_bad_option_values_fail_before_any_import(args: list[str], words: str) -> None:
    out, seconds = check(*args)
    line = one_line_usage_error(out)
    assert line.startswith("focalspec check: error: ") and words in line, line
    assert seconds < OPTION_S, f"{seconds:.1f} s"


def test_a_torch_callable_run_as_jax_is_named_by_the_first_call() -> None:
    out, seconds = check("broken_impls.focal:careful", "--framework", "jax", "--depth", "quick")
    line = one_line_usage_error(out)
    assert "fails on jax tensors" in line and "did you mean --framework torch?" in line, line
    assert seconds < PROBE_S, f"{seconds:.1f} s"


def test_a_callable_raising_keyboard_interrupt_is_named_as_such() -> None:
    out, seconds = check("broken_impls.declared:raises_keyboard_interrupt", "--framework", "torch", "--depth", "quick")
    line = one_line_usage_error(out)
    assert "raised KeyboardInterrupt" in line and "exited with status" not in line, line
    assert seconds < PROBE_S, f"{seconds:.1f} s"


@pytest.mark.parametrize("isolate", ["process", "thread"])
def test_a_keyboard_interrupt_on_some_inputs_fails_those_checks_by_name(tmp_path: Path, isolate: str) -> None:
    """Past the first call, a KeyboardInterrupt of the callable is that check's failure, named,
    and the worker serves the next call (it used to exit: "worker process exited with status 0");
    in a thread of the gate's own process it does not interrupt the gate."""
    import json

    res = tmp_path / "r.json"
    args = ["--framework", "torch", "--depth", "quick", "--dtype", "float64", "--mode", "eager", "--families", "golden"]
    out, _ = check("broken_impls.declared:interrupts_on_large", *args, "--json", str(res), "--isolate", isolate)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    tests = json.loads(res.read_text())["tests"]
    bad = [t for t in tests if t["outcome"] == "failed"]
    assert bad and all("the implementation raised KeyboardInterrupt" in t["message"] for t in bad)
    assert not any(t["fault"] for t in bad)  # a raise, not a dead worker
    assert sum(t["outcome"] == "passed" for t in tests) > 20
