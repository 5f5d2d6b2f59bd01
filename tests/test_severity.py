"""The severity contract (SPEC §10.8): harm order, required tiers, measured impact."""

from __future__ import annotations

import pytest

from focalspec.conformance.diagnosis import causes, severity


def test_every_cause_has_a_level() -> None:
    for name in causes.CAUSES:
        assert severity.severity(name) in severity.SEVERITIES, name


@pytest.mark.parametrize(
    ("cause", "level"),
    [
        ("nonfinite_at_finite", "critical"),
        ("fault", "critical"),
        ("one_minus_p_cancellation", "major"),
        ("nonfinite_input_policy", "policy"),
    ],
)
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


# ----------------------------------------------------------------------------- summaries, worst first


def test_summary_key_orders_by_severity_then_count() -> None:
    rows = [
        ("minor", 500, "one_minus_p_cancellation"),
        ("critical", 3, "nonfinite_at_finite"),
        ("major", 40, "convention"),
        ("policy", 900, "nonfinite_input_policy"),
        ("major", 41, "clip_epsilon"),
    ]
    got = [name for level, n, name in sorted(rows, key=lambda r: severity.summary_key(*r))]
    assert got == [
        "nonfinite_at_finite",
        "clip_epsilon",
        "convention",
        "one_minus_p_cancellation",
        "nonfinite_input_policy",
    ]


def test_required_tiers_and_the_table() -> None:
    assert severity.required_tiers(["extended", "saturation"]) and not severity.required_tiers(["extended"])
    assert severity.required_tiers(["extended"], required=["extended"])
    t = severity.table([("a", "minor", 3), ("a", "critical", 1), ("b", "policy", 2), ("a", "minor", 2)])
    assert t == {
        "a": {"critical": 1, "major": 0, "minor": 5, "policy": 0},
        "b": {"critical": 0, "major": 0, "minor": 0, "policy": 2},
    }


def test_the_gate_lists_a_rare_nan_before_a_frequent_cancellation_with_its_impact_numbers() -> None:
    """The gate's cause summary (conformance/gate/check.py): torchvision's γ < 1 NaN gradient (a handful
    of checks) comes before its 1 - p cancellation (many more), with the committed impact numbers."""
    from focalspec.conformance.gate.check import _Tally

    tally = _Tally()
    node = "conformance/test_conformance.py::test_check[torchvision-cpu-float32-eager-case{}]"
    for i in range(30):
        tally.cause(
            {"cause": "one_minus_p_cancellation", "cause_detail": f"cancel {i}", "cause_input": 9.0 + i},
            False,
            node.format(i),
        )
    for i in range(2):
        tally.cause(
            {"cause": "nonfinite_at_finite", "cause_detail": "NaN gradient at x=-16.64", "cause_input": 16.64},
            False,
            node.format(100 + i),
        )
    tally.cause(
        {"cause": "nonfinite_input_policy", "cause_detail": "NaN at x=inf", "cause_input": "inf"},
        True,
        node.format(200),
    )
    lines = tally.cause_lines("torchvision")
    heads = [ln.strip() for ln in lines if ln.startswith("  [")]
    assert heads[0].startswith("[critical] nonfinite_at_finite 2")
    assert heads[1].startswith("[minor] one_minus_p_cancellation 30")  # within float32's floor (reports/impact.json)
    assert heads[2].startswith("[policy] nonfinite_input_policy 1 (tiers not required)")
    impact_of_nan = lines[lines.index(next(ln for ln in lines if "[critical]" in ln)) + 1]
    assert (
        "non-finite gradients per batch (detection-late-g0.5)" in impact_of_nan and "training diverges" in impact_of_nan
    )


def test_a_nonfinite_result_at_a_finite_input_is_critical_whatever_its_mechanism() -> None:
    # −log(0) after a cancellation is named for the cancellation, but training cannot use +inf
    example = {"input": -104.0, "target": 1.0, "expected": 104.0, "got": "inf"}
    assert severity.nonfinite_example(example)
    assert severity.severity("bce_cancellation", nonfinite=severity.nonfinite_example(example)) == "critical"
    assert severity.severity("bce_cancellation", required=False, nonfinite=True) == "policy"
    # an infinite input, or an infinite exact value, is not such a failure
    assert not severity.nonfinite_example({"input": "inf", "expected": 0.0, "got": "nan"})
    assert not severity.nonfinite_example({"input": 1.0, "expected": "inf", "got": "inf"})
    assert not severity.nonfinite_example(None)
