"""Declaring what a real library is (issue 24, item 7): no alpha at all, only some reductions,
no ``reduction`` argument (optax), a result always in float32.

What a declared convention does not offer is *not applicable* -- a skip with its reason, never a
fault -- and the verdict line says so; a dtype-contract breach fails its contract check while the
numbers that came back are still graded, so "float64 computed in float32" is said of them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from focalspec.adapters.callable_adapter import NOT_APPLICABLE
from focalspec.cli_main import main

MOD = "broken_impls.declared"
QUICK = ["--framework", "torch", "--depth", "quick", "--mode", "eager"]


def gate(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, results JSON, the verdict line) of ``focalspec check MOD:name``, in-process."""
    out = tmp_path / f"{name}.json"
    code = main(["check", f"{MOD}:{name}", *QUICK, *extra, "--json", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out.read_text()) if out.exists() else {}, lines[-1] if lines else ""


def by_outcome(doc: dict[str, Any], outcome: str) -> list[dict[str, Any]]:
    return [t for t in doc["tests"] if t["outcome"] == outcome]


def not_applicable(doc: dict[str, Any]) -> Counter[str]:
    return Counter(
        t["skip_reason"].removeprefix(NOT_APPLICABLE)
        for t in by_outcome(doc, "skipped")
        if (t["skip_reason"] or "").startswith(NOT_APPLICABLE)
    )


def test_a_library_without_alpha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", f"{MOD}:no_alpha", *QUICK])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "has no keyword argument 'alpha'" in err[0] and "--alpha-off absent" in err[0]
    code, doc, verdict = gate(tmp_path, capsys, "no_alpha", "--alpha-off", "absent", "--dtype", "float32")
    assert code == 0, verdict
    ran = by_outcome(doc, "passed")
    assert len(ran) > 20 and all(t["variant"]["alpha"] is None for t in ran)
    assert not_applicable(doc)["the callable has no alpha (--alpha-off absent)"] > 0
    assert "not applicable" in verdict and "the callable has no alpha (--alpha-off absent)" in verdict


def test_a_library_with_some_reductions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, verdict = gate(tmp_path, capsys, "none_and_mean", "--reductions", "none,mean", "--dtype", "float32")
    assert code == 0, verdict
    assert not by_outcome(doc, "failed") and not any(t["fault"] for t in doc["tests"])
    assert {t["variant"]["reduction"] for t in by_outcome(doc, "passed")} == {"none", "mean"}
    reason = "the callable offers reductions none, mean (--reductions)"
    assert not_applicable(doc)[reason] > 0
    skipped_reductions = {t["variant"]["reduction"] for t in by_outcome(doc, "skipped") if reason in t["skip_reason"]}
    assert skipped_reductions == {"sum", "normalized"}
    assert reason in verdict


def test_an_optax_style_signature_says_its_skipped_reductions_on_the_pass_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, verdict = gate(tmp_path, capsys, "elementwise", "--dtype", "float32")
    assert code == 0 and verdict.startswith("focalspec check: PASS"), verdict
    reason = "the callable has no 'reduction' argument (elementwise losses only)"
    n = not_applicable(doc)[reason]
    assert n > 0 and f"{n} as {reason}" in verdict, verdict


def test_a_float32_result_for_float64_inputs_is_graded_as_returned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc, verdict = gate(tmp_path, capsys, "always_float32", "--dtype", "float64,float32")
    assert code == 1, verdict
    contract = [t for t in by_outcome(doc, "failed") if t["check"] == "contract"]
    assert [t["case_id"] for t in contract] == ["contract_dtype_shape"]
    graded = [t for t in by_outcome(doc, "failed") if t["check"] in ("value", "grad") and t["tier_required"]]
    assert graded and {t["dtype"] for t in graded} == {"float64"}
    assert all("returned torch.float32 for torch.float64 inputs: graded as returned" in t["message"] for t in graded)
    assert all(t["worst"] and t["worst"]["err_u"] > 1e6 for t in graded)  # float32 numbers, in float64 u
    causes = Counter(t["cause"] for t in graded)
    assert causes.most_common(1)[0][0] == "low_precision_compute", causes
    assert len(by_outcome(doc, "passed")) > 100  # float32 inputs: its own dtype, careful arithmetic


def test_a_library_with_only_the_normalized_reduction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No reduction argument, always sum / max(1, #positives): declared, it passes on what it
    computes; the elementwise checks are not applicable, not hundreds of faults."""
    code, doc, verdict = gate(tmp_path, capsys, "normalized_only", "--reductions", "normalized", "--dtype", "float32")
    assert code == 0, verdict
    assert {t["variant"]["reduction"] for t in by_outcome(doc, "passed")} == {"normalized"}
    assert not any(t["fault"] for t in doc["tests"])
    assert "the callable offers reductions normalized (--reductions)" in verdict
    code = main(["check", f"{MOD}:normalized_only", *QUICK, "--reductions", "none,normalized"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has no 'reduction' argument to choose one" in err[0], err
