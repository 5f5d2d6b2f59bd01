"""The built report in a real browser: headless Chromium renders the matrix, paints a page
that is not blank, and logs nothing to the console.  The checker itself is tested on pages
that must fail it (a script error, a blank page), so a silent checker cannot pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from focalspec.reports import browser_check, build, harm
from focalspec.reports.merge import collect, merge_results

FIX = Path(__file__).parent / "fixtures" / "report"


@pytest.fixture(scope="module")
def browser() -> str:
    try:
        return browser_check.ensure_chromium(install=True)
    except browser_check.BrowserUnavailable as exc:
        pytest.skip(f"headless Chromium not available and not installable here: {exc}")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    return build.build(collect([str(FIX)]), out, "browser check", FIX / "findings.json").html


def test_report_renders_with_matrix_and_no_console_errors(browser: str, report: Path, tmp_path: Path) -> None:
    r = browser_check.check(report, tmp_path / "shot.png", browser=browser)
    assert r.ok, r.problems
    assert r.dom_has_matrix and r.matrix_rows >= 7  # two header rows + one per implementation row
    assert r.png_size == (1400, 1800) and r.distinct_colours > 50
    assert r.console == []


def test_checker_reports_script_errors(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><table id="matrix"><tr><td>x</td></tr></table>'
                    "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    r = browser_check.check(page, tmp_path / "bad.png", width=400, height=300, browser=browser)
    assert not r.ok
    assert any("boom" in c for c in r.console)
    assert any("undefinedFunction" in c for c in r.console)


def test_checker_reports_a_blank_page_without_matrix(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    r = browser_check.check(page, tmp_path / "blank.png", width=400, height=300, browser=browser)
    assert not r.dom_has_matrix
    assert r.distinct_colours < 8
    assert any("blank" in p for p in r.problems) and any("matrix" in p for p in r.problems)


def test_png_decoder_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="PNG signature"):
        browser_check.png_stats(b"not a png")


def test_missing_browser_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOCALSPEC_CHROMIUM", "/nonexistent/chromium-binary")
    with pytest.raises(browser_check.BrowserUnavailable, match="no chromium"):
        browser_check.ensure_chromium(install=False)


# ----------------------------------------------------------------------------- the first screen, speed, script


def test_the_first_screen_holds_the_answer(browser: str, report: Path) -> None:
    """At 1400 x 900 the safe-to-train table ends above the fold (the fixture's five implementations)."""
    box = browser_check.probe(report, "answer-table", browser=browser)
    assert box.top is not None and box.bottom is not None
    assert 0 < box.top < box.bottom <= 900
    assert box.console == []


# the widest first screen the main job makes: its longest names with "tests findings" links, three-digit counts of
# every severity with several causes each ("199 convention +4"), impact lines in all four dtypes (the names are
# measured in reports/impact.json)
WIDE = ("keras-categorical-torch", "keras-binary-jax", "kornia-multiclass", "monai-softmax", "torchvision", "smp")
DTYPES = ("float64", "float32", "bfloat16", "float16")
LEVELS = {"critical": ("nonfinite_at_finite", "underflow_flush"),
          "major": ("convention", "low_precision_compute", "clip_epsilon", "bce_cancellation", "underflow_flush"),
          "minor": ("low_precision_compute", "one_minus_p_cancellation", "clip_epsilon", "bce_cancellation",
                    "underflow_flush"),
          "policy": ("nonfinite_input_policy",)}  # fmt: skip


def _wide_entry(adapter: str, dtype: str, level: str, cause: str, i: int) -> dict[str, Any]:
    err = None if cause == "nonfinite_at_finite" else 1.2e15
    return {"nodeid": f"test_conformance.py::t[{adapter}-{dtype}-{level}-{cause}-{i}]", "adapter": adapter,
            "device": "cpu", "dtype": dtype, "mode": "eager", "case_id": f"c{i}", "family": "golden",
            "outcome": "failed", "check": "grad" if cause == "nonfinite_at_finite" else "value", "spec_section": "§1",
            "variant": {}, "grade": "fail", "required_grade": "acceptable", "cause": cause, "severity": level,
            "failure_tier": "extended" if level == "policy" else "finite", "tier_required": level != "policy",
            "value": {"max_err_u": err, "rms_err_u": err, "n_bad": 1, "n": 1}, "grad": None, "worst": None,
            "message": "", "reproducer": None, "duration_s": 0.01, "skip_reason": None, "tier": "finite"}  # fmt: skip


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wide")
    tests = [_wide_entry(a, d, level, cause, i) for a in WIDE for d in DTYPES for level, causes in LEVELS.items()
             for k, cause in enumerate(causes) for i in range(1 if k else 30)]  # fmt: skip
    doc = {"schema": "focalspec-results", "schema_version": 1, "suite": {"version": "0.1.0", "git_revision": "abc"},
           "run": {"started": "2025-01-01T00:00:00", "finished": "2025-01-01T00:00:00", "env": "wide"},
           "adapters": [{"name": a, "unavailable": None} for a in WIDE], "tests": tests, "sweeps": [],
           "stale": {"xfails": [], "skips": []}}  # fmt: skip
    (root / "results-wide.json").write_text(json.dumps(doc))
    one = json.loads((FIX / "findings.json").read_text())[0]
    (root / "findings-wide.json").write_text(json.dumps([dict(one, id=f"F-{a}", adapter=a) for a in WIDE]))
    inputs = collect([str(root / "results-wide.json")])
    return build.build(inputs, root / "out", "wide", root / "findings-wide.json").html


def _dtype_boxes(html: Path, browser: str, width: int) -> tuple[browser_check.Box, dict[str, list[browser_check.Box]]]:
    """The box of the first screen's scroll container (what lies beyond its right edge is cut off) and the boxes
    of the dtype headers and cells, and of everything inside them, by dtype."""
    found = browser_check.probe(html, width=width, browser=browser, select=(
        "#answer-scroll, #answer-table [data-dtype], #answer-table [data-dtype] *", "data-dtype"))
    assert found.console == []
    assert found.boxes and found.boxes[0].label == "answer-scroll", found.boxes[:1]
    out: dict[str, list[browser_check.Box]] = {}
    last = ""
    for b in found.boxes[1:]:  # document order: a cell's contents follow it and carry no label of their own
        last = b.label or last
        out.setdefault(last, []).append(b)
    return found.boxes[0], out


def test_every_dtype_column_of_the_first_screen_fits_1400_px(browser: str, wide_report: Path) -> None:
    """The float16 column used to end off screen once the impact lines widened the cells: every dtype header and
    cell, and all they hold, lies inside the table's scroll box, and that inside the 1400 px window."""
    frame, boxes = _dtype_boxes(wide_report, browser, 1400)
    assert 0 <= frame.left < frame.right <= 1400
    assert sorted(boxes) == sorted(DTYPES)
    for dtype, bs in boxes.items():
        assert len(bs) >= 1 + len(WIDE), (dtype, len(bs))  # the header and one cell per implementation at least
        assert any(b.label == "" for b in bs), dtype  # their contents were measured too
        widest = max(bs, key=lambda b: b.right)
        assert frame.left <= min(b.left for b in bs) and widest.right <= frame.right, (dtype, widest, frame)
    html = wide_report.read_text(encoding="utf-8")
    assert "/batch, step " in html and "+4</td>" in html, "the page must carry what widened the cells"
    assert html.count(">findings</a>") >= len(WIDE)


def test_the_column_check_fails_where_the_grid_does_not_fit(browser: str, wide_report: Path) -> None:
    """The same page in a window too narrow for it: the last dtype column ends beyond the scroll box."""
    frame, boxes = _dtype_boxes(wide_report, browser, 900)
    assert max(b.right for b in boxes["float16"]) > frame.right


def test_the_page_loads_within_two_seconds(browser: str, report: Path) -> None:
    times = browser_check.load_times(report, runs=3, browser=browser)
    assert all(t > 0 for t in times)
    assert sorted(times)[1] <= 2000, times


def test_the_filter_box_hides_rows_without_console_errors(browser: str, report: Path) -> None:
    everything = browser_check.probe(report, query=" ", browser=browser)  # a blank query shows every row
    nan_only = browser_check.probe(report, query="NaN@finite", browser=browser)
    assert everything.shown_rows and nan_only.shown_rows is not None
    assert 0 < nan_only.shown_rows < everything.shown_rows
    assert nan_only.console == [] and everything.console == []


def test_a_view_of_a_section_is_cropped_to_it_and_not_blank(browser: str, report: Path, tmp_path: Path) -> None:
    png = tmp_path / "matrix.png"
    assert browser_check.screenshot_at(report, "agreement", png, 1400, 600, browser=browser) == (1400, 600)
    w, h, colours = browser_check.png_stats(png.read_bytes())
    assert (w, h) == (1400, 600) and colours > 50
    with pytest.raises(RuntimeError, match="no element"):
        browser_check.screenshot_at(report, "no-such-id", tmp_path / "x.png", browser=browser)


def test_png_encoder_round_trips() -> None:
    rows = [bytes([x % 256, y, 7]) * 1 for y in range(3) for x in range(1)]
    data = browser_check.png_encode(1, 3, 3, rows)
    assert browser_check.png_rows(data) == (1, 3, 3, rows)


def test_a_column_header_sorts_its_table(browser: str, report: Path) -> None:
    """The first screen sorts by harm (the model's order: severity, then counts); a click on a header
    sorts by that column instead -- "implementation" by name, "critical" by the count, fewest first."""
    before = browser_check.probe(report, sort=("answer-table", 99), browser=browser)  # no such column: no sort
    by_name = browser_check.probe(report, sort=("answer-table", 0), browser=browser)
    by_critical = browser_check.probe(report, sort=("answer-table", 2), browser=browser)
    assert before.first_row and by_name.first_row and by_critical.first_row and by_name.console == []
    results = merge_results(collect([str(FIX)]).results)
    rows = [r for r in harm.answer_rows(results, ["float64", "float32", "bfloat16", "float16"], {})
            if not r.unavailable]  # fmt: skip
    fewest_critical = min(rows, key=lambda r: r.levels["critical"].n)  # a stable sort keeps the harm order of ties
    assert fewest_critical.name != rows[0].name, "the fixture must tell a column's order from the harm order"
    assert before.first_row == f"answer-{rows[0].drill}"
    assert by_name.first_row == f"answer-{min(rows, key=lambda r: r.name.lower()).drill}"
    assert by_critical.first_row == f"answer-{fewest_critical.drill}"
