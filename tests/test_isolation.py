"""The gate survives the code it judges (SPEC §10.6): crashes, hangs, memory blow-ups, side
effects and contract breaches each fail their own checks with the cause named in the terminal
summary, the JSON and the JUnit, and the checks on which the implementation behaves keep their
verdicts.  The misbehaving callables are in ``tests/broken_impls/misbehaving.py``; each is
``careful`` on inputs of at most 64 elements.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from focalspec.cli_main import main
from focalspec.conformance.suite.families import SuiteCase
from focalspec.conformance.suite.isolation import FaultBudget, ImplementationFault, NotRun, ProcessCaller, Recipe

TESTS = Path(__file__).resolve().parent
IMPL = "broken_impls.misbehaving"
F32 = ["--depth", "quick", "--dtype", "float32", "--mode", "eager"]
F32 += ["--framework", "torch", "--normalized", "normalized"]
SMALL = 64


def gate(tmp_path: Path, name: str, *extra: str) -> tuple[int, dict[str, Any], str, float]:
    """``focalspec check`` in-process: (exit code, results JSON, JUnit text, seconds)."""
    js, xml = tmp_path / f"{name}.json", tmp_path / f"{name}.xml"
    t0 = time.perf_counter()
    code = main(["check", f"{IMPL}:{name}", *F32, *extra, "--json", str(js), "--junitxml", str(xml)])
    seconds = time.perf_counter() - t0
    return code, json.loads(js.read_text()), xml.read_text(), seconds


def failed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in doc["tests"] if t["outcome"] in ("failed", "error")]


def small_case_ids() -> set[str]:
    from focalspec.conformance.suite import families as fam

    cases, _ = fam.build("quick", fam.FAMILIES)
    return {c.id for c in cases if isinstance(c, SuiteCase) and c.n_elements <= SMALL}


def passes_on_small(doc: dict[str, Any]) -> int:
    small = small_case_ids()
    assert small
    on_small = [t for t in doc["tests"] if t["case_id"] in small and t["outcome"] in ("passed", "failed")]
    bad = [t["nodeid"] for t in on_small if t["outcome"] != "passed"]
    assert not bad, f"checks on small inputs lost their verdict: {bad[:3]}"
    return len(on_small)


# ----------------------------------------------------------------------------- process faults


def test_a_segfault_fails_the_large_cases_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, junit, _ = gate(tmp_path, "segfaults_on_large")
    out = capsys.readouterr().out
    assert code == 1
    bad = failed(doc)
    assert bad and all(t["fault"] == "crash" and "crashed its worker process with SIGSEGV" in t["message"] for t in bad)
    assert passes_on_small(doc) > 100
    assert doc["run"]["status"] == "finished"
    assert "checks crashed" in out and "FAIL" in out
    assert junit.count("SIGSEGV") >= len(bad)


@pytest.mark.parametrize("name", ["spins_on_large", "sleeps_in_c_on_large"])
def test_a_hang_costs_a_few_timeouts_then_the_rest_is_not_run(tmp_path: Path, name: str) -> None:
    """A Python loop and a C-level sleep alike: the worker is killed at the timeout; after 3 hangs
    (--hang-budget) the other checks of that dtype and mode are failed as not run."""
    code, doc, junit, seconds = gate(tmp_path, name, "--timeout", "2")
    assert code == 1
    faults = [t["fault"] for t in failed(doc)]
    assert set(faults) == {"hang", "not-run"}, faults
    hung = [t for t in failed(doc) if t["fault"] == "hang"]
    assert len({t["case_id"] for t in hung}) == 3  # value and grad share one call
    assert all("hung: no result within 2 s" in t["message"] for t in hung)
    assert all("hung 3 times in float32 eager" in t["message"] for t in failed(doc) if t["fault"] == "not-run")
    assert passes_on_small(doc) > 100
    assert seconds < 60, f"{name}: {seconds:.1f} s"
    assert "not run" in junit


def test_the_hanging_callable_of_the_issue_finishes_in_a_minute(tmp_path: Path) -> None:
    """float32, eager, default depth, --timeout 5: <= 60 s (it took 502 s with abandoned threads)."""
    t0 = time.perf_counter()
    js = tmp_path / "r.json"
    args = [*F32[2:], "--timeout", "5", "--json", str(js)]
    code = main(["check", f"{IMPL}:spins_on_large", *args])
    seconds = time.perf_counter() - t0
    assert code == 1 and seconds <= 60, f"exit {code} in {seconds:.1f} s"
    assert {t["fault"] for t in failed(json.loads(js.read_text()))} == {"hang", "not-run"}


def test_a_memory_blow_up_is_killed_at_the_limit(tmp_path: Path) -> None:
    code, doc, junit, _ = gate(tmp_path, "hoards_memory_on_large", "--memory-limit", "1")
    assert code == 1
    bad = failed(doc)
    assert bad and all(t["fault"] == "memory" for t in bad)
    assert all("exceeded the memory limit" in t["message"] and "> 1 GiB" in t["message"] for t in bad)
    assert passes_on_small(doc) > 100
    assert "--focal-memory-limit" in junit


def test_the_run_budget_fails_what_it_could_not_run(tmp_path: Path) -> None:
    code, doc, _, _ = gate(tmp_path, "mutates_inputs", "--budget", "0.001", "--case", "rand_*")
    assert code == 1
    assert failed(doc) and all(t["fault"] == "not-run" and "wall-clock budget" in t["message"] for t in failed(doc))


# ----------------------------------------------------------------------------- contracts


@pytest.mark.parametrize(
    ("name", "contract", "words"),
    [
        ("mutates_inputs", "inputs_unchanged", "mutated its arguments in place: inputs:"),
        ("nondeterministic", "deterministic", "two calls on the same inputs differ"),
        ("returns_python_float", "returns_tensor", "returned a float, not a torch.Tensor (reduction 'mean')"),
        ("leaks_a_graph", "no_grad_leak", "requires grad (grad_fn MulBackward0)"),
    ],
)
def test_each_contract_breach_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, contract: str, words: str
) -> None:
    code, doc, junit, _ = gate(tmp_path, name, "--case", "contract_*")
    assert code == 1
    bad = [t for t in failed(doc) if t["case_id"] == f"contract_{contract}"]
    assert bad and all(words in t["message"] and t["fault"] == "contract" for t in bad), [t["message"] for t in bad]
    assert words in junit
    assert f"contract_{contract}" in capsys.readouterr().out


def test_careful_callable_keeps_every_contract(tmp_path: Path) -> None:
    js = tmp_path / "r.json"
    code = main(["check", "broken_impls.focal:careful", *F32, "--dtype", "float64", "--case", "contract_*",
                 "--json", str(js)])  # fmt: skip
    doc = json.loads(js.read_text())
    ran = {t["case_id"]: t["outcome"] for t in doc["tests"]}
    assert code == 0
    assert ran == {
        "contract_returns_tensor": "passed",
        "contract_dtype_shape": "passed",
        "contract_inputs_unchanged": "passed",
        "contract_deterministic": "passed",
        "contract_no_grad_leak": "passed",
    }


# ----------------------------------------------------------------------------- results survive the run


def _spawn_gate(tmp_path: Path, name: str, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "focalspec", "check", f"{IMPL}:{name}", *F32, *extra,
           "--json", str(js), "--junitxml", str(xml)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, js, xml


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float) -> dict[str, Any]:
    """The first snapshot at ``path`` holding a passed check (the gate still running)."""
    deadline = time.monotonic() + seconds
    while True:
        if path.exists():
            try:
                doc = json.loads(path.read_text())
            except ValueError:
                doc = {}
            if any(t["outcome"] == "passed" for t in doc.get("tests", [])):
                return doc
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0]
            raise AssertionError(f"no snapshot with a pass after {seconds} s (exit {proc.poll()}): {out}")
        time.sleep(0.2)


def test_sigterm_writes_what_was_completed(tmp_path: Path) -> None:
    """A CI runner cancelling the job (SIGTERM) while a call hangs: JSON and JUnit hold the
    completed checks; the periodic snapshot exists already while it runs."""
    proc, js, xml = _spawn_gate(tmp_path, "spins_on_large", "--timeout", "600")
    snap = _wait_for(js, proc, 240)
    assert snap["run"]["status"] == "running"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    doc = json.loads(js.read_text())
    assert doc["run"]["status"] == "interrupted"
    assert sum(t["outcome"] == "passed" for t in doc["tests"]) >= sum(t["outcome"] == "passed" for t in snap["tests"])
    cases = ET.parse(xml).getroot().iter("testcase")
    assert sum(1 for _ in cases) >= len(snap["tests"])


def test_a_killed_gate_leaves_its_snapshot_and_no_worker(tmp_path: Path) -> None:
    """SIGKILL of the gate itself (nothing can run after it): the snapshot stays, and the worker,
    spinning in the implementation, exits on its own once its parent is gone."""
    proc, js, _ = _spawn_gate(tmp_path, "spins_on_large", "--timeout", "600")
    _wait_for(js, proc, 240)
    children = _children(proc.pid)
    proc.kill()
    proc.wait()
    assert json.loads(js.read_text())["tests"]
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert children and not any(_alive(c) for c in children)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc/*/stat)."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc on this system")
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------- the pieces


def test_fault_budget_counts_per_combination() -> None:
    b = FaultBudget(hangs=2, crashes=1)
    combo = ("impl", "float32", "eager")
    b.record(combo, ImplementationFault("x", "hang"))
    assert b.refusal(combo) is None
    b.record(combo, ImplementationFault("x", "hang"))
    refused = b.refusal(combo)
    assert isinstance(refused, NotRun) and "hung 2 times in float32 eager" in str(refused)
    assert b.refusal(("impl", "float64", "eager")) is None
    b.record(("impl", "float64", "eager"), ImplementationFault("x", "crash"))
    assert "crashed 1 times" in str(b.refusal(("impl", "float64", "eager")))
    b.record(("other", "float32", "eager"), NotRun("x"))  # refusals are not faults
    assert b.refusal(("other", "float32", "eager")) is None


def test_a_worker_that_cannot_rebuild_the_adapter_says_why() -> None:
    caller = ProcessCaller(Recipe("registry", "no-such-adapter"), "no-such-adapter")
    try:
        with pytest.raises(ImplementationFault, match=r"could not rebuild the adapter: .*no-such-adapter"):
            caller.call("run", (), 5)
        with pytest.raises(ImplementationFault, match="could not rebuild"):  # no respawn loop
            caller.call("run", (), 5)
        assert caller.starts == 1
    finally:
        caller.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--focal-isolate", "fork"], "--focal-isolate: unknown 'fork'"),
        (["--focal-memory-limit", "-1"], "--focal-memory-limit must be >= 0"),
        (["--focal-hang-budget", "two"], "--focal-hang-budget must be a whole number"),
    ],
)
def test_bad_isolation_options_are_one_line_usage_errors(args: list[str], words: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOCAL_")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "focalspec.conformance", "-p", "no:cacheprovider", "-q",
         "--focal-adapters", "focalspec-torch", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 4, out.stdout + out.stderr
    assert words in out.stderr, out.stderr


# ----------------------------------------------------------------------------- calls sent ahead


def test_calls_sent_ahead_get_their_own_replies_and_faults() -> None:
    """``ProcessCaller.prefetch`` (the compiled mode's worker): a call sent ahead returns what the
    same call returns when made normally, asked in any order; a crash on a request sent ahead is
    reported on that request's own call, not on the call that happened to be waiting."""
    import numpy as np

    from focalspec.adapters.callable_adapter import Convention, make_callable_adapter
    from focalspec.spec.variant import Variant

    adapter = make_callable_adapter(f"{IMPL}:segfaults_on_large", Convention(framework="torch"))
    v = Variant(gamma=2.0, alpha=0.25)

    def args(n: int) -> tuple[Any, ...]:
        x = np.linspace(-20.0, 20.0, n)
        return (v, x, (np.arange(n) % 2).astype(np.float64), "float32", "cpu", "eager", True)

    small_a, large, small_c = args(8), args(SMALL + 8), args(5)
    caller = ProcessCaller(Recipe.of(adapter), adapter.name)  # type: ignore[arg-type]
    try:
        caller.prefetch([("run", small_a), ("run", large), ("run", small_c)], [1024] * 3).join(60)
        got_c = caller.call("run", small_c, 60)  # out of order: the crash of `large` is in the way
        got_a = caller.call("run", small_a, 60)
        with pytest.raises(ImplementationFault, match="crashed its worker process with SIGSEGV"):
            caller.call("run", large, 60)
        for got, a in ((got_a, small_a), (got_c, small_c)):
            want = adapter.run(*a)
            np.testing.assert_array_equal(got.loss, want.loss)
            np.testing.assert_array_equal(got.grad, want.grad)
    finally:
        caller.close()


def test_the_gate_starts_its_workers_before_validating_and_leaves_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """``focalspec check`` starts the callable's workers before it imports the framework itself;
    the suite adopts them, and a usage error stops them (no worker outlives the gate)."""
    from focalspec.conformance.suite import isolation

    started: list[isolation.ProcessCaller] = []
    adopted: list[isolation.ProcessCaller] = []
    real_prespawn, real_adopt = isolation.prespawn, isolation.adopt

    def prespawn(recipe: Recipe, name: str, tag: str = "eager", warm_up: bool = False) -> None:
        real_prespawn(recipe, name, tag, warm_up)
        caller = isolation._PRESPAWNED[isolation._prespawn_key(recipe, tag)]
        started.extend([] if any(c is caller for c in started) else [caller])  # asked again: the same worker

    def adopt(recipe: Recipe, tag: str, memory_limit_gib: float = 0.0) -> isolation.ProcessCaller | None:
        caller = real_adopt(recipe, tag, memory_limit_gib)
        adopted.extend([caller] if caller is not None else [])
        return caller

    monkeypatch.setattr(isolation, "prespawn", prespawn)
    monkeypatch.setattr(isolation, "adopt", adopt)
    quick = ["--framework", "torch", "--depth", "quick", "--dtype", "float32", "--case", "grid_g2_*"]
    assert main(["check", "broken_impls.focal:careful", *quick]) == 0
    assert len(started) == 2 and sorted(map(id, adopted)) == sorted(map(id, started))  # eager and compiled, both used
    assert all(c.starts == 1 and c.proc is None for c in started)  # never restarted; closed at the end
    started.clear()
    assert main(["check", "broken_impls.focal:no_such_loss", *quick, "--mode", "eager"]) == 2
    assert len(started) == 1 and started[0].proc is None and not isolation._PRESPAWNED


def test_the_compiled_mode_is_split_by_dtype_over_two_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each compiled worker serves only its own dtypes (``isolation.worker_tag``): float64 and
    bfloat16 one, float32 and float16 the other; the gate starts both before validating."""
    from focalspec.conformance.suite import isolation

    monkeypatch.setattr(isolation, "compiled_shards", lambda: 2)
    assert [isolation.worker_tag("compiled", d) for d in ("float64", "float32", "bfloat16", "float16")] == [
        "compiled", "compiled-2", "compiled", "compiled-2"]  # fmt: skip
    assert isolation.worker_tag("eager", "float32") == "eager"
    served: dict[int, set[tuple[str, str]]] = {}
    started: list[tuple[str, isolation.ProcessCaller]] = []
    real_call, real_prespawn = isolation.ProcessCaller.call, isolation.prespawn

    def call(self: isolation.ProcessCaller, method: str, args: tuple[Any, ...], *rest: Any) -> Any:
        if method == "run":
            served.setdefault(id(self), set()).add((args[3], args[5]))  # (dtype, mode)
        return real_call(self, method, args, *rest)

    def prespawn(recipe: Recipe, name: str, tag: str = "eager", warm_up: bool = False) -> None:
        real_prespawn(recipe, name, tag, warm_up)
        caller = isolation._PRESPAWNED[isolation._prespawn_key(recipe, tag)]
        started.extend([] if any(c is caller for _, c in started) else [(tag, caller)])

    monkeypatch.setattr(isolation.ProcessCaller, "call", call)
    monkeypatch.setattr(isolation, "prespawn", prespawn)
    assert main(["check", "broken_impls.focal:careful", "--framework", "torch", "--case", "sat_large_g0.5"]) == 0
    assert [tag for tag, _ in started] == ["compiled", "compiled-2", "eager"]
    by_tag = {tag: served.get(id(c), set()) for tag, c in started}
    assert by_tag["compiled"] == {("float64", "compiled"), ("bfloat16", "compiled")}
    assert by_tag["compiled-2"] == {("float32", "compiled"), ("float16", "compiled")}
    assert {mode for _, mode in by_tag["eager"]} == {"eager"} and len(by_tag["eager"]) == 4
    assert all(c.starts == 1 and c.proc is None for _, c in started)


def test_the_gate_process_imports_neither_the_framework_nor_the_callable() -> None:
    """Only the workers import them (``CallableAdapter`` from ``WorkerFacts``): ~0.8 s of CPU on
    a 2-core gate run, and what an import does to its process is the worker's problem."""
    code = (
        "import sys; from focalspec.cli_main import main; "
        "rc = main(['check', 'broken_impls.focal:careful', '--framework', 'torch', '--case', 'sat_large*']); "
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'broken_impls')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout[-2000:] + done.stderr[-2000:]


def test_a_callable_that_crashes_at_import_is_a_one_line_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "focalspec", "check", "broken_impls.crashes_at_import:focal", "--framework", "torch"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "SIGSEGV" in done.stderr and "Traceback" not in done.stderr, done.stderr
