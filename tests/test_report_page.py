"""The report's page as its three readers use it: a first screen that ranks harm, links that
resolve, readable colours, no leaked paths, numbers that can be told apart, and the
``focalspec golden`` command that prints each certified value.  Every check here fails on the
page the report built before it ranked harm (dead links, 3.4:1 white-on-green, absolute paths,
count-ordered causes)."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mpmath
import pytest

from focalspec.cli_main import main as cli_main
from focalspec.reports import build, digits, findings_view, harm, model, palette, plots
from focalspec.reports.merge import Loaded, collect, merge_results

FIX = Path(__file__).parent / "fixtures" / "report"
VARIANT = {"activation": "sigmoid", "input_kind": "logits", "gamma": 2.0, "alpha": 0.25, "soft_target": "canonical",
           "clip_eps": None, "label_smoothing": 0.0, "reduction": "none"}  # fmt: skip


def _entry(nodeid: str, adapter: str = "impl", outcome: str = "passed", **kw: Any) -> dict[str, Any]:
    t = {"nodeid": nodeid, "adapter": adapter, "device": "cpu", "dtype": "float32", "mode": "eager",
         "case_id": nodeid, "family": "golden", "check": "value", "spec_section": "§1", "variant": VARIANT,
         "outcome": outcome, "grade": "fail" if outcome == "failed" else "exact", "required_grade": "acceptable",
         "value": {"max_err_u": 0.5, "rms_err_u": 0.5, "n_bad": 0, "n": 1}, "grad": None, "worst": None,
         "message": "", "reproducer": None, "duration_s": 0.01, "skip_reason": None, "tier": "finite"}  # fmt: skip
    t.update(kw)
    return t


def _fail(nodeid: str, adapter: str, cause: str, tier: str = "finite", err: Any = None, **kw: Any) -> dict[str, Any]:
    return _entry(nodeid, adapter, "failed", cause=cause, failure_tier=tier, tier_required=tier != "extended",
                  cause_detail=f"{cause} at x=1", value={"max_err_u": err, "rms_err_u": err, "n_bad": 1, "n": 1},
                  **kw)  # fmt: skip


def _doc(tests: list[dict[str, Any]], adapters: list[str], command: str = "pytest") -> dict[str, Any]:
    return {"schema": "focalspec-results", "schema_version": 1,
            "suite": {"version": "0.1.0", "git_revision": "abc", "depth": "quick"},
            "run": {"started": "2025-01-01T00:00:00", "finished": "2025-01-01T00:00:00", "host": "h",
                    "python": "3.11", "platform": "linux", "command": command, "env": "harm"},
            "adapters": [{"name": a, "unavailable": None} for a in adapters] + [{"name": "gone", "unavailable": "x"}],
            "tests": tests, "sweeps": [], "stale": {"xfails": [], "skips": []}}  # fmt: skip


# three implementations: one with a training hazard hidden behind more numerous ±inf failures,
# one that fails only at ±inf (an unrequired tier), one that conforms
HAZARD = [_fail(f"inf{i}", "hazard", "nonfinite_input_policy", "extended") for i in range(7)]
HAZARD += [_fail(f"nan{i}", "hazard", "nonfinite_at_finite", check="grad", dtype="float16") for i in range(6)]
HAZARD += [_fail("lp", "hazard", "low_precision_compute", err=2.7e8, dtype="float64",
                 worst={"index": [0], "input": -18.0, "target": 0.0, "expected": "1.5149700412e-08",
                        "got": "1.5149700001e-08", "err_u": 2.7e8, "which": "value"},
                 cause_example={"input": -17.5, "target": 0.0, "expected": 2.5e-8, "got": 2.4e-8,
                                "which": "value"})]  # fmt: skip
POLICY = [_entry("ok", "policy-only"), _fail("pinf", "policy-only", "nonfinite_input_policy", "extended")]
GOOD = [_entry(f"g{i}", "good", dtype=d) for i, d in enumerate(("float64", "float32", "float16"))]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The page built from files under a temporary folder, so that its absolute path is known."""
    root = tmp_path_factory.mktemp("absolute-build-root")
    for p in FIX.glob("*.json"):
        shutil.copy(p, root / p.name)
    (root / "results-harm.json").write_text(json.dumps(_doc(
        HAZARD + POLICY + GOOD, ["hazard", "policy-only", "good"],
        command=f"python -m pytest --focal-json {root}/results-harm.json",
    )))  # fmt: skip
    built = build.build(collect([str(root)], [str(root / "bench-cpu.json")]), root / "out", "t", root / "findings.json")
    return built.html.read_text(encoding="utf-8"), root


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.attrs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        if d.get("id"):
            self.ids.append(str(d["id"]))
        if tag == "a" and str(d.get("href") or "").startswith("#"):
            self.links.append(str(d["href"])[1:])
        self.attrs += [str(v) for k, v in attrs if v and k != "d"]  # an SVG path's data is not text
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def _parse(html: str) -> _Anchors:
    p = _Anchors()
    p.feed(html)
    return p


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


# ----------------------------------------------------------------------------- first screen


def test_first_screen_ranks_harm_not_counts(page: tuple[str, Path]) -> None:
    html, _ = page
    first = _section(html, "answer")
    assert html.index('<section id="answer">') < html.index('<section id="agreement">')  # the answer comes first
    rows = re.findall(r'<tr id="answer-[^"]+"><td class="name" data-v="([^"]+)"', first)
    assert rows.index("hazard") < rows.index("policy-only") and rows.index("hazard") < rows.index("good")
    hazard = first[first.index('data-v="hazard"'):]
    hazard = hazard[: hazard.index("</tr>")]
    assert "unsafe to train with" in hazard and "6 NaN grads" in hazard  # float16: the 6 NaN gradients
    assert re.search(r'class="dt safe-no"[^>]*><span class="nw">no <span class="ev">· <span>6 NaN grads', hazard)
    assert re.search(r'<td class="num" data-v="[^"]+">NaN/Inf</td>', hazard)  # the worst error of a required failure
    assert re.search(r'class="dt safe-caution"[^>]*><span class="nw">caution', hazard)  # float64: low precision, major
    policy_row = first[first.index('data-v="policy-only"'):]
    policy_row = policy_row[: policy_row.index("</tr>")]
    assert "conforms (±∞ only)" in policy_row and "safe-no\"" not in policy_row
    assert "safe-caution" not in policy_row
    for target in ("causes-hazard", "impl-hazard", "findings-torchvision"):  # rows link to causes, tests, findings
        assert f'href="#{target}' in first


def test_answer_rows_sort_by_severity_then_counts() -> None:
    merged = merge_results([Loaded(Path("r"), "e", _doc(HAZARD + POLICY + GOOD, ["good", "policy-only", "hazard"]))])
    harm.annotate(merged)
    rows = harm.answer_rows(merged, ["float64", "float32", "float16"], {})
    assert [r.name for r in rows] == ["hazard", "policy-only", "good", "gone"]
    hazard = rows[0]
    assert hazard.worst == "critical" and hazard.levels["critical"].n == 6 and hazard.levels["policy"].n == 7
    assert hazard.levels["critical"].lead == "nonfinite_at_finite"
    assert hazard.dtypes["float16"].answer == "no" and hazard.dtypes["float16"].nonfinite_grads == 6
    assert hazard.dtypes["float64"].answer == "caution" and hazard.dtypes["float32"].answer == "yes"
    assert rows[1].verdict.startswith("conforms") and rows[1].dtypes["float32"].answer == "yes"
    assert rows[3].verdict == "not tested here"


def test_a_severity_written_in_the_entry_is_used() -> None:
    t = _fail("m", "x", "low_precision_compute", err=300.0, severity="minor")
    assert harm.severity_of(t) == "minor"
    assert harm.severity_of(_fail("m", "x", "low_precision_compute")) == "major"  # derived without it
    assert harm.severity_of(_fail("e", "x", "low_precision_compute", "extended")) == "policy"  # tier not required


def test_causes_carry_their_fix_as_text_most_severe_first(page: tuple[str, Path]) -> None:
    html, _ = page
    causes = _section(html, "causes")
    hazard = causes[causes.index('id="causes-hazard'):]
    hazard = hazard[: hazard.index("</table>")]
    order = re.findall(r"<code>([a-z_]+)</code></td>", hazard)
    assert order == ["nonfinite_at_finite", "low_precision_compute", "nonfinite_input_policy"]  # not by count
    from focalspec.conformance.diagnosis.causes import CAUSES

    for name in order:  # the fix is visible text, not a tooltip
        assert CAUSES[name].fix.replace("'", "&#39;") in hazard
    assert "title=" not in hazard
    assert "Tier counts" in causes and "a failed check counts in the tier of its failing elements" in causes


def test_findings_show_severity_fix_and_golden_command(page: tuple[str, Path]) -> None:
    html, _ = page
    findings = _section(html, "findings")
    blocks = re.findall(r'<div class="finding sev-(\w+)"[^>]*>(.*?)</div>', findings, re.S)
    assert blocks and all("<b>Fix:</b>" in body for _, body in blocks)
    f1 = next(body for _, body in blocks if "F-fixture-1" in body)  # NaN gradient at x = -10000: critical
    assert "s-critical" in f1
    assert "<span>focalspec</span> <span>golden</span> <span>--x=-10000</span> <span>--y=0</span>" in f1


def test_finding_shapes_documented_and_generated() -> None:
    # torchvision's F-TORCHVISION-1: γ = 0.5, float32, the power's autodiff at 1 − p_t = 0 (x = 16.64 > 16.6355)
    documented = {"id": "F-1", "adapter": "a", "variant": {**VARIANT, "gamma": 0.5}, "inputs": [16.64],
                  "targets": [1.0], "dtype": "float32", "check": "grad", "expected": [-5.4e-12], "observed": ["nan"],
                  "err_u": "inf", "cause": "prose: the power's gradient is NaN"}  # fmt: skip
    v = findings_view.finding_view(documented)
    assert v["severity"] == "critical" and v["cause"] == "nonfinite_at_finite" and v["fix"]
    assert v["golden"] == "focalspec golden --x=16.64 --y=1 --alpha=0.25 --gamma=0.5 --dtype=float32 --grad"
    generated = {"id": "a:clip_epsilon", "adapter": "a", "cause": "clip_epsilon", "fix": "Work on logits.",
                 "tiers": ["extended"], "smallest": {"variant": VARIANT, "input": 3.0, "target": 0.0,
                                                     "dtype": "float64", "check": "value", "expected": 1.0,
                                                     "observed": 2.0}}  # fmt: skip
    g = findings_view.finding_view(generated)
    assert g["severity"] == "policy" and g["fix"] == "Work on logits." and "--dtype=float64" in g["golden"]


# ----------------------------------------------------------------------------- the matrix


def test_each_cell_has_its_own_anchor_and_links_to_exactly_its_tests(page: tuple[str, Path]) -> None:
    html, _ = page
    matrix = _section(html, "agreement")
    cells = re.findall(r'<td id="(cell-[^"]+)" class="cell[^"]*"[^>]*><a href="#([^"]+)"', matrix)
    assert len(cells) > 20 and len({c for c, _ in cells}) == len(cells)
    for cell, target in cells:
        assert target == "t-" + cell
        body = html[html.index(f'<tbody id="{target}">'):]
        body = body[: body.index("</tbody>")]
        assert 'class="cellhead"' in body
    # the hazard's float16 golden cell lists its 6 NaN gradients and nothing of another cell
    anchor = "t-" + model.cell_anchor("hazard", "cpu", "eager", "golden", "float16")
    body = html[html.index(f'<tbody id="{anchor}">'):]
    body = body[: body.index("</tbody>")]
    assert body.count("<tr id=") == 6 and "NaN@finite" in body and ">lp<" not in body


def test_unrequired_failures_are_hatched_not_coloured(page: tuple[str, Path]) -> None:
    html, _ = page
    matrix = _section(html, "agreement")
    cell = model.cell_anchor("policy-only", "cpu", "eager", "golden", "float32")
    td = re.search(rf'<td id="{re.escape(cell)}" class="([^"]+)"', matrix)
    assert td and "g-fail" not in td.group(1) and "g-exact" in td.group(1)
    row = matrix[matrix.index(f'id="{cell}"'):]
    assert '<span class="pol h-policy">+1 ±∞</span>' in row[: row.index("</td>")]
    hazard16 = model.cell_anchor("hazard", "cpu", "eager", "golden", "float16")
    hz = matrix[matrix.index(f'id="{hazard16}"'):]
    assert '<span class="ev">NaN@finite</span>' in hz[: hz.index("</td>")]


# ----------------------------------------------------------------------------- navigation


def test_every_in_page_link_resolves_and_ids_are_unique(page: tuple[str, Path]) -> None:
    html, _ = page
    p = _parse(html)
    dupes = {i for i in p.ids if p.ids.count(i) > 1}
    assert not dupes
    dead = sorted(set(p.links) - set(p.ids))
    assert not dead, dead[:10]
    assert len(p.links) > 100


def test_the_link_checker_finds_a_dead_link() -> None:
    p = _parse('<a href="#there">x</a><p id="here"></p>')
    assert set(p.links) - set(p.ids) == {"there"}


def test_sweeps_are_collapsed_and_name_their_implementation(page: tuple[str, Path]) -> None:
    html, _ = page
    sweeps = _section(html, "sweeps")
    opened = re.findall(r"<details[^>]*\bopen\b", sweeps)
    assert not opened
    heads = re.findall(r"<h3>([^<]+)</h3>", sweeps)
    names = {m.group(1) for m in re.finditer(r"<summary><b>([^<]+)</b> — error sweeps", sweeps)}
    assert heads and names and all(any(h.startswith(n + " · ") for n in names) for h in heads)


def test_filter_box_and_sortable_columns_are_inline(page: tuple[str, Path]) -> None:
    html, _ = page
    assert '<input id="filter" type="search"' in html and 'addEventListener("input"' in html
    assert html.count("data-col=") > 10 and "closest(\"th[data-col]\")" in html
    assert not re.search(r"<script[^>]*\bsrc=", html)


# ----------------------------------------------------------------------------- accessibility, hygiene


def test_the_palette_keeps_text_contrast_at_least_4_5() -> None:
    low = [(n, bg, fg, round(palette.contrast(bg, fg), 2)) for n, bg, fg in palette.pairs()
           if palette.contrast(bg, fg) < 4.5]  # fmt: skip
    assert not low
    assert palette.contrast("#ffffff", "#009E73") < 4.5  # the pair the old page used: the check can fail


_HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")


def test_every_text_colour_on_the_page_reads_on_its_background(page: tuple[str, Path]) -> None:
    """From the page's own <style>: each rule that sets a text colour, against the background
    it sets (each stripe of a hatch) or, without one, against every background the page paints
    under plain text; SVG text against white."""
    html, _ = page
    css = html[html.index("<style>") + 7 : html.index("</style>")]
    var = dict(re.findall(r"--([\w-]+)\s*:\s*(#[0-9a-fA-F]{3,6})", css))
    plain_backgrounds = ["#ffffff", "#f5f6f8", "#eef1f5", "#fff1e6", "#fff8d6"]
    checked = 0
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        m = re.search(r"(?<![-\w])color\s*:\s*([^;]+)", body)
        if not m:
            continue
        value = m.group(1).strip()
        fg = var[value[6:-1].lstrip("-")] if value.startswith("var(") else value
        if not _HEX.fullmatch(fg):  # inherit: checked where it is set
            continue
        bgm = re.search(r"background\s*:\s*([^;]+)", body)
        bgs = _HEX.findall(bgm.group(1)) if bgm else plain_backgrounds
        for bg in bgs:
            checked += 1
            assert palette.contrast(bg, fg) >= 4.5, (selector.strip(), fg, bg)
    assert checked > 30
    for fill in set(re.findall(r'<text[^>]*\bfill="(#[0-9a-fA-F]+)"', html)) | set(
        re.findall(r'<svg[^>]*\bfill="(#[0-9a-fA-F]+)"', html)
    ):
        assert palette.contrast("#ffffff", fill) >= 4.5, fill


_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:home|root|tmp|work|usr|opt|var|Users|builds?|mnt|srv)/|[A-Za-z]:\\\\")


def test_no_absolute_local_path_anywhere_in_the_page(page: tuple[str, Path]) -> None:
    html, root = page
    assert str(root) not in html and str(root.parent) not in html
    p = _parse(html)
    leaks = [t for t in p.text + p.attrs if _ABSOLUTE.search(t)]
    assert not leaks, leaks[:5]
    assert "…/results-harm.json" in html  # the command keeps the file's name


def test_path_scrubbing_keeps_what_is_not_a_path() -> None:
    s = build.scrub_paths
    assert s("read /work/wt/x/results/torch.json now") == "read …/torch.json now"
    assert s(r"C:\Users\me\r.json") == "…/r.json"
    for keep in ("cpu/eager", "passed/run 3/4", "https://example.org/a/b", "</td></tr>", "a/b/c", "<br/>"):
        assert s(keep) == keep
    assert _ABSOLUTE.search("x /home/u/f") and not _ABSOLUTE.search("cpu/eager")


def test_sweep_series_differ_by_marker_and_size_series_by_dash() -> None:
    series = [plots.Series(f"s{i}", [1.0, 2.0], [1.0, 2.0], plots.colour(i), marker=plots.marker(i)) for i in range(4)]
    svg = plots.sweep_chart("t", series)
    glyph = r'<path d="M-?\d+ -?\d+(h0|h6|v6)[^"]*" stroke="#[0-9A-Fa-f]+" stroke-opacity="0.8" ([^/]*?) fill="none"'
    drawn = set(re.findall(glyph, svg))
    assert len(drawn) == 4  # four glyphs: square dot, round dot, horizontal bar, vertical bar
    assert len({plots.marker(i) for i in range(8)}) == 4 and plots.marker(0) != plots.marker(8)  # colour repeats
    lines = [plots.Series(f"l{i}", [10.0, 100.0], [1.0, 2.0], plots.colour(i), dash=plots.dash(i)) for i in range(3)]
    assert len(set(re.findall(r'stroke-dasharray="([^"]+)"', plots.size_chart("t", lines, "y")))) == 2


# ----------------------------------------------------------------------------- numbers and the docs writer


def test_values_carry_enough_digits_to_differ() -> None:
    p = digits.pair("1.5149700412e-08", "1.5149700001e-08")  # printed as "1.51497e-08" twice before
    assert p.exact != p.observed and p.exact.startswith("1.51497004") and p.observed.startswith("1.51497000")
    assert p.magnitude == "≈1e-8" and p.rel == "2.7e-08"
    assert digits.pair(0.5, 0.25).exact == "0.5000"
    nan = digits.pair("-2.1661762841102174e-11", "nan")
    assert nan.observed == "nan" and nan.magnitude == "≈1e-11"


def test_the_drilldown_sorts_by_severity_then_error_and_shows_differing_digits(page: tuple[str, Path]) -> None:
    html, _ = page
    drill = html[html.index('<details class="impl" id="impl-hazard'):]
    drill = drill[: drill.index("</table>")]
    sevs = re.findall(r'<span class="badge s-(\w+)">', drill)
    ranks = [harm.SEVERITIES.index(s) for s in sevs]
    assert sevs[0] == "critical"
    assert "1.51497004e-08" in drill and "1.51497000e-08" in drill and "(≈1e-8)" in drill
    # within one cell the rows are most harmful first
    for body in re.findall(r"<tbody[^>]*>(.*?)</tbody>", drill, re.S):
        r = [harm.SEVERITIES.index(s) for s in re.findall(r'<span class="badge s-(\w+)">', body)]
        assert r == sorted(r)
    assert ranks


@pytest.mark.parametrize(("x", "t", "dtype"), [(-1.5, 1.0, "float32"), (2.25, 0.0, "float64")])
def test_the_golden_command_prints_the_certified_value(x: float, t: float, dtype: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cmd = digits.golden_command(VARIANT, x, t, dtype)
    assert cmd and cmd.startswith("focalspec golden --x=")
    assert cli_main(cmd.split()[1:]) == 0
    out = capsys.readouterr().out
    printed = re.search(r"^loss\s+(\S+)", out, re.M)
    assert printed
    with mpmath.workdps(60):  # FL = -alpha_t (1 - p_t)^gamma log p_t, by hand
        p = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
        pt, at = (p, mpmath.mpf("0.25")) if t == 1.0 else (1 - p, mpmath.mpf("0.75"))
        exact = -at * (1 - pt) ** 2 * mpmath.log(pt)
        assert abs(mpmath.mpf(printed.group(1)) / exact - 1) < mpmath.mpf("1e-30")


def test_a_softmax_row_has_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    cmd = digits.golden_command({**VARIANT, "activation": "softmax", "clip_eps": 1e-7}, [50.0, -0.5, 0.0, 0.0], 0,
                                "float32")  # fmt: skip
    assert cmd == ("focalspec golden --softmax --x=50,-0.5,0,0 --y=0 --alpha=0.25 --gamma=2 --clip-eps=1e-07 "
                   "--dtype=float32")  # fmt: skip
    assert cli_main(cmd.split()[1:]) == 0 and "loss" in capsys.readouterr().out


def test_no_command_where_one_element_cannot_say_it() -> None:
    assert digits.golden_command({**VARIANT, "reduction": "mean"}, 1.0, 1.0, "float32") is None
    assert digits.golden_command({**VARIANT, "activation": "softmax"}, 1.0, 1.0, "float32") is None  # not a row
    assert digits.golden_command({**VARIANT, "activation": "softmax"}, [1.0, 2.0], 0.5, "float32") is None
    assert digits.golden_command(VARIANT, "inf", 1.0, "float32") is None
    assert digits.case_command("seed000_ce_fg_easy_short") == "focalspec golden seed000_ce_fg_easy_short"


def test_worked_examples_have_anchors_and_their_command(page: tuple[str, Path], capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    html, _ = page
    ex = _section(html, "examples")
    rows = re.findall(r'<tr id="(ex-[^"]+)"[^>]*><td class="mono"><a href="#\1">([^<]+)</a>', ex)
    assert len(rows) >= 10
    case = rows[0][1]
    assert f"<code class=\"cmd\">focalspec golden {case}</code>" in ex
    assert cli_main(["golden", case]) == 0 and case in capsys.readouterr().out


def test_the_matrix_follows_the_first_screens_order(page: tuple[str, Path]) -> None:
    html, _ = page
    names = re.findall(r'<td class="impl" rowspan="\d+"><a class="impl-name" href="#[^"]+">([^<]+)</a>',
                       _section(html, "agreement"))
    assert names.index("hazard") < names.index("policy-only") < names.index("good")


def test_a_rows_command_states_the_element_the_row_shows(page: tuple[str, Path]) -> None:
    html, _ = page
    drill = html[html.index('<details class="impl" id="impl-hazard'):]
    row = drill[drill.index('<tr id="t-harm-lp-'):]
    row = row[: row.index("</tr>")]
    assert "-18.0 / 0.0" in row and "focalspec golden --x=-18 --y=0 --alpha=0.25 --gamma=2 --dtype=float64" in row
    # the cause table shows the cause's smallest input, and its command states that one
    causes = _section(html, "causes")
    lp = causes[causes.index('id="cause-hazard-low-precision'):]
    assert "<span>--x=-17.5</span>" in lp[: lp.index("</tr>")]


def test_a_sweep_legend_says_where_the_series_is_worst() -> None:
    s = plots.Series("γ=2", [-88.72, 1.0, 3.0], [9.01e15, 2.0, None])
    svg = plots.sweep_chart("t", [s])
    assert "max 9.01e+15 u at x = −88.72  1 non-finite" in svg
