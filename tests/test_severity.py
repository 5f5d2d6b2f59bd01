"""The severity contract (SPEC §10.8): harm order, required tiers, measured impact."""

from __future__ import annotations

import pytest

from focalspec.conformance import causes, severity


def test_every_cause_has_a_level() -> None:
    for name in causes.CAUSES:
        assert severity.severity(name) in severity.SEVERITIES, name


@pytest.mark.parametrize(("cause", "level"), [("nonfinite_at_finite", "critical"), ("fault", "critical"),
                                              ("one_minus_p_cancellation", "major"),
                                              ("nonfinite_input_policy", "policy")])
def test_harm_order_without_impact(cause: str, level: str) -> None:
    assert severity.severity(cause) == level


def test_unrequired_tier_is_policy_and_impact_below_floor_is_minor() -> None:
    assert severity.severity("nonfinite_at_finite", required=False) == "policy"
    assert severity.severity("bce_cancellation", impact_exceeds_floor=False) == "minor"
    assert severity.severity("bce_cancellation", impact_exceeds_floor=True) == "major"
    # a NaN is critical whatever a batch's floor says
    assert severity.severity("nonfinite_at_finite", impact_exceeds_floor=False) == "critical"


def test_worst_and_rank() -> None:
    assert severity.worst(["minor", "policy", "major"]) == "major"
    assert severity.worst([]) is None
    assert sorted(["policy", "critical", "minor"], key=severity.rank) == ["critical", "minor", "policy"]
