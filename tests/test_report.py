"""The HTML/JSON/JUnit report: merging, the matrix arithmetic, graceful gaps, self-containment."""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from focalspec.cli_main import main as cli_main
from focalspec.reports import build, model, plots
from focalspec.reports.merge import Loaded, collect, merge_results, read_json
from focalspec.spec.variant import SpecError

FIX = Path(__file__).parent / "fixtures" / "report"
RESULTS = sorted(str(p) for p in FIX.glob("results-*.json"))
BENCH = str(FIX / "bench-cpu.json")
FINDINGS = FIX / "findings.json"


def _doc(env: str = "torch", finished: str = "2025-01-01T00:00:00", tests: list[dict[str, Any]] | None = None,
         adapters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "schema": "focalspec-results", "schema_version": 1,
        "suite": {"version": "0.1.0", "git_revision": "abc", "depth": "quick"},
        "run": {"started": finished, "finished": finished, "host": "h", "python": "3.11", "platform": "linux",
                "command": "pytest", "env": env},
        "adapters": adapters if adapters is not None else [{"name": "impl", "unavailable": None}],
        "tests": tests or [],
        "sweeps": [], "stale": {"xfails": [], "skips": []},
    }  # fmt: skip


def _test(nodeid: str, outcome: str = "passed", grade: str | None = "exact", err: Any = 0.5, **kw: Any) -> dict:
    t = {"nodeid": nodeid, "adapter": "impl", "device": "cpu", "dtype": "float32", "mode": "eager",
         "case_id": nodeid, "family": "golden", "check": "value", "spec_section": "§1", "variant": {},
         "outcome": outcome, "grade": grade, "required_grade": "acceptable",
         "value": None if err is None else {"max_err_u": err, "rms_err_u": err, "n_bad": 0, "n": 1},
         "grad": None, "worst": None, "message": "", "reproducer": None, "duration_s": 0.01, "skip_reason": None}
    t.update(kw)
    return t


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> build.Built:
    out = tmp_path_factory.mktemp("report")
    inputs = collect([str(FIX)], [BENCH])
    return build.build(inputs, out, "fixture report", FINDINGS)


@pytest.fixture(scope="module")
def html(built: build.Built) -> str:
    return built.html.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the built page


def test_outputs_written(built: build.Built) -> None:
    assert built.html.stat().st_size > 10_000
    assert built.n_tests == sum(len(read_json(Path(p))["tests"]) for p in RESULTS)
    assert built.n_bench > 0
    assert built.junit_how == "passed through"  # junit-torch.xml lies in the fixture directory


def test_matrix_has_every_adapter_and_the_unavailable_reasons(html: str) -> None:
    table = re.search(r'<table id="matrix".*?</table>', html, re.S)
    assert table
    for name in ("torchvision", "optax", "keras_binary", "monai", "mmcv"):
        assert f">{name}</a>" in table.group(0)
    assert "unavailable: cannot import monai" in table.group(0)
    for label in ("golden", "edge", "random", "invariant", "sweep", "f32", "f16", "bf16", "f64"):
        assert f">{label}</th>" in table.group(0)


def test_page_is_self_contained(html: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<link\b[^>]*\bhref\s*=", html, re.I)
    assert not re.search(r"<(img|iframe|embed|object|source|audio|video)\b", html, re.I)
    assert not re.search(r"\b(?:src|href|xlink:href|action|poster|data)\s*=\s*[\"']?\s*(?:https?:)?//", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(?!data:)", html)
    assert "@import" not in html
    # any absolute URL at all may only be plain text, never inside a tag's attributes
    for tag in re.findall(r"<[^>]+>", html):
        assert "http://" not in tag and "https://" not in tag, tag[:120]


def test_sections_present(html: str) -> None:
    for anchor in ("agreement", "provenance", "sweeps", "performance", "examples", "findings", "drilldown"):
        assert f'<section id="{anchor}">' in html
    assert html.count("<svg") >= 8  # sweeps (value + gradient) and bench charts
    assert "NaN/Inf" in html  # torchvision's NaN gradients at gamma 0.5 are marked
    assert "F-fixture-1" in html and "probabilities clipped" in html  # documented findings, by cause


def test_provenance_lists_files_envs_and_versions(html: str) -> None:
    for env in ("torch", "jax", "tensorflow", "thirdparty"):
        assert f"<td>{env}</td>" in html
    assert "results-jax.json" in html and "bench-cpu.json" in html
    assert "optax.sigmoid_focal_loss" in html


def test_failures_come_first_and_carry_reproducers(html: str) -> None:
    tv = html[html.index('<details class="impl" id="impl-torchvision'):]
    tv = tv[: tv.index("</details>\n</details>") if "</details>\n</details>" in tv else None]
    assert tv.index('class="cellhead"') < tv.index("Passed (")
    assert "focalspec check --adapter torchvision" in tv or "focalspec sweep --adapter torchvision" in tv


def test_merged_json_is_strict_and_complete(built: build.Built) -> None:
    def refuse(c: str) -> None:
        raise AssertionError(f"non-strict JSON constant {c}")

    doc = json.loads(built.merged.read_text(), parse_constant=refuse)
    assert doc["schema"] == "focalspec-merged"
    assert len(doc["results"]["tests"]) == built.n_tests
    envs = {t["env"] for t in doc["results"]["tests"]}
    assert envs == {"torch", "jax", "tensorflow"}
    assert doc["matrix"]["rows"] and doc["findings"]


def test_merged_json_can_be_read_back(built: build.Built, tmp_path: Path) -> None:
    again = build.build(collect([str(built.merged)]), tmp_path, "again", None)
    assert again.n_tests == built.n_tests and again.n_bench == built.n_bench


def test_junit_pass_through_keeps_the_suite(built: build.Built) -> None:
    root = ET.parse(built.junit).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["junit-torch:pytest"]
    assert len(suites[0].findall("testcase")) == 3


def test_junit_synthesised_without_junit_files(tmp_path: Path) -> None:
    r = build.build(collect(RESULTS), tmp_path, "t", None)
    assert r.junit_how == "synthesised"
    root = ET.parse(r.junit).getroot()
    failures = sum(int(s.get("failures")) for s in root.findall("testsuite"))
    expected = sum(t["outcome"] == "failed" for p in RESULTS for t in read_json(Path(p))["tests"])
    assert failures == expected > 0
    assert len(root.findall(".//testcase/failure")) == expected


# ----------------------------------------------------------------------------- merging


def test_same_nodeid_in_two_envs_is_kept_twice() -> None:
    a = Loaded(Path("a.json"), "torch", _doc("torch", tests=[_test("t1")]))
    b = Loaded(Path("b.json"), "jax", _doc("jax", tests=[_test("t1", "failed", "fail", 900.0)]))
    merged = merge_results([a, b])
    assert sorted(t["env"] for t in merged["tests"]) == ["jax", "torch"]


def test_rerun_of_an_env_replaces_the_older_run() -> None:
    old = Loaded(Path("old.json"), "torch", _doc(finished="2025-01-01T00:00:00", tests=[_test("t1", "failed", "fail")]))
    new = Loaded(Path("new.json"), "torch", _doc(finished="2025-01-02T00:00:00", tests=[_test("t1")]))
    for order in ([old, new], [new, old]):
        merged = merge_results(order)
        assert [t["outcome"] for t in merged["tests"]] == ["passed"]
        assert merged["replaced_tests"] == 1
        assert [m["file"] for m in merged["merged_from"]] == ["new.json"]


def test_adapter_usable_in_one_env_is_usable() -> None:
    gone = [{"name": "impl", "unavailable": "not installed", "devices": []}]
    here = [{"name": "impl", "unavailable": None, "framework_version": "1.0", "devices": ["cpu"]}]
    merged = merge_results([Loaded(Path("a"), "a", _doc("a", adapters=gone)),
                            Loaded(Path("b"), "b", _doc("b", adapters=here))])  # fmt: skip
    (a,) = merged["adapters"]
    assert a["unavailable"] is None and a["devices"] == ["cpu"] and a["unavailable_in"] == {"a": "not installed"}


def test_one_adapter_under_two_framework_versions_stays_apart(tmp_path: Path) -> None:
    """A CI matrix over framework releases: this env's real run (torch 2.13.0 in CI's tests env)
    merged with a real run recorded under torch 2.14.1 (tests/fixtures/results, same cases):
    one row per version, every entry of both files kept, none mixed into the other's row."""
    torch = pytest.importorskip("torch")
    recorded = Path(__file__).parent / "fixtures" / "results" / "torch-2.14.1.json"
    old = read_json(recorded)
    (version_b,) = {a["framework_version"] for a in old["adapters"]}
    if str(torch.__version__) == version_b:
        pytest.skip(f"this env has torch {version_b}, the version of the recorded run")
    fresh = tmp_path / "torch-here.json"
    args = ["--pyargs", "focalspec.conformance", "-q", "-p", "no:cacheprovider", "--focal-adapters", "focalspec-torch",
            "--focal-depth", "quick", "--focal-dtypes", "float32", "--focal-modes", "eager",
            "--focal-case", "grid_*,sat_*,inv_symmetry_*", "--focal-json", str(fresh)]  # fmt: skip
    assert pytest.main(args) == 0
    files = collect([str(fresh), str(recorded)]).results
    merged = merge_results(files)
    names = {a["name"] for a in merged["adapters"]}
    assert names == {f"focalspec-torch (torch {torch.__version__})", f"focalspec-torch (torch {version_b})"}
    new = read_json(fresh)
    assert len(merged["tests"]) == len(new["tests"]) + len(old["tests"])
    for f in files:
        mine = [t for t in merged["tests"] if t["env"] == f.env]
        version = f.doc["adapters"][0]["framework_version"]
        assert {t["adapter"] for t in mine} == {n for n in names if n.endswith(f" {version})")}
        assert sorted(t["nodeid"] for t in mine) == sorted(t["nodeid"] for t in f.doc["tests"])
    rows = model.build_matrix(merged).rows
    assert sorted(r.adapter["name"] for r in rows) == sorted(names)
    assert all(r.adapter["base_name"] == "focalspec-torch" for r in rows)


def test_env_falls_back_to_file_name(tmp_path: Path) -> None:
    d = _doc(tests=[_test("t")])
    d["run"].pop("env")
    p = tmp_path / "results-tensorflow.json"
    p.write_text(json.dumps(d))
    assert collect([str(p)]).results[0].env == "tensorflow"


def test_directory_scan_passes_over_foreign_json() -> None:
    found = collect([str(FIX)])
    assert FINDINGS in found.passed_over
    assert len(found.results) == len(RESULTS) and len(found.bench) == 1 and len(found.junit) == 1


# ----------------------------------------------------------------------------- bad input: one line, exit 2


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"schema": "something-else", "schema_version": 1}, "unknown schema 'something-else'"),
        ({"schema": "focalspec-results", "schema_version": 2, "tests": [], "adapters": []}, "newer than"),
        ({"schema": "focalspec-bench", "schema_version": 9, "results": []}, "newer than"),
        ({"schema": "focalspec-results", "schema_version": 1, "adapters": []}, "has no 'tests'"),
        ({"schema": "focalspec-results", "schema_version": "1", "tests": [], "adapters": []}, "must be an integer"),
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_files_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any,
                                            needle: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    rc = cli_main(["report", "--results", str(p), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_outcome_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_doc(tests=[_test("t", outcome="maybe")])))
    with pytest.raises(SpecError, match="unknown outcome 'maybe'"):
        collect([str(p)])


def test_missing_path_and_no_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["report", "--results", str(tmp_path / "nope.json")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert cli_main(["report"]) == 2
    assert "nothing to report" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["report", "--results", str(tmp_path / "empty")]) == 2
    assert "no focalspec results or bench files" in capsys.readouterr().err


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = cli_main(["report", "--results", *RESULTS, "--bench", BENCH, "--out", str(out), "--title", "T <x>"])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    assert "<title>T &lt;x&gt;</title>" in page  # escaped
    assert (out / "merged.json").is_file() and (out / "junit.xml").is_file()


# ----------------------------------------------------------------------------- the matrix arithmetic


def _matrix(tests: list[dict[str, Any]]) -> model.Matrix:
    return model.build_matrix(merge_results([Loaded(Path("r"), "e", _doc(tests=tests))]))


def test_cell_is_the_worst_grade_and_largest_error() -> None:
    m = _matrix([_test("a", grade="exact", err=0.4), _test("b", grade="accurate", err=11.0),
                 _test("c", grade="faithful", err=1.5)])  # fmt: skip
    c = m.rows[0].cells[("golden", "float32")]
    assert (c.category, c.worst_u, c.passed, c.ran) == ("accurate", 11.0, 3, 3)


def test_one_failure_fails_the_cell_and_xfail_counts_as_failure() -> None:
    c = _matrix([_test("a"), _test("b", "failed", "fail", 1e6)]).rows[0].cells[("golden", "float32")]
    assert (c.category, c.passed, c.ran) == ("fail", 1, 2)
    c = _matrix([_test("a"), _test("b", "xfailed", None, None)]).rows[0].cells[("golden", "float32")]
    assert (c.category, c.xfailed) == ("fail", 1)


def test_skips_do_not_count_and_ungraded_passes_do_not_hide_grades() -> None:
    c = _matrix([_test("a", "skipped", None, None, skip_reason="no CUDA device")]).rows[0].cells[("golden", "float32")]
    assert (c.category, c.ran, c.skipped) == ("skipped", 0, 1)
    c = _matrix([_test("a", grade=None, err=None), _test("b", grade="faithful", err=2.0)]).rows[0].cells[
        ("golden", "float32")]
    assert c.category == "faithful"
    c = _matrix([_test("a", grade=None, err=None)]).rows[0].cells[("golden", "float32")]
    assert c.category == "pass"


def test_non_finite_errors_in_any_spelling() -> None:
    for err in (math.inf, "inf", "Infinity", math.nan, "nan"):
        c = _matrix([_test("a", "failed", "fail", err)]).rows[0].cells[("golden", "float32")]
        assert c.worst_u == math.inf, err
        assert model.fmt_u(c.worst_u) == "NaN/Inf"


def test_rows_are_adapter_device_mode_with_unavailable_last() -> None:
    adapters = [{"name": "gone", "unavailable": "no module"}, {"name": "impl", "unavailable": None}]
    tests = [_test("a"), _test("b", device="cuda", outcome="skipped"), _test("c", mode="compiled")]
    merged = merge_results([Loaded(Path("r"), "e", _doc(tests=tests, adapters=adapters))])
    m = model.build_matrix(merged)
    assert [(r.adapter["name"], r.device, r.mode) for r in m.rows] == [
        ("impl", "cpu", "eager"), ("impl", "cpu", "compiled"), ("impl", "cuda", "eager"), ("gone", "—", "—")]
    assert [r.span for r in m.rows] == [3, 0, 0, 1]


def test_drilldown_orders_failures_first_and_caps_passes() -> None:
    tests = [_test(f"p{i}", err=float(i)) for i in range(10)] + [_test("f", "failed", "fail", 1e3)]
    (g,) = model.drilldown(merge_results([Loaded(Path("r"), "e", _doc(tests=tests))]), max_passed_rows=4)
    assert [t["nodeid"] for t in g.failures] == ["f"]
    assert g.passed_shown == 4 and [t["nodeid"] for t in g.passed[:2]] == ["p9", "p8"]


def test_the_page_lists_the_worst_failures_of_each_cause_and_counts_the_rest(tmp_path: Path) -> None:
    tests = [_test(f"a{i}", "failed", "fail", float(100 + i), cause="one_minus_p_cancellation") for i in range(6)]
    tests += [_test(f"b{i}", "failed", "fail", float(10 + i), cause="bce_cancellation") for i in range(3)]
    tests += [_test("c", "failed", "fail", None, cause=None, message="raised")]
    merged = merge_results([Loaded(Path("r"), "e", _doc(tests=tests))])
    (g,) = model.drilldown(merged, max_passed_rows=4, max_failures_per_cause=2)
    (cell,) = g.cells  # one matrix cell: golden x float32 on cpu/eager
    # most harmful first: the fault (critical) before the precision causes (major), each worst first
    assert [t["nodeid"] for t in cell.failures] == ["c", "a5", "a4", "b2", "b1"]
    assert g.failures_hidden == cell.hidden == {"one_minus_p_cancellation": 4, "bce_cancellation": 1}
    assert cell.n_failed == 10 and cell.anchor == "t-" + model.cell_anchor("impl", "cpu", "eager", "golden", "float32")
    (everything,) = model.drilldown(merged, max_passed_rows=4)
    assert len(everything.failures) == 10 and not everything.failures_hidden
    p = tmp_path / "results-e.json"
    p.write_text(json.dumps(_doc(tests=tests)))
    html = build.build(collect([str(p)]), tmp_path / "out", "capped", None, max_failures_per_cause=2).html.read_text()
    assert "10 failing (5 listed)" in html
    assert "not listed: 1 more bce_cancellation, 4 more one_minus_p_cancellation" in html


# ----------------------------------------------------------------------------- gaps say "no data"


def test_sections_without_data_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from focalspec.spec import golden

    def broken() -> list[Any]:
        raise FileNotFoundError("golden file missing")

    monkeypatch.setattr(golden, "errata", broken)
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_doc(tests=[_test("a")])))
    r = build.build(collect([str(p)]), tmp_path / "out", "t", tmp_path / "no-findings.json")
    page = r.html.read_text()
    assert "No data: the results hold no sweeps" in page
    assert "No data: no benchmark files were given" in page
    assert "no-findings.json not found" in page
    assert "certified values: no data (FileNotFoundError: golden file missing)" in page


def test_bench_only_report(tmp_path: Path) -> None:
    r = build.build(collect([], [BENCH]), tmp_path, "bench only", None)
    page = r.html.read_text()
    assert "No data: no conformance results were given" in page
    assert page.count("<svg") >= 2


def test_many_tests_stay_usable(tmp_path: Path) -> None:
    tests = [_test(f"t{i}", family=("golden", "edge", "random")[i % 3], dtype=("float32", "float16")[i % 2],
                   err=float(i % 97)) for i in range(6000)]  # fmt: skip
    tests += [_test(f"f{i}", "failed", "fail", 1e5 + i) for i in range(300)]
    p = tmp_path / "big.json"
    p.write_text(json.dumps(_doc(tests=tests)))
    r = build.build(collect([str(p)]), tmp_path / "out", "big", None, max_passed_rows=500)
    page = r.html.read_text()
    cell = page[page.index('<tbody id="t-cell-impl-cpu-eager-golden-float32'):]
    cell = cell[: cell.index("</tbody>")]
    assert cell.count("<tr id=") == 300  # build() lists all unless capped
    assert "first 500 shown; all are in merged.json" in page
    assert r.html.stat().st_size < 5_000_000


# ----------------------------------------------------------------------------- plots


def test_symlog_is_odd_monotone_and_zero_at_zero() -> None:
    xs = [-1e4, -10.0, -1.0, 0.0, 1.0, 10.0, 1e4]
    ys = [plots.symlog(x) for x in xs]
    assert ys == sorted(ys) and plots.symlog(0.0) == 0.0 and plots.symlog(-10.0) == -plots.symlog(10.0)


def test_sweep_chart_marks_non_finite_points() -> None:
    s = plots.Series("g=2", [-100.0, -1.0, 0.0, 1.0, 100.0], [0.3, None, 0.0, 2.0, None])
    svg = plots.sweep_chart("t", [s], [(1.0, "exact 1 u")])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    (tri,) = re.findall(rf'<path d="([^"]*)" fill="{plots.NONFINITE}"', svg)  # one path of triangles
    assert tri.count("z") == 2
    assert "2 non-finite" in svg and "exact 1 u" in svg and "NaN/Inf" in svg
    assert plots.sweep_chart("t", [plots.Series("e", [], [])]).count("no finite logits") == 1


def test_size_chart_flags_incorrect_results() -> None:
    s = plots.Series("a", [1e3, 1e4, 1e5], [1e6, 2e6, 3e6], bad=[False, True, False])
    svg = plots.size_chart("t", [s], "elements / s")
    assert svg.count(f'stroke="{plots.NONFINITE}"') == 1 and "1 incorrect" in svg


def test_sweep_points_are_deduplicated_per_pixel() -> None:
    n = 100_000
    s = plots.Series("dense", [i / n * 20 - 10 for i in range(n)], [0.5] * n)
    assert len(plots.sweep_chart("t", [s])) < 40_000


def test_budget_lines_follow_the_tolerance_policy() -> None:
    lines = dict((label.split()[0], b) for b, label in build._budgets("float32", 2.0))
    assert lines == {"exact": 1.0, "faithful": 2.0, "accurate": 16.0, "acceptable": 512.0}


def test_errata_rows_mark_errata() -> None:
    rows = [build._erratum_row({"case_id": "x", "printed": "0.05", "certified": "0.0513", "verdict": v,
                                "explanation": ""}) for v in ("correct", "rounding/truncation", "wrong")]
    assert [r["erratum"] for r in rows] == [False, True, True]


def test_fixture_results_are_not_modified_by_building(built: build.Built) -> None:
    before = copy.deepcopy(read_json(Path(RESULTS[0])))
    build.build(collect([RESULTS[0]]), built.html.parent / "again", "t", None)
    assert read_json(Path(RESULTS[0])) == before


def test_null_error_of_a_failed_check_means_non_finite() -> None:
    """The suite writes infinite errors as null (strict JSON)."""
    t = _test("a", "failed", "fail", None, value={"max_err_u": None, "rms_err_u": None, "n_bad": 1, "n": 1})
    assert model.max_err(t) == math.inf
    inv = _test("i", "failed", None, None, check="invariant", worst={"index": 0, "err_u": None})
    assert model.max_err(inv) is None
    assert model.max_err(_test("s", "skipped", None, None)) is None


def test_failing_cell_shows_the_error_of_its_failures() -> None:
    c = _matrix([_test("a", err=0.9), _test("b", "failed", "fail", None, value=None)]).rows[0].cells[
        ("golden", "float32")]
    assert c.category == "fail" and c.shown_error == "ungraded"  # not the passing test's 0.9 u
    c = _matrix([_test("a", err=0.9), _test("b", "failed", "fail", 700.0)]).rows[0].cells[("golden", "float32")]
    assert c.shown_error == "700 u"


# ----------------------------------------------------------------------------- causes (SPEC §10.7)


def _failing(nodeid: str, cause: str | None, **kw: Any) -> dict[str, Any]:
    fields = {"cause": cause, "tier": "finite", "failure_tier": "finite", "cause_detail": f"{cause} at x=1",
              "cause_example": {"input": 1.0}, **kw}  # fmt: skip
    return _test(nodeid, "failed", "fail", None, **fields)


def test_a_failing_cell_names_its_most_severe_cause_not_its_most_frequent() -> None:
    """torchvision's float16 golden cell: 7 failures at ±inf and 6 NaN gradients at finite inputs
    must read "NaN@finite", and the ±inf ones must not colour it."""
    ext = {"tier": "extended", "failure_tier": "extended", "tier_required": False}
    tests = [_failing(f"e{i}", "nonfinite_input_policy", **ext) for i in range(7)]
    tests += [_failing(f"n{i}", "nonfinite_at_finite") for i in range(6)]
    c = _matrix([_test("p"), *tests]).rows[0].cells[("golden", "float32")]
    assert c.dominant_cause == "nonfinite_at_finite" and c.cause_label == "NaN@finite"
    assert c.category == "fail" and c.severity == "critical" and c.failed == 6 and c.policy == 7
    assert c.cause_title == "6 nonfinite_at_finite, 7 nonfinite_input_policy (not required)"
    tests = [_failing("a", "nonfinite_at_finite"), _failing("b", "convention"), _failing("c", "convention")]
    c = _matrix([_test("p"), *tests]).rows[0].cells[("golden", "float32")]
    assert c.dominant_cause == "nonfinite_at_finite"  # 1 critical outranks 2 major


def test_failures_in_a_tier_not_required_never_colour_a_cell() -> None:
    """kornia-binary and optax fail only at x = ±inf: their cells keep the grade of the rest."""
    ext = {"tier": "extended", "failure_tier": "extended", "tier_required": False}
    c = _matrix([_test("p", grade="faithful", err=1.5), _failing("e", "nonfinite_input_policy", **ext)]).rows[0].cells[
        ("golden", "float32")]
    assert c.category == "faithful" and c.policy == 1 and c.failed == 0 and c.cause_label == "±∞ only"
    only = _matrix([_failing("e", "nonfinite_input_policy", **ext)]).rows[0].cells[("golden", "float32")]
    assert only.category == "policy" and only.severity == "policy"
    # a severity written by the suite (or the impact measurement) wins over the derived one
    written = _matrix([_failing("m", "low_precision_compute", severity="minor")]).rows[0].cells[("golden", "float32")]
    assert written.category == "fail" and written.severity == "minor"
    # results written before tiers: the tier decides, an old entry at +inf is not required
    old = _test("o", "failed", "fail", None, tier="extended", cause="nonfinite_input_policy")
    assert _matrix([old]).rows[0].cells[("golden", "float32")].category == "policy"


def test_an_entry_without_a_cause_is_classified_from_its_evidence() -> None:
    """Results written before causes existed: the report classifies them itself."""
    worst = {"index": [0], "input": 17.5, "target": 1.0, "expected": -1e-23, "got": "nan", "err_u": None,
             "which": "grad"}  # fmt: skip
    t = _failing("a", None, check="grad", worst=worst, failure_tier="saturation",
                 variant={"activation": "sigmoid", "input_kind": "logits", "gamma": 0.5, "alpha": 0.25})
    c = _matrix([t]).rows[0].cells[("golden", "float32")]
    assert c.dominant_cause == "nonfinite_at_finite"


def test_summary_line_per_implementation_and_the_unclassified_count(tmp_path: Path) -> None:
    ext = {"tier": "extended", "failure_tier": "extended", "cause": "nonfinite_input_policy",
           "cause_detail": "value NaN at x=+inf", "cause_example": {"input": "inf"}}  # fmt: skip
    tests = [_test("p", tier="finite"), _failing("a", "convention"), _failing("b", "unclassified"),
             _test("e", "failed", "fail", None, **ext)]
    merged = merge_results([Loaded(Path("r"), "e", _doc(tests=tests))])
    (s,) = model.impl_summaries(merged)
    assert s.finite_grade == "fail" and s.failed == 3
    assert dict((c, n) for c, n, _ in s.causes) == {"convention": 1, "unclassified": 1, "nonfinite_input_policy": 1}
    assert ("finite", 3, 2) in s.tiers and ("extended", 1, 1) in s.tiers
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_doc(tests=tests)))
    page = build.build(collect([str(path)], []), tmp_path / "out", "t", None).html.read_text()
    causes = page[page.index('<section id="causes">'):page.index('<section id="agreement">')]
    assert "convention at x=1" in causes and "finite 1/3*" in causes and "extended 0/1" in causes
    # most severe first: convention (major) and unclassified (major) before the ±inf policy row
    assert causes.index("<code>convention</code>") < causes.index("<code>nonfinite_input_policy</code>")


# ----------------------------------------------------------------------------- the package's own shape


def test_no_import_cycle_between_the_report_modules() -> None:
    """reports/harm.py and reports/model.py imported each other (lazily, inside functions); the shared facts now
    live in reports/entry.py, which imports no other report module."""
    from test_import_graph import ROOT, cycles, graph, rel

    files = sorted((ROOT / "reports").glob("*.py"))
    assert ROOT / "reports" / "harm.py" in graph(files)[ROOT / "reports" / "model.py"]  # the graph sees the edge
    found = cycles(graph(files))
    assert not found, "import cycles in reports/: " + "; ".join(" <-> ".join(map(rel, c)) for c in found)


def test_no_report_module_over_600_lines() -> None:
    from test_import_graph import ROOT

    long = {p.name: n for p in (ROOT / "reports").glob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long
