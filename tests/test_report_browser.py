"""The built report in a real browser: headless Chromium renders the matrix, paints a page
that is not blank, and logs nothing to the console.  The checker itself is tested on pages
that must fail it (a script error, a blank page), so a silent checker cannot pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from focalspec.reports import browser_check, build
from focalspec.reports.merge import collect

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
