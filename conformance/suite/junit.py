"""JUnit XML of a run: the suite's own (pytest's --junitxml) passed through, or synthesised from
the results JSON (while a run goes on, and for ``focalspec report`` without pytest's files).

The synthesised file counts like pytest's line and the JSON's ``tally`` (SPEC §10.5): a failure
in a tier that is not required is a skip of type pytest.xfail, never a <failure>.  It lives in
the suite's room so that the suite writes its JUnit without importing the reports.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from focalspec.conformance.suite.results import TALLY, tally_key
from focalspec.conformance.suite.tiers import UNREQUIRED_TEXT
from focalspec.spec.variant import SpecError


def _seconds(v: Any) -> float:
    """A duration from JSON (a number or a numeric string; anything else 0)."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return 0.0
    try:
        return float(v.strip() if isinstance(v, str) else v) or 0.0
    except ValueError:
        return 0.0


def write_junit(junit_files: Sequence[Path], merged: dict[str, Any] | None, out: Path) -> str:
    """Write ``out`` as one JUnit XML: the suite's own JUnit files passed through (each
    <testsuite> kept, named after its file), or -- when there are none -- one testsuite per
    environment synthesised from the merged results.  Returns which of the two it did."""
    root = ET.Element("testsuites")
    if junit_files:
        for path in junit_files:
            try:
                tree = ET.parse(path)
            except (ET.ParseError, OSError) as exc:
                raise SpecError(f"{path}: not a readable JUnit XML file ({exc})") from None
            top = tree.getroot()
            suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
            if top.tag not in ("testsuite", "testsuites"):
                raise SpecError(f"{path}: not a JUnit XML file (root element <{top.tag}>)")
            label = path.name.removesuffix(".xml").removesuffix(".junit")
            for s in suites:
                s.set("name", f"{label}:{s.get('name', 'pytest')}")
                root.append(s)
        how = "passed through"
    else:
        for env, tests in _by_env((merged or {}).get("tests") or []).items():
            root.append(_suite(env, tests))
        how = "synthesised"
    ET.indent(root)
    out.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
    return how


def _by_env(tests: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for t in tests:
        out.setdefault(str(t.get("env", "")), []).append(t)
    return out


def _suite(env: str, tests: Sequence[dict[str, Any]]) -> ET.Element:
    keys = [tally_key(t) for t in tests]  # one tally (SPEC §10.5): a failure in a tier that is not required is skipped
    count = {k: keys.count(k) for k in TALLY}
    total_time = sum(_seconds(t.get("duration_s")) for t in tests)
    s = ET.Element(
        "testsuite",
        name=f"focalspec[{env}]",
        tests=str(len(tests)),
        failures=str(count["failed"]),
        errors=str(count["error"]),
        skipped=str(count["skipped"] + count["xfailed"] + count["not required"]),
        time=f"{total_time:.3f}",
    )
    for t, key in zip(tests, keys, strict=True):
        d = _seconds(t.get("duration_s"))
        classname = ".".join(str(t.get(k) or "-") for k in ("adapter", "family", "check"))
        c = ET.SubElement(s, "testcase", classname=classname, name=t["nodeid"], time=f"{d:.3f}")
        msg = str(t.get("message") or "")
        if t["outcome"] in ("failed", "error") and t.get("cause"):  # the cause first (SPEC §10.7)
            msg = f"{t['cause']}: {msg}"
        if key == "not required":
            ET.SubElement(c, "skipped", type="pytest.xfail",
                          message=f"{UNREQUIRED_TEXT}{t.get('failure_tier') or t.get('tier') or ''}: {msg}")
        elif t["outcome"] == "failed":
            ET.SubElement(c, "failure", message=msg.splitlines()[0] if msg else "failed").text = _detail(t)
        elif t["outcome"] == "error":
            ET.SubElement(c, "error", message=msg.splitlines()[0] if msg else "error").text = _detail(t)
        elif t["outcome"] == "skipped":
            ET.SubElement(c, "skipped", message=str(t.get("skip_reason") or msg or "skipped"))
        elif t["outcome"] == "xfailed":
            ET.SubElement(c, "skipped", type="pytest.xfail", message=f"xfail: {msg or t.get('skip_reason') or ''}")
    return s


def _detail(t: dict[str, Any]) -> str:
    lines = [str(t.get("message") or "")]
    w = t.get("worst") or {}
    if w:
        lines.append(f"worst element {w.get('index')}: input={w.get('input')} target={w.get('target')} "
                     f"expected={w.get('expected')} got={w.get('got')} err={w.get('err_u')} u ({w.get('which')})")
    if t.get("reproducer"):
        lines.append(f"reproduce: {t['reproducer']}")
    return "\n".join(x for x in lines if x)
