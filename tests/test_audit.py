"""The cause classifier against the labelled audit set (issue 24; tests/fixtures/audit/derive.py).

Each element's true cause was derived from the implementation's source by a step-by-step
transcription in its dtype (or is the one planted defect of a single-defect implementation);
the classifier sees only what the suite sees: inputs, targets, expected, got, dtype and variant.
Elements of one implementation, dtype, variant and check (value or gradient) are classified
together, as the runner classifies a check's failing elements; each element's own cause is
compared.  The offline path (one element of a results file) is measured too.  The measured
numbers are in conformance/diagnosis/audit_accuracy.json, which the findings print; the test fails if the
file does not match the measurement (regenerate: FOCALSPEC_WRITE_AUDIT=1).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from pathlib import Path

from focalspec.conformance.diagnosis import causes
from focalspec.conformance.diagnosis.causes import Element, Evidence

AUDIT = Path(__file__).parent / "fixtures" / "audit" / "audit.json"
ACCURACY = Path(__file__).resolve().parents[1] / "conformance" / "diagnosis" / "audit_accuracy.json"
U = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8}


def _evidence(rows: list[dict]) -> Evidence:
    e0 = rows[0]
    variant = {"activation": "sigmoid", "input_kind": "logits", "gamma": e0["gamma"], "alpha": e0["alpha"],
               "soft_target": "canonical", "clip_eps": None, "reduction": "none"}  # fmt: skip
    els = []
    for e in rows:
        got, exp = float(e["got"]), float(e["expected"])
        err = abs(got - exp) / (U[e["dtype"]] * abs(exp)) if exp and math.isfinite(got) else math.inf
        els.append(Element(e["x"], e["t"], exp, got, err, e["which"]))
    return Evidence(e0["which"], e0["dtype"], variant, "finite", None, "", els)


def element_causes(rows: list[dict]) -> list[str]:
    """Each row's cause, its check's other failing elements in view (the runner's path)."""
    ev = _evidence(rows)
    found = causes.element_causes(ev)
    return [c for c, _why, _key in found]


def measure(data: list[dict]) -> dict:
    checks: dict[tuple, list[int]] = defaultdict(list)
    for i, e in enumerate(data):
        checks[(e["impl"], e["dtype"], e["gamma"], e["alpha"], e["which"])].append(i)
    grouped: list[str] = [""] * len(data)
    for idx in checks.values():
        for i, c in zip(idx, element_causes([data[i] for i in idx]), strict=True):
            grouped[i] = c
    single = [element_causes([e])[0] for e in data]
    truth = [e["truth"] for e in data]
    right = sum(g == t for g, t in zip(grouped, truth, strict=True))
    right1 = sum(g == t for g, t in zip(single, truth, strict=True))
    return {"elements": len(data), "implementations": len({e["impl"] for e in data}),
            "causes": sorted(set(truth)), "agree": right, "accuracy": round(right / len(data), 4),
            "unclassified": grouped.count("unclassified"),
            "single_element_agree": right1, "single_element_accuracy": round(right1 / len(data), 4),
            "source": "tests/fixtures/audit/audit.json",
            "wrong": Counter(f"{e['impl']}: {t} -> {g}" for e, t, g in zip(data, truth, grouped, strict=True)
                             if g != t).most_common()}  # fmt: skip


def test_the_classifier_agrees_with_the_audit_set() -> None:
    data = json.loads(AUDIT.read_text())
    assert len(data) >= 80 and len({e["impl"] for e in data}) >= 12
    m = measure(data)
    if os.environ.get("FOCALSPEC_WRITE_AUDIT"):
        ACCURACY.write_text(json.dumps(m, indent=1, ensure_ascii=False) + "\n")
    assert m["accuracy"] >= 0.95, m["wrong"][:12]
    assert m["unclassified"] / len(data) < 0.02
    recorded = json.loads(ACCURACY.read_text())
    assert {k: recorded.get(k) for k in ("agree", "elements", "single_element_agree")} == {
        k: m[k] for k in ("agree", "elements", "single_element_agree")}, "audit_accuracy.json is stale"
