"""The conformance plugin: option contract (command line and FOCAL_* environment), ids, skips with
reasons, xfail/skip files and their stale entries, the results JSON schema, inertness in other
pytest sessions, and the parametrisation rules (compiled subset, devices, declared variants)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from focalspec.adapters.registry import all_adapters
from focalspec.conformance.suite.options import Options
from focalspec.conformance.suite.runner import Suite

IMPL = ["--focal-impl", "broken_impls.focal:careful", "--focal-framework", "torch"]
SMALL = ["--focal-depth", "quick", "--focal-dtypes", "float64", "--focal-modes", "eager"]

TEST_KEYS = {
    "nodeid",
    "adapter",
    "device",
    "dtype",
    "mode",
    "case_id",
    "family",
    "check",
    "spec_section",
    "variant",
    "outcome",
    "grade",
    "required_grade",
    "value",
    "grad",
    "worst",
    "message",
    "reproducer",
    "duration_s",
    "skip_reason",
    "tier",
    "failure_tier",
    "tier_required",
    "fault",
    "skipped_cases",
    "cause",
    "cause_detail",
    "cause_example",
}


def run_suite(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "results.json"
    code = int(
        pytest.main(
            ["--pyargs", "focalspec.conformance", "-p", "no:cacheprovider", "-q", "--focal-json", str(out), *args]
        )
    )
    return code, (json.loads(out.read_text()) if out.exists() else {})


def options(**kw: Any) -> Options:
    base: dict[str, Any] = dict(
        adapters=None,
        dtypes=None,
        devices=None,
        modes=None,
        impl="broken_impls.focal:careful",
        framework="torch",
        input="logits",
        alpha_off="none",
        alpha_flag="apply_class_balancing",
        clip_eps=None,
        clip_scope="all",
        softmax=False,
        soft_target="canonical",
        normalized=None,
        targets_first=False,
        kwargs=(),
        grade=None,
        depth="quick",
        families=("golden", "random", "invariant", "edge", "shape"),
        cases=None,
        seed=0,
        json=None,
        xfails=None,
        skips=None,
        timeout=30.0,
    )
    base.update(kw)
    return Options(**base)


def test_results_json_schema_and_ids(tmp_path: Path) -> None:
    code, doc = run_suite(tmp_path, *IMPL, *SMALL, "--focal-case", "grid_g2_a0.25,inv_symmetry_*")
    assert code == 0
    assert doc["schema"] == "focalspec-results" and doc["schema_version"] == 1
    assert set(doc) == {"schema", "schema_version", "suite", "run", "adapters", "tally", "tests", "sweeps", "stale",
                        "minimal"}  # fmt: skip
    assert doc["minimal"] == []  # nothing failed, nothing to bisect
    assert doc["tally"] == {"passed": 3, "failed": 0, "not_required": 0, "xfailed": 0, "xpassed": 0, "skipped": 0,
                            "error": 0}  # fmt: skip
    assert set(doc["suite"]) == {"version", "git_revision", "depth"} and doc["suite"]["depth"] == "quick"
    assert set(doc["run"]) == {"started", "finished", "host", "python", "platform", "command", "env", "status"}
    assert doc["run"]["status"] == "finished"
    (adapter,) = doc["adapters"]
    assert set(adapter) == {
        "name",
        "implementation",
        "framework",
        "framework_version",
        "convention",
        "devices",
        "dtypes",
        "modes",
        "unavailable",
        "ran",
    }
    assert adapter["ran"]["framework"] == "torch"
    ids = sorted(t["nodeid"].split("::")[1] for t in doc["tests"])
    assert ids == [
        "test_grad[broken_impls.focal.careful-cpu-float64-eager-grid_g2_a0.25]",
        "test_invariant[broken_impls.focal.careful-cpu-float64-eager-inv_symmetry_g2_a0.25]",
        "test_value[broken_impls.focal.careful-cpu-float64-eager-grid_g2_a0.25]",
    ]
    for t in doc["tests"]:
        assert set(t) == TEST_KEYS
        assert t["outcome"] == "passed" and t["grade"] in ("exact", "faithful", "accurate")
    inv = next(t for t in doc["tests"] if t["check"] == "invariant")
    assert inv["family"] == "invariant" and inv["value"]["n"] == 32 and inv["grad"]["n"] == 32
    sweeps = doc["sweeps"]
    assert {(s["gamma"], s["target"]) for s in sweeps} == {(0.5, 0.0), (0.5, 1.0), (2.0, 0.0), (2.0, 1.0)}
    assert all(len(s["x"]) == len(s["value_err_u"]) == len(s["grad_err_u"]) == 301 for s in sweeps)
    assert min(sweeps[0]["x"]) == -1e4 and max(sweeps[0]["x"]) == 1e4
    json.dumps(doc, allow_nan=False)  # strict JSON


def test_environment_variables_are_the_same_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOCAL_IMPL", "broken_impls.focal:careful")
    monkeypatch.setenv("FOCAL_FRAMEWORK", "torch")
    monkeypatch.setenv("FOCAL_DEPTH", "quick")
    monkeypatch.setenv("FOCAL_DTYPES", "float32")
    monkeypatch.setenv("FOCAL_MODES", "eager")
    monkeypatch.setenv("FOCAL_CASE", "grid_g0.5_a*")
    monkeypatch.setenv("FOCAL_GRADE", "accurate")
    code, doc = run_suite(tmp_path, "--focal-families", "golden")
    assert code == 0
    assert {t["case_id"] for t in doc["tests"]} == {f"grid_g0.5_a{a}" for a in ("none", "0", "0.25", "0.5", "1")}
    assert {t["dtype"] for t in doc["tests"]} == {"float32"}
    assert {t["required_grade"] for t in doc["tests"]} == {"accurate"}
    # the command line wins over the environment
    code, doc = run_suite(tmp_path, "--focal-families", "golden", "--focal-dtypes", "float64")
    assert {t["dtype"] for t in doc["tests"]} == {"float64"}


def test_xfail_and_skip_files_with_stale_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xf = tmp_path / "xfails.txt"
    xf.write_text(
        "# known defect: alpha weights the negatives\n"
        "test_value[*wrong_alpha_side-cpu-float64-eager-grid_g2_a0.25]  # alpha on the wrong side\n"
        "test_grad[*-grid_g2_anone]   # passes: stale\n"
        "test_value[*-no_such_case]\n"
    )
    sk = tmp_path / "skips.txt"
    sk.write_text("test_grad[*-grid_g2_a0.25]  # not today\nnever_matches_anything\n")
    args = [
        "--focal-impl",
        "broken_impls.focal:wrong_alpha_side",
        "--focal-framework",
        "torch",
        *SMALL,
        "--focal-case",
        "grid_g2_a0.25,grid_g2_anone",
        "--focal-xfails",
        str(xf),
        "--focal-skips",
        str(sk),
    ]
    code, doc = run_suite(tmp_path, *args)
    out = capsys.readouterr().out
    assert code == 0  # the one failure is an expected one; the skipped grad check is not run
    by_id = {f"{t['case_id']}:{t['check']}": t for t in doc["tests"]}
    assert by_id["grid_g2_a0.25:value"]["outcome"] == "xfailed"
    assert by_id["grid_g2_a0.25:grad"]["outcome"] == "skipped"
    assert by_id["grid_g2_a0.25:grad"]["skip_reason"] == "not today"
    assert by_id["grid_g2_anone:grad"]["outcome"] == "xpassed"
    assert doc["stale"] == {
        "xfails": ["test_grad[*-grid_g2_anone]", "test_value[*-no_such_case]"],
        "skips": ["never_matches_anything"],
    }
    assert "stale xfail entry" in out and "matches no collected test" in out and "passed:" in out


def test_unavailable_adapter_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    gone = [a for a in all_adapters() if a.unavailable_reason()]
    if not gone:
        pytest.skip("every adapter is available in this environment")
    a = gone[0]
    code, doc = run_suite(
        tmp_path, "--focal-adapters", a.name, *SMALL, "--focal-families", "golden", "--focal-case", "grid_g2_*"
    )
    assert code == 0
    assert doc["tests"] and all(t["outcome"] == "skipped" for t in doc["tests"])
    assert {t["skip_reason"] for t in doc["tests"]} == {a.unavailable_reason()}
    assert doc["adapters"][0]["unavailable"] == a.unavailable_reason()


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_suite(tmp_path, "--focal-grade", "perfect")
    assert code == pytest.ExitCode.USAGE_ERROR
    code, _ = run_suite(tmp_path, "--focal-adapters", "no-such-adapter", *SMALL)
    assert code == pytest.ExitCode.USAGE_ERROR
    err = capsys.readouterr().err
    assert "ERROR: focalspec: --focal-adapters: no adapter named no-such-adapter" in err and "Traceback" not in err
    code, _ = run_suite(tmp_path, "--focal-impl", "broken_impls.focal:careful")
    assert code == pytest.ExitCode.USAGE_ERROR


def test_plugin_is_inert_in_other_sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "test_other.py").write_text("def test_one():\n    assert True\n")
    out = tmp_path / "never.json"
    monkeypatch.setenv("FOCAL_JSON", str(out))
    monkeypatch.setenv("FOCAL_ADAPTERS", "no-such-adapter")  # would be an error if anything were loaded
    code = pytest.main([str(tmp_path / "test_other.py"), "-q", "-p", "no:cacheprovider"])
    assert code == 0
    assert not out.exists()


# ----------------------------------------------------------------------------- parametrisation


def test_compiled_mode_runs_the_subset_and_cuda_only_where_reported() -> None:
    suite = Suite(options(dtypes=("float32",)))
    params = suite.params()
    compiled = {p.case.id.rsplit("_s", 1)[0] for p in params if p.mode == "compiled"}
    assert compiled == {"sat_large_g0.5", "rand_sig_g2_a0.25_n64"}
    assert {p.device for p in params} == set(suite.adapters[0].devices())
    ids = [p.id for p in params]
    assert len(ids) == len({(p.id, p.check) for p in params})
    deep = Suite(options(dtypes=("float32",), depth="deep", families=("golden",)))
    compiled_deep = [m for p in deep.params() if p.mode == "compiled" for m in (p.members or (p,))]
    assert {p.case.id for p in compiled_deep} == {c.id for c in deep.cases}


def test_quick_runs_the_compiled_mode_only_when_asked() -> None:
    """--depth quick is eager only (a process's first compile costs more than the rest of a quick
    run); naming the modes (or the dtypes) brings the compiled checks back, in float32 at quick."""
    from focalspec.conformance.suite.runner import QUICK_EAGER_REASON

    for kw, runs in (({}, set()), ({"modes": ("eager", "compiled")}, {"float32"})):
        suite = Suite(options(**kw))
        try:
            compiled = [p for p in suite.params() if p.mode == "compiled"]
            assert compiled and {p.dtype for p in compiled if not p.skip} == runs, kw
            assert all(p.skip == QUICK_EAGER_REASON for p in compiled) == (not runs)
        finally:
            suite.close()


def test_skips_of_one_reason_collapse_into_one_check_that_names_its_cases() -> None:
    """Nothing lost: every (case, check) of every combination is either its own check or named
    by exactly one collapsed skip, which carries that case's reason."""
    suite = Suite(options(dtypes=("float32", "float16"), modes=("eager",)))
    params = suite.params()
    collapsed = [p for p in params if p.members]
    assert collapsed, "a logits-only sigmoid callable skips the probability and softmax cases"
    for p in collapsed:
        assert len(p.members) > 1 and p.skip and p.static()["skipped_cases"] == [m.case.id for m in p.members]
        assert all(m.skip == p.skip and m.check == p.check and m.case.family == p.case.family for m in p.members)
    seen = [(p.dtype, p.check, p.case.id) for p in params if not p.members and p.check in ("value", "grad")]
    seen += [(m.dtype, m.check, m.case.id) for p in collapsed for m in p.members]
    assert len(seen) == len(set(seen))
    narrow = {c.id for c in suite.cases if c.narrow}
    expected = {(dt, ch, c.id) for dt in ("float32", "float16") for ch in ("value", "grad") for c in suite.cases
                if dt == "float32" or c.id in narrow}  # fmt: skip
    assert set(seen) == expected
    assert len({(p.id, p.check) for p in params}) == len(params)


def test_declared_variant_maps_the_case_onto_the_convention() -> None:
    suite = Suite(options(clip_eps=1e-7, dtypes=("float32", "float16"), modes=("eager",), families=("golden",)))
    expanded = [m for p in suite.params() for m in (p.members or (p,))]  # collapsed skips: their cases
    grid = [p for p in expanded if p.case.id == "grid_g2_a0.25" and p.check == "value"]
    f32 = next(p for p in grid if p.dtype == "float32")
    assert f32.skip is None
    assert f32.variant.clip_eps == pytest.approx(1e-7, rel=1e-7) and f32.variant.clip_upper == 1.0 - 2.0**-23
    f16 = next(p for p in grid if p.dtype == "float16")
    assert f16.skip and "rounds to 1 in float16" in f16.skip
    soft = next(p for p in expanded if p.case.id == "soft_margin_grid" and p.dtype == "float32")
    assert soft.skip  # a margin-convention case cannot be clipped: never silently run as something else


def test_invariants_that_need_the_exact_definition_skip_under_a_declared_clip() -> None:
    suite = Suite(options(clip_eps=1e-7, dtypes=("float32",), modes=("eager",), families=("invariant",)))
    by_id = {p.case.id: p for p in suite.params()}
    assert "declares clipping" in (by_id["inv_symmetry_g2_a0.25"].skip or "")
    assert by_id["inv_alpha_g2_a0.25"].skip is None
    assert by_id["inv_softmax_c2_g2_a0.25"].skip  # and a sigmoid callable has no softmax side anyway


def test_a_reduced_value_beyond_the_dtype_range_is_expected_to_overflow(tmp_path: Path) -> None:
    """float16, deep: the sum of inv_reduction_sum_g2 is about 98,141, beyond float16's 65,504; the
    correctly rounded sum is +inf, and a careful implementation's inf is right (was graded as 98,141)."""
    code, doc = run_suite(tmp_path, *IMPL, "--focal-depth", "deep", "--focal-dtypes", "float16", "--focal-modes",
                          "eager", "--focal-case", "inv_reduction_sum_g2")  # fmt: skip
    (t,) = doc["tests"]
    assert code == 0 and t["outcome"] == "passed", t["message"]
    assert t["worst"]["got"] == "inf"


def test_the_suite_orders_and_marks_the_items_left_after_deselection(tmp_path: Path) -> None:
    """The plugin's ``pytest_collection_modifyitems`` runs last (after ``-k`` deselection): with only
    the value checks selected, no value call is made to also return a gradient for a deselected one."""
    from focalspec.conformance.suite.plugin import _state

    seen: dict[str, Any] = {}

    class Spy:
        @staticmethod
        def pytest_collection_finish(session: pytest.Session) -> None:
            state = _state(session.config)
            seen["grad_keys"] = set(state.suite.grad_keys) if state and state.suite else None
            seen["checks"] = {item.name.split("[")[0] for item in session.items}

    args = ["--pyargs", "focalspec.conformance", "-p", "no:cacheprovider", "-q", "--focal-adapters",
            "focalspec-torch", "--focal-dtypes", "float32", "--focal-modes", "eager", "--focal-case", "grid_g2_*",
            "--focal-json", str(tmp_path / "r.json")]  # fmt: skip
    assert pytest.main([*args, "-k", "test_value"], plugins=[Spy()]) == 0
    assert seen["checks"] == {"test_value"} and seen["grad_keys"] == set(), seen
    assert pytest.main(args, plugins=[Spy()]) == 0  # the same selection with its gradient checks
    assert seen["grad_keys"], seen


def test_a_check_record_writes_the_results_entry_and_reads_it_back() -> None:
    """The typed record writes exactly the results JSON's test keys (node id, the parameter's
    static part, then its own fields) and an xdist worker's entry reads back to the same record."""
    from focalspec.conformance.suite.record import CheckRecord

    static_keys = ("adapter", "device", "dtype", "mode", "case_id", "family", "check", "spec_section", "variant",
                   "required_grade", "skipped_cases", "tier")  # Param.static and its tier  # fmt: skip
    static = {k: f"s-{k}" for k in static_keys}
    rec = CheckRecord("t::x[a]", static, outcome="failed", cause="clip_epsilon", returned_dtype="float32")
    entry = rec.to_json()
    assert set(entry) == TEST_KEYS and list(entry)[: 1 + len(static)] == ["nodeid", *static]
    assert "returned_dtype" not in entry and entry["cause"] == "clip_epsilon" and rec.tier == "s-tier"
    back = CheckRecord.from_json(json.loads(json.dumps(entry)))
    assert back.to_json() == entry


def test_one_option_table_makes_both_command_lines() -> None:
    """Every gate option with a pytest twin is forwarded as that twin, and every pytest option
    of the table exists: the table is the one definition (no hand-written --focal-* strings)."""
    import argparse

    from focalspec.conformance.gate.check import add_arguments, forwarded
    from focalspec.conformance.suite.options import OPTIONS, add_options

    p = argparse.ArgumentParser()
    add_arguments(p)
    given = ["x:y", "--framework", "torch", "--clip-eps", "1e-7", "--softmax", "--targets-first", "--kwarg", "a=1",
             "--normalized", "n", "--reductions", "sum", "--grade", "exact", "--families", "golden", "--dtype",
             "float32", "--device", "cpu", "--mode", "eager", "--case", "c", "--point", "1:1", "--variant", "gamma=2",
             "--timeout", "3", "--memory-limit", "1", "--hang-budget", "1", "--crash-budget", "1", "--budget", "9",
             "--xfails", "f", "--skips", "g", "--require", "finite", "--json", "j"]  # fmt: skip
    words = forwarded(p.parse_args(given), callable_target=True)
    sent = {w.split("=")[0] for w in words}
    twins = {o.flag for o in OPTIONS if o.gate is not None and o.pytest}
    assert sent == twins, twins ^ sent

    class Group:
        def __init__(self) -> None:
            self.flags: list[str] = []

        def addoption(self, flag: str, **kw: Any) -> None:
            self.flags.append(flag)

    group = Group()

    class Parser:
        def getgroup(self, *a: Any) -> Group:
            return group

    add_options(Parser())
    assert group.flags == [o.flag for o in OPTIONS if o.pytest]
    assert {"--focal-adapters", "--focal-impl"} <= set(group.flags) and "--focal-jobs" not in group.flags
