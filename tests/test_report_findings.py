"""The findings section links each documented finding to the implementation of the run it is about.

reports/findings_verified.json names some findings by how they were measured ("direct:torchvision",
"direct:keras") rather than by an adapter; their rows used to carry no link and the first screen no
"findings" link for torchvision.  Here the page is built for the adapters of the main job
(tests/fixtures/report/main-job/adapters.json, from its results files) with the committed findings, and
every finding row must link to a drill-down that exists on the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from focalspec.reports import build, findings_view
from focalspec.reports.merge import collect

FIX = Path(__file__).parent / "fixtures" / "report"
ADAPTERS = json.loads((FIX / "main-job" / "adapters.json").read_text())["adapters"]
FINDINGS = build.load_findings(build.DEFAULT_FINDINGS)[0] or []


def _passing(adapter: str) -> dict[str, Any]:
    return {"nodeid": f"test_conformance.py::t[{adapter}]", "adapter": adapter, "device": "cpu", "dtype": "float32",
            "mode": "eager", "case_id": "c", "family": "golden", "check": "value", "spec_section": "§1",
            "variant": {}, "outcome": "passed", "grade": "exact", "required_grade": "acceptable",
            "value": {"max_err_u": 0.5, "rms_err_u": 0.5, "n_bad": 0, "n": 1}, "grad": None, "worst": None,
            "message": "", "reproducer": None, "duration_s": 0.01, "skip_reason": None, "tier": "finite"}  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("main-job-findings")
    doc = {"schema": "focalspec-results", "schema_version": 1, "suite": {"version": "0.1.0", "git_revision": "abc"},
           "run": {"started": "2025-01-01T00:00:00", "finished": "2025-01-01T00:00:00", "env": "main"},
           "adapters": ADAPTERS, "tests": [_passing(a["name"]) for a in ADAPTERS if not a["unavailable"]],
           "sweeps": [], "stale": {"xfails": [], "skips": []}}  # fmt: skip
    (root / "results-main.json").write_text(json.dumps(doc))
    built = build.build(collect([str(root / "results-main.json")]), root / "out", "t", build.DEFAULT_FINDINGS)
    return built.html.read_text(encoding="utf-8")


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


def test_every_committed_finding_names_an_adapter_of_the_main_job() -> None:
    unresolved = [f["id"] for f in FINDINGS if findings_view.resolve(f, ADAPTERS) is None]
    assert not unresolved
    by_id = {f["id"]: findings_view.resolve(f, ADAPTERS) for f in FINDINGS}
    assert by_id["F-TORCHVISION-1"] == by_id["F-TORCH-1"] == "torchvision"  # "direct:torchvision"
    assert by_id["F-OPTAX-1"] == "optax"  # "direct:optax"
    assert by_id["F-KERAS-1"] == "keras-binary-tf"  # "direct:keras", keras.losses.binary_focal_crossentropy on TF


def test_resolve_refuses_to_guess() -> None:
    keras = [a for a in ADAPTERS if a["implementation"] == "keras.losses.BinaryFocalCrossentropy"]
    assert len(keras) == 3
    f = {"adapter": "direct:keras", "implementation": "keras.losses.binary_focal_crossentropy"}
    assert findings_view.resolve(f, keras) is None  # three backends and none named: no link rather than a wrong one
    assert findings_view.resolve(dict(f, implementation=f["implementation"] + " (JAX backend)"), keras) == (
        "keras-binary-jax")
    assert findings_view.resolve({"adapter": "direct:nothing-here", "implementation": "x.y"}, ADAPTERS) is None


def test_each_finding_row_links_to_its_implementations_drilldown(page: str) -> None:
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    rows = re.findall(r'<div class="finding[^"]*" id="([^"]+)">(.*?)</div>', _section(page, "findings"), re.S)
    assert len(rows) == len(FINDINGS)
    for rid, body in rows:
        targets = [h for h in re.findall(r'href="#([^"]+)"', body) if h.startswith("impl-")]
        assert targets and all(t in ids for t in targets), (rid, targets)
    torchvision = [body for rid, body in rows if "<b>F-TORCH-1</b>" in body]
    assert torchvision and 'href="#impl-torchvision-' in torchvision[0]


def test_the_first_screen_links_every_implementation_with_findings(page: str) -> None:
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    answer = _section(page, "answer")
    with_findings = {findings_view.resolve(f, ADAPTERS) for f in FINDINGS}
    tested = {a["name"] for a in ADAPTERS if not a["unavailable"]}
    for name in sorted(with_findings & tested):
        row = re.search(rf'<tr id="answer-[^"]+"><td class="name" data-v="{re.escape(name)}">(.*?)</td>', answer)
        assert row, name
        link = re.search(r'<a href="#([^"]+)">findings</a>', row.group(1))
        assert link and link.group(1) in ids and link.group(1).startswith("findings-"), (name, row.group(1))


def test_a_finding_about_no_adapter_of_the_run_says_so(tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([dict(FINDINGS[0], id="F-ELSEWHERE", adapter="direct:elsewhere",
                                         implementation="elsewhere.focal_loss")]))  # fmt: skip
    html = build.build(collect([str(FIX)]), tmp_path / "out", "t", findings).html.read_text(encoding="utf-8")
    section = _section(html, "findings")
    assert "direct:elsewhere" in section and "not in this run" in section
    assert not re.search(r'href="#impl-', section)  # no link to a drill-down that is not there
