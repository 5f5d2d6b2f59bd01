"""The cause classifier against the labelled audit set (issue 24; tests/fixtures/audit/derive.py).

Each element's true cause was derived from the implementation's source by a step-by-step
transcription in its dtype (or is the one planted defect of a single-defect implementation);
the classifier sees only what the suite sees: input, target, expected, got, dtype and variant.
The measured agreement is written to conformance/audit_accuracy.json, which the findings read.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from focalspec.conformance import causes
from focalspec.conformance.causes import Element, Evidence

AUDIT = Path(__file__).parent / "fixtures" / "audit" / "audit.json"
ACCURACY = Path(__file__).resolve().parents[1] / "conformance" / "audit_accuracy.json"
U = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8}


def classify(e: dict) -> str:
    got = float(e["got"])
    exp = float(e["expected"])
    err = abs(got - exp) / (U[e["dtype"]] * abs(exp)) if exp and math.isfinite(got) else math.inf
    variant = {"activation": "sigmoid", "input_kind": "logits", "gamma": e["gamma"], "alpha": e["alpha"],
               "soft_target": "canonical", "clip_eps": None, "reduction": "none"}  # fmt: skip
    el = Element(e["x"], e["t"], exp, got, err, e["which"])
    return causes.classify(Evidence(e["which"], e["dtype"], variant, "finite", None, "", [el])).cause


def test_the_classifier_agrees_with_the_audit_set() -> None:
    data = json.loads(AUDIT.read_text())
    assert len(data) >= 80 and len({e["impl"] for e in data}) >= 12
    got = [classify(e) for e in data]
    right = sum(g == e["truth"] for g, e in zip(got, data, strict=True))
    unclassified = sum(g == "unclassified" for g in got)
    wrong = Counter((e["impl"], e["truth"], g) for g, e in zip(got, data, strict=True) if g != e["truth"])
    accuracy = right / len(data)
    ACCURACY.write_text(json.dumps({"elements": len(data), "implementations": len({e["impl"] for e in data}),
                                    "agree": right, "accuracy": round(accuracy, 4),
                                    "unclassified": unclassified, "source": "tests/fixtures/audit/audit.json"},
                                   indent=1) + "\n")  # fmt: skip
    assert accuracy >= 0.95, wrong.most_common(12)
    assert unclassified / len(data) < 0.02
