"""The synthesised JUnit (written while a run goes on, and by `focalspec report` without pytest's own files)
counts like pytest's line and the JSON's ``tally`` (SPEC §10.5): a failure in a tier that is not required is
a skip of type pytest.xfail, never a <failure>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from focalspec.conformance.suite.junit import write_junit
from focalspec.conformance.suite.results import tally


def test_not_required_failures_are_skips_in_the_synthesised_junit(tmp_path: Path) -> None:
    tests = [
        {"nodeid": "t1", "outcome": "failed", "tier_required": False, "failure_tier": "extended", "env": "e"},
        {"nodeid": "t2", "outcome": "failed", "tier_required": True, "failure_tier": "finite", "env": "e"},
        {"nodeid": "t3", "outcome": "passed", "env": "e"},
        {"nodeid": "t4", "outcome": "skipped", "skip_reason": "n/a", "env": "e"},
    ]
    write_junit([], {"tests": tests}, tmp_path / "j.xml")
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None
    counts = tally(tests)
    assert int(suite.get("failures", "-1")) == counts["failed"] == 1
    assert int(suite.get("skipped", "-1")) == counts["skipped"] + counts["not required"] == 2
    t1 = next(c for c in suite.iter("testcase") if c.get("name") == "t1")
    assert t1.find("failure") is None
    skip = t1.find("skipped")
    assert skip is not None and skip.get("type") == "pytest.xfail"
    assert "not required tier extended" in skip.get("message", "")
