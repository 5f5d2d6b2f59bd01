"""The CI gate (``focalspec check``) rejects each deliberately broken implementation for its own
defect, accepts a careful one and focalspec's own torch adapter, and keeps its exit codes.

Each gate run is small (quick depth, float64 + float32, eager) and in-process, sharing the
reference cache; one run goes through a real subprocess for the exit-code contract.  The broken
implementations live in ``tests/broken_impls/focal.py`` (the careful one with one defect each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from focalspec.cli_main import main

TESTS = Path(__file__).resolve().parent
IMPL = "broken_impls.focal"
QUICK = ["--depth", "quick", "--dtype", "float64,float32", "--mode", "eager"]
CALLABLE = ["--framework", "torch", "--normalized", "normalized"]

_RUNS: dict[tuple[str, ...], tuple[int, dict[str, Any]]] = {}


def gate(tmp_path_factory: pytest.TempPathFactory, target: str, *extra: str) -> tuple[int, dict[str, Any]]:
    """``focalspec check TARGET`` in-process (memoised per argument list): (exit code, results JSON)."""
    key = (target, *extra)
    if key not in _RUNS:
        out = tmp_path_factory.mktemp("gate") / "results.json"
        args = ["check", target, *QUICK, *extra, "--json", str(out)]
        if ":" in target:
            args += CALLABLE
        code = main(args)
        doc = json.loads(out.read_text()) if out.exists() else {}
        _RUNS[key] = (code, doc)
    return _RUNS[key]


def failed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in doc["tests"] if t["outcome"] in ("failed", "error")]


def passed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in doc["tests"] if t["outcome"] == "passed"]


def worst_input(t: dict[str, Any]) -> float:
    w = t["worst"] or {}
    x = w.get("input")
    return abs(float(x)) if isinstance(x, int | float) or x in ("inf", "-inf", "nan") else float("nan")


def run_of(tmp_path_factory: pytest.TempPathFactory, name: str, *extra: str) -> dict[str, Any]:
    code, doc = gate(tmp_path_factory, f"{IMPL}:{name}", *extra)
    assert code == 1, f"{name} was not rejected (exit {code})"
    assert failed(doc), f"{name}: exit 1 but no failed test in the JSON"
    return doc


# ----------------------------------------------------------------------------- accepted


def test_careful_implementation_is_accepted(tmp_path_factory: pytest.TempPathFactory) -> None:
    code, doc = gate(tmp_path_factory, f"{IMPL}:careful")
    assert code == 0
    assert not failed(doc)
    assert len(passed(doc)) > 300
    families = {t["family"] for t in passed(doc)}
    assert families == {"golden", "random", "invariant", "edge", "shape", "contract"}
    assert {t["required_grade"] for t in doc["tests"]} == {"acceptable"}  # third-party default
    # careful arithmetic is not merely acceptable: every check is within the 'accurate' budget
    assert {t["grade"] for t in passed(doc) if t["check"] != "contract"} <= {"exact", "faithful", "accurate"}
    assert {t["grade"] for t in passed(doc) if t["check"] == "contract"} == {None}  # held or not: no grade


def test_quick_says_the_compile_tier_did_not_run(capsys: pytest.CaptureFixture[str]) -> None:
    """--depth quick is eager only: the verdict line must not let a reader take the required
    compile tier as passed."""
    args = ["check", f"{IMPL}:careful", "--framework", "torch", "--depth", "quick", "--case", "grid_g2_*"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "compile* not run" in out and "required tiers not run: compile (--depth quick is eager only" in out
    assert main([*args, "--mode", "eager,compiled", "--case", "sat_large_g0.5"]) == 0
    out = capsys.readouterr().out
    assert "compile* ok" in out and "not run" not in out


def test_a_compile_tier_not_run_names_why() -> None:
    """The verdict line's reason for an unrun compile tier: the adapter's modes, else quick."""
    from focalspec.conformance.gate import check as gate_module

    assert gate_module._has_compiled_mode("focalspec-torch") and gate_module._has_compiled_mode(f"{IMPL}:careful")
    assert not gate_module._has_compiled_mode("kornia-binary")  # third-party torch losses: eager only


def test_focalspec_own_torch_adapter_is_accepted(tmp_path_factory: pytest.TempPathFactory) -> None:
    code, doc = gate(tmp_path_factory, "focalspec-torch")
    bad = [f"{t['nodeid'].split('::')[-1]}: {(t['message'] or '')[:200]}" for t in failed(doc)]
    assert code == 0, "focalspec-torch rejected:\n" + "\n".join(bad[:20])
    assert {t["required_grade"] for t in doc["tests"]} == {"accurate"}  # focalspec's own: stricter


# ----------------------------------------------------------------------------- rejected, for the right reason


def test_wrong_alpha_side(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "wrong_alpha_side")
    for t in failed(doc):
        if t["check"] == "invariant":
            assert t["case_id"].startswith("inv_alpha_"), t["nodeid"]
        else:
            assert t["variant"]["alpha"] not in (None, 0.5), t["nodeid"]
    symmetric = [t for t in doc["tests"] if t["variant"]["alpha"] in (None, 0.5) and t["check"] != "invariant"]
    assert symmetric and all(t["outcome"] in ("passed", "skipped") for t in symmetric)


def test_eps_inside_the_log(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "eps_in_log")
    values = [t for t in failed(doc) if t["check"] == "value"]
    assert {t["dtype"] for t in values} == {"float64", "float32"}
    # float64 sees the moved values at moderate logits; float32 the cap -log(1e-6) at large ones
    assert any(t["dtype"] == "float64" and worst_input(t) <= 10 for t in values)
    assert any(t["dtype"] == "float32" and worst_input(t) >= 14 for t in values)


def test_detached_modulating_factor(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "detached_factor")
    assert all(t["check"] == "grad" for t in failed(doc)), "values must all pass: only the gradient is wrong"
    assert all(t["variant"]["gamma"] > 0 for t in failed(doc))
    gamma0 = [t for t in doc["tests"] if t["check"] == "grad" and t["variant"]["gamma"] == 0]
    assert gamma0 and all(t["outcome"] in ("passed", "skipped") for t in gamma0)
    assert any(t["family"] == "random" for t in failed(doc))


def test_nan_gradient_at_saturation(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "naive_pow")
    assert all(t["check"] == "grad" for t in failed(doc)), "values must all pass"
    assert all(t["worst"]["got"] == "nan" for t in failed(doc)), "every failure is a NaN gradient"
    finite_sat = [
        t for t in failed(doc) if 0 < t["variant"]["gamma"] < 1 and t["worst"]["input"] not in ("inf", "-inf")
    ]
    assert finite_sat, "the NaN must show up at finite saturated logits with 0 < gamma < 1"
    assert any(t["case_id"].startswith("edge_sat_right") for t in finite_sat)
    rand_g2 = [t for t in doc["tests"] if t["case_id"].startswith("rand_sig_g2_a0.25") and t["check"] == "grad"]
    assert rand_g2 and all(t["outcome"] == "passed" for t in rand_g2)


def test_float32_arithmetic_under_float64_inputs(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "float32_inside")
    assert {t["dtype"] for t in failed(doc)} == {"float64"}
    f32 = [t for t in doc["tests"] if t["dtype"] == "float32"]
    assert f32 and all(t["outcome"] in ("passed", "skipped") for t in f32)
    assert any(t["value"] and (t["value"]["max_err_u"] or 0) > 1e6 for t in failed(doc) if t["check"] == "value")


# a wrong divisor fails its reduction's checks only, among them these cases; and the cases where it
# happens to be right pass (mean over rows of a 1-D input: rows = elements)
REDUCTION_DEFECTS = [
    ("mean_over_rows", "mean", ("shape_sig_nchw_mean", "inv_reduction_mean_g2"), "red_mean"),
    ("normalized_by_n", "normalized", ("inv_normalized_nopos_g2", "red_normalized_nopos"), None),
]


@pytest.mark.parametrize(("defect", "reduction", "must_fail", "right_there"), REDUCTION_DEFECTS)
def test_wrong_divisor_fails_its_reduction_only(
    tmp_path_factory: pytest.TempPathFactory, defect: str, reduction: str, must_fail: tuple[str, ...],
    right_there: str | None,
) -> None:  # fmt: skip
    doc = run_of(tmp_path_factory, defect)
    for t in failed(doc):
        assert t["variant"]["reduction"] == reduction, t["nodeid"]
    for case in must_fail:
        assert any(t["case_id"] == case for t in failed(doc)), case
    if right_there:
        same = [t for t in doc["tests"] if t["case_id"].startswith(right_there)]
        assert same and all(t["outcome"] == "passed" for t in same)


def test_clamped_logits(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "clamped_logits")
    elementwise = [t for t in failed(doc) if t["check"] != "invariant" and t["variant"]["reduction"] == "none"]
    # at or beyond the clamp (torch 2.14's clamp backward is 0 at the bound itself, x = +-20), or
    # non-finite (clamp's backward gives 0 for NaN, the spec NaN)
    assert elementwise and all(not worst_input(t) < 20 for t in elementwise)
    assert any(20 < worst_input(t) < float("inf") for t in elementwise)
    within = [t for t in doc["tests"] if t["case_id"].startswith("grid_")]  # |x| <= 10
    assert within and all(t["outcome"] == "passed" for t in within)


def test_naive_log_sigmoid(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "naive_log_sigmoid")
    values = [t for t in failed(doc) if t["check"] == "value" and t["variant"]["reduction"] == "none"]
    assert values and all(worst_input(t) >= 5 for t in values)
    assert any(t["worst"]["got"] == "inf" for t in values), "-log(0) = inf must be among the failures"
    small = [t for t in doc["tests"] if t["case_id"] in ("small_logits", "edge_subnormal_logits")]
    assert small and all(t["outcome"] == "passed" for t in small)


def test_a_raising_callable_fails_those_checks_only(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "raises_on_soft")
    assert all("raised ValueError: hard 0/1 targets only" in (t["message"] or "") for t in failed(doc))
    assert len(passed(doc)) > 300


def test_a_hanging_callable_times_out_and_the_suite_goes_on(tmp_path_factory: pytest.TempPathFactory) -> None:
    """In a thread of the gate's own process (--isolate thread): the call is abandoned at the
    timeout; no hang budget, so every hanging check waits its own timeout (test_isolation.py
    covers the worker process and the budget)."""
    opts = ["--timeout", "0.5", "--isolate", "thread", "--hang-budget", "0", "--require", "finite,saturation,extended"]
    doc = run_of(tmp_path_factory, "hangs_on_inf", *opts)
    for t in failed(doc):
        assert "did not return within 0.5 s" in t["message"], t["message"]
        assert t["fault"] == "hang"
        assert t["variant"]["gamma"] == 0.5
        assert t["failure_tier"] == "extended" and t["tier_required"] is True
    assert len(passed(doc)) > 300


def test_a_failure_only_at_infinite_inputs_is_reported_but_not_required_by_default(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SPEC §10.5: the extended tier (+-inf, NaN, empty) is not in the default required set."""
    code, doc = gate(tmp_path_factory, f"{IMPL}:hangs_on_inf", "--timeout", "0.5", "--hang-budget", "0")
    assert code == 0
    bad = failed(doc)
    assert bad and all(t["failure_tier"] == "extended" and t["tier_required"] is False for t in bad)
    assert {t["tier"] for t in doc["tests"]} >= {"finite", "saturation", "extended"}


def test_wrong_shape_and_wrong_dtype(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "wrong_shape")
    assert all("shape" in t["message"] for t in failed(doc))
    assert any(t["case_id"] == "shape_sig_nchw_none" for t in failed(doc))
    doc = run_of(tmp_path_factory, "wrong_dtype")
    graded = [t for t in failed(doc) if t["check"] != "contract"]
    assert all("returned torch.float32 for torch.float64 inputs" in t["message"] for t in graded)
    (contract,) = [t for t in failed(doc) if t["check"] == "contract"]
    assert contract["case_id"] == "contract_dtype_shape" and contract["fault"] == "contract"
    assert "returned float32 for float64 inputs (reduction 'mean')" in contract["message"]
    assert {t["dtype"] for t in failed(doc)} == {"float64"}


def test_failure_messages_name_the_worst_element_and_a_reproducer(tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = run_of(tmp_path_factory, "wrong_alpha_side")
    t = next(t for t in failed(doc) if t["case_id"] == "grid_g2_a0.25" and t["check"] == "value")
    msg = t["message"]
    assert "grid_g2_a0.25" in msg and "float" in msg and "Worst at index" in msg and "expected" in msg
    assert t["worst"]["err_u"] > 1e3 and t["value"]["n_bad"] > 0
    assert t["reproducer"].startswith(f"focalspec check {IMPL}:wrong_alpha_side --framework torch")
    assert f"--case grid_g2_a0.25 --dtype {t['dtype']}" in t["reproducer"]


# ----------------------------------------------------------------------------- exit codes and usage errors


def _subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "focalspec", "check", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_exit_codes_through_a_real_process(tmp_path: Path) -> None:
    small = [
        "--framework",
        "torch",
        "--depth",
        "quick",
        "--dtype",
        "float64",
        "--mode",
        "eager",
        "--families",
        "golden",
        "--case",
        "grid_g2_*",
    ]
    ok = _subprocess(f"{IMPL}:careful", *small)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "focalspec check: PASS" in ok.stdout
    bad = _subprocess(f"{IMPL}:wrong_alpha_side", *small, "--junitxml", str(tmp_path / "j.xml"))
    assert bad.returncode == 1
    assert "focalspec check: FAIL" in bad.stdout
    xml = (tmp_path / "j.xml").read_text()
    assert 'name="test_value[broken_impls.focal.wrong_alpha_side-cpu-float64-eager-grid_g2_a0.25]"' in xml
    assert '<property name="grade" value="fail"' in xml
    usage = _subprocess("no_such_module_xyz:fn", "--framework", "torch")
    assert usage.returncode == 2
    assert usage.stderr.strip().count("\n") == 0 and "Traceback" not in usage.stderr
    assert "cannot import no_such_module_xyz" in usage.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([f"{IMPL}:careful"], "needs --framework"),
        ([f"{IMPL}:no_alpha_argument", "--framework", "torch"], "has no keyword argument 'alpha'"),
        ([f"{IMPL}:NOT_CALLABLE", "--framework", "torch"], "is not callable"),
        ([f"{IMPL}:nothing_here", "--framework", "torch"], "has no attribute"),
        (["no-such-adapter"], "no adapter named 'no-such-adapter'"),
        ([f"{IMPL}:careful", "--framework", "torch", "--case", "no_such_case_*"], "no check ran"),
        (
            [f"{IMPL}:careful", "--framework", "torch", "--softmax", "--families", "golden", "--case", "grid_g2_a*"],
            "every selected check skipped",
        ),
        ([f"{IMPL}:careful", "--framework", "torch", "--point", "16.5"], "is not X:T"),
        ([f"{IMPL}:careful", "--framework", "torch", "--point", "1:2"], "target must be in [0, 1]"),
        ([f"{IMPL}:careful", "--framework", "torch", "--variant", "gamma=2"], "give --point X:T too"),
        ([f"{IMPL}:careful", "--framework", "torch", "--point", "1:1", "--variant", "gama=2"], "is not KEY=VALUE"),
        ([f"{IMPL}:careful", "--framework", "torch", "--point", "1:1", "--variant", "gamma=-1"], "gamma must be >= 0"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", *args, *QUICK])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err and words in err[-1] and "Traceback" not in "\n".join(err)


def test_missing_framework_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from focalspec.adapters import callable_adapter

    monkeypatch.setitem(callable_adapter._IMPORT_NAME, "jax", "focalspec_no_such_framework")
    monkeypatch.delitem(sys.modules, "focalspec_no_such_framework", raising=False)
    code = main(["check", f"{IMPL}:careful", "--framework", "jax", *QUICK, "--isolate", "thread"])
    assert code == 2
    assert "jax is not importable here" in capsys.readouterr().err


def test_a_framework_the_worker_cannot_import_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With process isolation the worker checks the framework (this process never imports it):
    a jax that fails to import there is the same one-line usage error."""
    fake = tmp_path / "jax"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise ImportError("no jax in this worker")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    code = main(["check", f"{IMPL}:careful", "--framework", "jax", *QUICK])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "jax is not importable here: ImportError: no jax in this worker" in err[0]


def test_a_clip_declared_inside_the_cross_entropy_only(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keras' binary form as a callable on probabilities: accepted when declared as what it is
    (--clip-eps 1e-7 --clip-scope ce); declared as a clip everywhere it is rejected where p lies
    beyond a bound (there its factor still moves with p; a clip everywhere would freeze it)."""
    declared = ["--input", "probs", "--clip-eps", "1e-7", "--families", "golden,edge,random"]
    code, doc = gate(tmp_path_factory, f"{IMPL}:clip_in_ce_probs", *declared, "--clip-scope", "ce")
    bad = [f"{t['nodeid'].split('::')[-1]}: {(t['message'] or '')[:160]}" for t in failed(doc)]
    assert code == 0, "\n".join(bad[:10])
    assert len(passed(doc)) > 50 and {t["variant"].get("clip_scope") for t in passed(doc)} == {"ce"}
    doc = run_of(tmp_path_factory, "clip_in_ce_probs", *declared)
    worst = [worst_input(t) for t in failed(doc)]
    assert all(min(w, 1 - w) < 1e-7 for w in worst), worst


# ----------------------------------------------------------------------------- causes (SPEC §10.7)

DOMINANT = {
    "wrong_alpha_side": "convention",
    "eps_in_log": "clip_epsilon",
    "detached_factor": "convention",
    "naive_pow": "nonfinite_at_finite",
    "one_minus_p": "one_minus_p_cancellation",
    "float32_inside": "low_precision_compute",
    "mean_over_rows": "convention",
    "normalized_by_n": "convention",
    "clamped_logits": "clip_epsilon",
    "naive_log_sigmoid": "bce_cancellation",  # its +inf of -log(0) too: one defect, one cause (issue 24)
    "raises_on_soft": "fault",
    "wrong_shape": "fault",
}


@pytest.mark.parametrize("name", sorted(DOMINANT))
def test_each_defect_is_named_by_its_cause(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """The shared gate runs above, classified from their evidence (never the callable's name)."""
    from collections import Counter

    from focalspec.conformance.diagnosis.causes import CAUSES

    bad = failed(run_of(tmp_path_factory, name))
    assert all(t["cause"] in CAUSES and t["cause_detail"] for t in bad), name
    required = Counter(t["cause"] for t in bad if t["tier_required"])
    assert required.most_common(1)[0][0] == DOMINANT[name], required
    assert sum(t["cause"] == "unclassified" for t in bad) <= 0.05 * len(bad), Counter(t["cause"] for t in bad)
    for t in bad:
        if t["failure_tier"] == "extended" and t["cause"] not in ("fault", "nonfinite_input_policy"):
            pytest.fail(f"{t['nodeid']}: an extended-tier failure classified {t['cause']}")


def test_cause_details_name_the_input_where_the_error_starts(tmp_path_factory: pytest.TempPathFactory) -> None:
    bad = failed(run_of(tmp_path_factory, "naive_pow"))
    finite = [t for t in bad if t["failure_tier"] != "extended"]
    assert finite and all(t["cause"] == "nonfinite_at_finite" for t in finite)
    assert all(t["cause_detail"].startswith("NaN gradient at x=") for t in finite)
    assert all(t["cause_example"]["input"] not in ("inf", "-inf") for t in finite)
    ext = [t for t in bad if t["failure_tier"] == "extended"]
    assert ext and all(t["cause"] == "nonfinite_input_policy" for t in ext)
    # -log(sigmoid) fails infinite at saturation and imprecise before it: one defect, one cause (issue 24).
    # Measured 147 of 179: the rest are +inf reduced values (no single input to reproduce) and gamma = 0 NaN
    # gradients that autodiff of a zeroth power at 1 - p = 0 (JAX/TF) reproduces as well as the naive log
    required = [t["cause"] for t in failed(run_of(tmp_path_factory, "naive_log_sigmoid")) if t["tier_required"]]
    assert required.count("bce_cancellation") >= 0.8 * len(required), sorted(set(required))


def test_the_gate_summary_lists_causes_with_their_smallest_input(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path_factory.mktemp("gate") / "r.json"
    code = main(["check", f"{IMPL}:naive_pow", *QUICK, *CALLABLE, "--families", "edge", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 1
    tail = text[text.index("causes of the failures of"):]
    assert "nonfinite_at_finite" in tail and "NaN gradient at x=" in tail and "fix:" in tail
    assert "nonfinite_input_policy" in tail and "(tiers not required)" in tail
    assert tail.rstrip().splitlines()[-1].startswith("focalspec check: FAIL")


# ----------------------------------------------------------------------------- the smallest input (shrink.py)


@pytest.mark.parametrize(("name", "cause"), [("one_minus_p", "one_minus_p_cancellation"),
                                             ("naive_pow", "nonfinite_at_finite")])  # fmt: skip
def test_each_cause_is_bisected_to_a_boundary_certified_by_the_reference(
    tmp_path_factory: pytest.TempPathFactory, name: str, cause: str
) -> None:
    """The run's smallest failing element is bisected to one next to a passing one, and the
    record's expected value is the mpmath reference at that element."""
    import numpy as np

    from focalspec.conformance.suite import shrink
    from focalspec.reference import exact as ref_mp
    from focalspec.spec.variant import Variant

    doc = run_of(tmp_path_factory, name)
    by_dtype = shrink.best_by_dtype(doc["minimal"])
    headline = shrink.best(doc["minimal"])[(f"{IMPL}.{name}", cause)]
    records = [by_dtype[(f"{IMPL}.{name}", cause, dt)] for dt in ("float64", "float32")]  # the run's dtypes
    assert headline in records and abs(headline["input"]) == min(abs(m["input"]) for m in records)
    for m in records:  # each dtype bisected on its own numbers
        assert m["converged"] and m["passes_at"] is not None, m
        assert abs(m["input"]) <= abs(m["started_from"])
        step = shrink.ordinal(abs(m["input"]), m["dtype"]) - shrink.ordinal(abs(m["passes_at"]), m["dtype"])
        assert abs(step) == 1, m  # adjacent numbers of the dtype: fails at one, passes at the other
        ref = ref_mp.evaluate(Variant.from_dict(m["variant"]), np.array([m["input"]]), np.array([m["target"]]))
        exact = float((ref.grad if m["check"] == "grad" else ref.losses)[0])
        assert float(m["expected"]) == pytest.approx(exact, rel=1e-15)
        if cause == "nonfinite_at_finite":
            assert m["got"] in ("nan", "inf", "-inf")


def test_the_bisected_reproducer_runs_as_printed(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Printed, it fails with the cause; at the passing neighbour the same line passes."""
    import shlex

    from focalspec.conformance.suite import shrink

    doc = run_of(tmp_path_factory, "one_minus_p")
    m = shrink.best(doc["minimal"])[(f"{IMPL}.one_minus_p", "one_minus_p_cancellation")]
    argv = shlex.split(m["reproducer"])
    assert argv[:2] == ["focalspec", "check"] and "--point" in argv
    capsys.readouterr()
    assert main(argv[1:]) == 1
    out = capsys.readouterr().out
    assert "one_minus_p_cancellation" in out and f"x={m['input']:.6g}" in out
    i = argv.index("--point") + 1
    argv[i] = f"{m['passes_at']!r}:{m['target']!r}"
    assert main(argv[1:]) == 0
