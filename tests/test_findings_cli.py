"""``focalspec findings``: findings derived from results JSON, bad input as one line (exit 2),
and the hand-written findings of reports/findings_verified.json re-derived from their own evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from focalspec.cli_main import main
from focalspec.conformance.diagnosis import causes

ROOT = Path(__file__).resolve().parent.parent
FINDINGS = ROOT / "reports" / "findings_verified.json"


def _entry(adapter: str, cause: str, x: float, dtype: str = "float32", **kw: Any) -> dict[str, Any]:
    return {"nodeid": f"{adapter}-{cause}-{x}-{dtype}", "adapter": adapter, "outcome": "failed", "dtype": dtype,
            "check": "value", "case_id": f"c{x}", "tier": "finite", "failure_tier": "finite", "cause": cause,
            "cause_detail": f"{cause} at x={x}", "cause_example": {"input": x, "got": 0.0, "expected": 1.0},
            "reproducer": f"focalspec check {adapter} --case c{x}", "variant": {}, **kw}  # fmt: skip


def _doc(tests: list[dict[str, Any]], version: int = 1) -> dict[str, Any]:
    return {"schema": "focalspec-results", "schema_version": version, "tests": tests,
            "adapters": [{"name": "lib", "implementation": "lib.focal", "framework": "torch"}]}  # fmt: skip


def test_one_finding_per_implementation_and_cause_with_its_smallest_input(tmp_path: Path) -> None:
    tests = [_entry("lib", "one_minus_p_cancellation", 16.6), _entry("lib", "one_minus_p_cancellation", 9.0, "float64"),
             _entry("lib", "nonfinite_at_finite", 20.0), {"adapter": "lib", "outcome": "passed"}]  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps(_doc(tests)))
    out = tmp_path / "f.json"
    assert main(["findings", "--results", str(tmp_path), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    by = {f["id"]: f for f in doc["findings"]}
    assert set(by) == {"lib:one_minus_p_cancellation", "lib:nonfinite_at_finite"}
    f = by["lib:one_minus_p_cancellation"]
    assert f["checks"] == 2 and f["dtypes"] == ["float64", "float32"] and f["first_dtype"] == "float64"
    assert f["smallest"]["input"] == 9.0 and f["smallest"]["reproducer"] == "focalspec check lib --case c9.0"
    assert f["implementation"] == "lib.focal" and f["fix"] == causes.CAUSES["one_minus_p_cancellation"].fix


def test_bisected_records_give_the_smallest_and_each_dtypes_boundary(tmp_path: Path) -> None:
    def rec(dtype: str, x: float, passes: float, converged: bool = True) -> dict[str, Any]:
        return {"adapter": "lib", "cause": "nonfinite_at_finite", "dtype": dtype, "check": "grad", "input": x,
                "target": 1.0, "passes_at": passes, "got": "nan", "expected": -1e-8, "converged": converged,
                "variant": {"input_kind": "logits"}, "reproducer": f"focalspec check lib --point {x}:1.0"}  # fmt: skip
    doc = _doc([_entry("lib", "nonfinite_at_finite", 20.0)])
    doc["minimal"] = [rec("float32", 16.6355, 16.6354), rec("bfloat16", 6.25, 6.21875), rec("float16", 1.0, 0.5, False)]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    out = tmp_path / "f.json"
    assert main(["findings", "--results", str(tmp_path), "--out", str(out)]) == 0
    (f,) = json.loads(out.read_text())["findings"]
    assert f["smallest"]["bisected"] and f["smallest"]["input"] == 6.25  # converged first, then smallest |x|
    assert list(f["bisected_by_dtype"]) == ["float32", "bfloat16"]  # an unconverged shrink is no boundary
    assert f["bisected_by_dtype"]["float32"]["passes_at"] == 16.6354


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps(_doc([], version=2)), "results schema version 2"),
        (json.dumps({"schema": "focalspec-bench", "schema_version": 1}), "not a focalspec results file"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["findings", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and words in err[0]


def test_an_empty_folder_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["findings", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "no results JSON" in err[0]


# ----------------------------------------------------------------------------- the hand-written findings

# the cause each finding's prose (reports/findings_verified.json "cause") describes, read by hand
PROSE = {
    "F-FVCORE-1": "low_precision_compute", "F-FVCORE-2": "nonfinite_at_finite",
    "F-FVCORE-3": "one_minus_p_cancellation",
    "F-TORCHVISION-1": "nonfinite_at_finite", "F-TORCHVISION-2": "one_minus_p_cancellation",
    "F-TORCH-1": "bce_cancellation", "F-KORNIA-1": "one_minus_p_cancellation", "F-MONAI-1": "low_precision_compute",
    "F-MONAI-2": "bce_cancellation", "F-MONAI-3": "nonfinite_at_finite", "F-MONAI-4": "one_minus_p_cancellation",
    "F-SMP-1": "nonfinite_at_finite", "F-SMP-2": "one_minus_p_cancellation", "F-FOCALLOSS-1": "fault",
    "F-FOCALLOSS-2": "nonfinite_at_finite", "F-FOCALLOSS-3": "one_minus_p_cancellation",
    "F-FOCALLOSS-4": "nonfinite_at_finite", "F-FOCALLOSS-5": "one_minus_p_cancellation",
    "F-KERAS-1": "nonfinite_at_finite", "F-KERAS-2": "clip_epsilon", "F-KERAS-3": "low_precision_compute",
    "F-KERAS-4": "nonfinite_input_policy", "F-OPTAX-1": "nonfinite_input_policy",
    "F-SAM-1": "nonfinite_at_finite", "F-SAM-2": "nonfinite_at_finite", "F-SAM-3": "bce_cancellation",
    "F-SAM-4": "one_minus_p_cancellation", "F-SAM-5": "clip_epsilon",
    "F-TRANSFORMERS-1": "nonfinite_at_finite", "F-TRANSFORMERS-2": "one_minus_p_cancellation",
    "F-ULTRALYTICS-1": "nonfinite_at_finite", "F-ULTRALYTICS-2": "one_minus_p_cancellation",
    "F-MMDET-1": "convention", "F-MMDET-2": "nonfinite_at_finite", "F-MMDET-3": "one_minus_p_cancellation",
    "F-PADDLE-1": "convention", "F-PADDLE-2": "one_minus_p_cancellation", "F-PADDLE-3": "nonfinite_at_finite",
    "F-TFMODELS-1": "low_precision_compute", "F-TFMODELS-2": "nonfinite_at_finite",
    "F-TFMODELS-3": "one_minus_p_cancellation",
}  # fmt: skip
# F-MMDET-1 is mmdet's normaliser avg_factor + FLT_EPSILON (SPEC §10.7: a p/q ratio of a reduced value, a
# convention; it was read as an ε like a clip's until the random-20 audit of 2026-12-06 found it)
# where one element cannot tell the classifier what the prose knows from the source code (none since the
# classifier reproduces mechanisms, issue 24: MONAI's written-out BCE, SAM's clamp at 1e9, mmdet's ε)
ONE_ELEMENT_LIMITS: dict[str, str] = {}
# reports/findings.json was derived (3b43986) by the rule classifier, which read SAM's capped BCE as a factor of
# 2; the mechanism classifier names the clamp (clip_epsilon, as the prose does): a fresh main job re-derives it
DERIVED_BEFORE_ISSUE_24 = {"F-SAM-5": "convention"}


def _as_entry(f: dict[str, Any]) -> dict[str, Any]:
    """A finding's first element as the worst element of a results entry (no cause given)."""

    def first(v: Any) -> Any:
        while isinstance(v, list) and v:
            v = v[0]
        return v

    v = f.get("variant") or {}
    softmax = v.get("activation") == "softmax"
    row, tgt = (f.get("inputs") or [None])[0], first(f.get("targets"))
    observed = f.get("observed")
    entry = {"check": f.get("check"), "dtype": f.get("dtype"), "variant": v, "adapter": f.get("adapter")}
    inp = row if softmax and f.get("check") == "value" else first(row)
    if softmax and f.get("check") != "value":
        tgt = 1.0 if tgt == 0 else 0.0  # the first class's one-hot target
    finite_in = all(isinstance(z, int | float) for z in (row if isinstance(row, list) else [row]))
    entry["failure_tier"] = "finite" if finite_in else "extended"
    if isinstance(observed, str):  # "error: ..." -- the call raised
        entry["message"] = observed
        return entry
    entry["worst"] = {"input": inp, "target": tgt, "expected": first(f.get("expected")), "got": first(observed),
                      "err_u": f.get("err_u"), "which": "grad" if f.get("check") == "grad" else "value"}  # fmt: skip
    return entry


def test_every_hand_written_finding_is_re_derived_from_its_evidence() -> None:
    items = json.loads(FINDINGS.read_text(encoding="utf-8"))
    items = items["findings"] if isinstance(items, dict) else items
    assert {f["id"] for f in items} == set(PROSE), "a finding was added or removed: classify it here"
    wrong = {}
    for f in items:
        got = causes.classify_entry(_as_entry(f)).cause
        want = ONE_ELEMENT_LIMITS.get(f["id"], PROSE[f["id"]])
        if got != want:
            wrong[f["id"]] = (got, want)
    assert not wrong, wrong


# ----------------------------------------------------------------------------- the derived findings

DERIVED = json.loads((ROOT / "reports" / "findings.json").read_text(encoding="utf-8"))
# the suite's adapter that runs what a hand-written finding measured directly with the library
SUITE_ADAPTER = {"direct:torchvision": "torchvision", "direct:optax": "optax", "direct:keras": "keras-binary-tf"}


def test_the_committed_findings_are_the_commands_output() -> None:
    """reports/findings.json is `focalspec findings` over a main job: its schema, its sources, and
    per finding a cause of the taxonomy with the fix and a reproducer."""
    assert DERIVED["schema"] == "focalspec-findings" and DERIVED["schema_version"] == 1
    assert len(DERIVED["sources"]) >= 8 and all(s["git_revision"] and s["finished"] for s in DERIVED["sources"])
    ids = [f["id"] for f in DERIVED["findings"]]
    assert len(ids) == len(set(ids))
    for f in DERIVED["findings"]:
        assert f["id"] == f"{f['adapter']}:{f['cause']}" and f["cause"] in causes.CAUSES
        assert f["fix"] == causes.CAUSES[f["cause"]].fix and f["checks"] >= 1
        assert f["smallest"]["reproducer"].startswith("focalspec check "), f["id"]


def test_no_finding_exists_only_by_hand() -> None:
    """Each hand-written finding's implementation and cause is among the derived ones (the cause
    its prose describes, or what one element of it reads as)."""
    have = {(f["adapter"], f["cause"]) for f in DERIVED["findings"]}
    ran = {f["adapter"] for f in DERIVED["findings"]}
    items = json.loads(FINDINGS.read_text(encoding="utf-8"))
    missing = []
    for f in items:
        adapter = SUITE_ADAPTER.get(f["adapter"], f["adapter"])
        want = {PROSE[f["id"]], ONE_ELEMENT_LIMITS.get(f["id"], PROSE[f["id"]]),
                DERIVED_BEFORE_ISSUE_24.get(f["id"], PROSE[f["id"]])}  # fmt: skip
        if not any((adapter, c) in have for c in want):
            missing.append(f"{f['id']}: ({adapter}, {' or '.join(sorted(want))})"
                           + ("" if adapter in ran else " -- the adapter has no derived finding at all"))  # fmt: skip
    assert not missing, missing


@pytest.mark.parametrize(
    ("adapter", "cause"),
    [("keras-binary-tf", "one_minus_p_cancellation"), ("keras-binary-jax", "one_minus_p_cancellation")]
    + [(a, "nonfinite_input_policy") for a in ("torchvision", "fvcore", "kornia-binary", "monai-sigmoid", "smp")]
    + [("optax", "nonfinite_input_policy")],
)
def test_the_findings_the_hand_written_file_missed_are_derived(adapter: str, cause: str) -> None:
    """Issue 11: Keras' 1 - p_t formed as 1 - p, and the NaN at x = +inf of the libraries that
    only optax had written down."""
    assert any(f["adapter"] == adapter and f["cause"] == cause for f in DERIVED["findings"]), (adapter, cause)


def test_the_float32_boundary_of_torchvisions_nan_gradient_is_where_the_verified_finding_says() -> None:
    """F-TORCHVISION-1 (NaN gradient at x = 16.640625 in float32, verified with torchvision itself):
    the derived finding's float32 boundary lies at or below it, next to a passing input."""
    f = next(f for f in DERIVED["findings"] if f["id"] == "torchvision:nonfinite_at_finite")
    b = f["bisected_by_dtype"]["float32"]
    assert 16.0 < b["input"] <= 16.640625 and b["passes_at"] < b["input"] and b["observed"] in ("nan", "inf", "-inf")
    assert "--dtype float32" in b["reproducer"] and f"--point {b['input']!r}:" in b["reproducer"]


# ----------------------------------------------------------------------------- severity (SPEC §10.8)


def test_every_committed_finding_has_a_severity_and_the_worst_come_first() -> None:
    from focalspec.conformance.diagnosis import severity

    items = DERIVED["findings"]
    assert all(f["severity"] in severity.SEVERITIES and f["impact_line"].startswith("impact:") for f in items)
    keys = [severity.summary_key(f["severity"], f["checks"]) for f in items]
    assert keys == sorted(keys)
    for f in items:  # the finding's level is the worst of its checks', and they add up
        assert f["severity"] == severity.worst(list(f["checks_by_severity"]))
        assert sum(f["checks_by_severity"].values()) == f["checks"]


def test_torchvisions_nan_gradient_is_its_first_finding_with_its_impact_numbers() -> None:
    """Issue 24: the γ < 1 NaN gradient from x ≈ 16.64 in float32 leads torchvision's findings."""
    tv = [f for f in DERIVED["findings"] if f["adapter"] == "torchvision"]
    first = tv[0]
    assert first["cause"] == "nonfinite_at_finite" and first["severity"] == "critical"
    assert first["impact"]["float32"]["nonfinite_grad"] > 100
    assert first["impact"]["float32"]["nonfinite_workload"] == "detection-late-g0.5"
    assert "non-finite gradients per batch" in first["impact_line"]
    # its precision findings stay within float32's floor on every workload: minor, not major
    assert all(f["severity"] == "minor" for f in tv if f["cause"] == "one_minus_p_cancellation")


def test_annotate_orders_by_severity_then_count_and_reads_tiers_without_checks() -> None:
    from focalspec.reports import findings_cli

    def f(adapter: str, cause: str, checks: int, tier: str, dtype: str) -> dict[str, Any]:
        return {"adapter": adapter, "cause": cause, "checks": checks, "tiers": [tier], "dtypes": [dtype]}

    found = [f("a", "one_minus_p_cancellation", 90, "finite", "float32"),
             f("a", "nonfinite_at_finite", 2, "saturation", "float32"),
             f("a", "nonfinite_at_finite", 5, "extended", "float32"),
             f("b", "bce_cancellation", 3, "finite", "float64")]  # fmt: skip
    impacts = {"b": {"dtypes": {"float64": {"summary": {"exceeds_floor": False, "max_floor_ratio": 0.1}}}}}
    out = findings_cli.annotate(found, impacts)
    assert [(f["adapter"], f["cause"], f["severity"]) for f in out] == [
        ("a", "nonfinite_at_finite", "critical"), ("a", "one_minus_p_cancellation", "major"),
        ("b", "bce_cancellation", "minor"), ("a", "nonfinite_at_finite", "policy")]  # fmt: skip


def test_check_groups_grade_each_dtype_on_its_own_impact() -> None:
    """A cause failing in float64 (beyond its floor there) and float32 (within): its float32
    checks are minor, its float64 ones major, and the finding takes the worse."""
    from focalspec.reports import findings_cli

    impacts = {"a": {"dtypes": {"float64": {"summary": {"exceeds_floor": True, "max_floor_ratio": 1e8}},
                                "float32": {"summary": {"exceeds_floor": False, "max_floor_ratio": 0.2}}}}}  # fmt: skip
    groups = [{"dtype": "float64", "required": True, "checks": 3}, {"dtype": "float32", "required": True, "checks": 6},
              {"dtype": "float32", "required": False, "checks": 1}]  # fmt: skip
    f = {"adapter": "a", "cause": "one_minus_p_cancellation", "checks": 10, "tiers": ["finite"],
         "dtypes": ["float64", "float32"], "check_groups": groups}  # fmt: skip
    (out,) = findings_cli.annotate([f], impacts)
    assert out["checks_by_severity"] == {"major": 3, "minor": 6, "policy": 1} and out["severity"] == "major"


def test_a_nan_at_a_finite_input_is_critical_in_the_findings_whatever_its_cause() -> None:
    """SPEC §10.8, as the gate and the report grade it: Keras' half-type clip bound gives NaN at p = 1
    (cause clip_epsilon, a precision cause); those checks are critical in the findings table too, the
    finite ones of the same cause keep their impact's level."""
    from focalspec.reports import findings_cli

    impacts = {"a": {"dtypes": {"bfloat16": {"summary": {"exceeds_floor": False, "max_floor_ratio": 0.2}}}}}
    groups = [{"dtype": "bfloat16", "required": True, "nonfinite": True, "checks": 4},
              {"dtype": "bfloat16", "required": True, "nonfinite": False, "checks": 2}]  # fmt: skip
    f = {"adapter": "a", "cause": "clip_epsilon", "checks": 6, "tiers": ["finite"], "dtypes": ["bfloat16"],
         "check_groups": groups}  # fmt: skip
    (out,) = findings_cli.annotate([f], impacts)
    assert out["checks_by_severity"] == {"critical": 4, "minor": 2} and out["severity"] == "critical"


@pytest.mark.parametrize(("content", "says"), [(None, "cannot read"), ('{"a": 1}', "not a focalspec findings file"),
                                               ("{", "not valid JSON")])  # fmt: skip
def test_annotate_refuses_what_is_not_a_findings_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    from focalspec.cli_main import main

    f = tmp_path / "f.json"
    if content is not None:
        f.write_text(content, encoding="utf-8")
    assert main(["findings", "--annotate", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
    assert main(["findings"]) == 2 and "--results" in capsys.readouterr().err
