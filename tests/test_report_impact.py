"""The report reads the measured realistic batches (reports/impact.json, SPEC §10.9): a precision
cause of an implementation that stays within every batch's rounding floor is *minor*, one measured
beyond it *major*, and the 'safe to train with?' cell says how many gradients per batch are
non-finite and when training diverges."""

from __future__ import annotations

from typing import Any

import pytest

from focalspec.conformance.diagnosis import impact
from focalspec.reports import harm

MEASURED = impact.load()


def _entry(adapter: str, dtype: str, cause: str) -> dict[str, Any]:
    return {"adapter": adapter, "dtype": dtype, "outcome": "failed", "cause": cause, "tier_required": True}


def _summary(adapter: str, dtype: str) -> dict[str, Any]:
    return MEASURED[adapter]["dtypes"][dtype]["summary"]


@pytest.mark.skipif("torchvision" not in MEASURED, reason="reports/impact.json holds no torchvision entry")
def test_precision_cause_follows_the_measured_floor() -> None:
    s = _summary("torchvision", "float32")
    want = "major" if s["exceeds_floor"] else "minor"
    assert harm.severity_of(_entry("torchvision", "float32", "one_minus_p_cancellation")) == want
    # unmeasured implementation or dtype: the harm order alone (precision = major)
    assert harm.severity_of(_entry("no-such-impl", "float32", "one_minus_p_cancellation")) == "major"
    # a NaN stays critical whatever the floor says
    assert harm.severity_of(_entry("torchvision", "float32", "nonfinite_at_finite")) == "critical"


def test_batch_impact_names_the_nonfinite_count_and_the_diverging_step() -> None:
    hazards = [(a, d) for a, e in MEASURED.items() for d, v in (e.get("dtypes") or {}).items()
               if (v.get("summary") or {}).get("nonfinite_grad")]  # fmt: skip
    assert hazards, "impact.json should record at least one library with NaN gradients on a realistic batch"
    adapter, dtype = hazards[0]
    s = _summary(adapter, dtype)
    text = harm.batch_impact(MEASURED[adapter], dtype)
    assert text.startswith(f"{s['nonfinite_grad']:,}/batch")
    if s["first_nonfinite_step"] is not None:
        assert text.endswith(f", step {s['first_nonfinite_step']}")
    assert harm.batch_impact(None, "float32") == ""
    assert harm.batch_impact({"dtypes": {"float32": {"summary": {"batches": 3, "nonfinite_grad": 0,
                                                                  "first_nonfinite_step": None}}}},
                             "float32") == "batches finite"  # fmt: skip
    assert harm.batch_impact({"dtypes": {"float32": {"summary": {"batches": 3, "nonfinite_grad": 0,
                                                                  "first_nonfinite_step": 11}}}},
                             "float32") == "0/batch, step 11"  # fmt: skip


def test_findings_and_report_print_the_classifier_accuracy_measured_by_the_audit(tmp_path: Any) -> None:
    import json
    from pathlib import Path

    from markupsafe import escape

    from focalspec.conformance.diagnosis import causes
    from focalspec.reports import build
    from focalspec.reports.merge import collect

    measured = json.loads((Path(causes.__file__).parent / "audit_accuracy.json").read_text())
    line = causes.audit_line()
    assert f"{100 * measured['accuracy']:.1f} %" in line and f"{measured['agree']} of {measured['elements']}" in line
    fix = Path(__file__).parent / "fixtures" / "report"
    html = build.build(collect([str(fix)]), tmp_path, "audit", fix / "findings.json").html.read_text()
    assert str(escape(line)) in html
