"""The documented findings as the page shows them: each with its cause (classified from its
numbers where it states it in prose), severity, fix and golden command, grouped under the
implementation of the run it is about -- a finding measured by calling a library directly
("direct:torchvision") belongs to that library's adapter, so its row links to the adapter's
drill-down and the first screen links to it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from focalspec.conformance.diagnosis import severity as sev
from focalspec.reports import digits
from focalspec.reports.entry import slug
from focalspec.reports.merge import finite_or_none, to_float

SEVERITIES = sev.SEVERITIES



def finding_view(f: dict[str, Any]) -> dict[str, Any]:
    """One finding, in either shape (documented: ``inputs``/``expected``; ``focalspec findings``:
    ``smallest``), with its severity, its fix as text and its golden command."""
    from focalspec.conformance.diagnosis.causes import CAUSES

    sm = f.get("smallest") if isinstance(f.get("smallest"), dict) else {}
    x = sm.get("input", _first(f.get("inputs")))
    y = sm.get("target", _first(f.get("targets")))
    expected = sm.get("expected", _first(f.get("expected")))
    observed = sm.get("observed", _first(f.get("observed")))
    dtype = sm.get("dtype") or f.get("dtype") or f.get("first_dtype")
    check = sm.get("check") or f.get("check")
    variant = sm.get("variant") or f.get("variant") or {}
    cause = f.get("cause") if f.get("cause") in CAUSES else _cause_from_evidence(
        x, y, expected, observed, dtype, check, variant, f.get("err_u"))
    tiers = f.get("tiers") or []
    required = f.get("tier_required")
    if not isinstance(required, bool):
        required = not tiers or any(tt != "extended" for tt in tiers)
    nonfinite = sev.nonfinite_example({"input": x, "expected": expected, "got": observed})
    level = (f.get("severity") if f.get("severity") in SEVERITIES
             else sev.severity(cause, required=bool(required), nonfinite=nonfinite))  # fmt: skip
    info = CAUSES.get(cause or "")
    fix = f.get("fix") or (info.fix if info else "")
    prose = f.get("cause") if f.get("cause") not in CAUSES else None  # a documented finding's own words
    return {
        "id": f.get("id"), "adapter": f.get("adapter"), "implementation": f.get("implementation"),
        "version": f.get("version") or f.get("framework_version"), "cause": cause,
        "cause_text": f.get("title") or prose or (info.title if info else ""),
        "severity": level, "fix": fix, "dtype": dtype, "check": check, "variant": variant, "input": x, "target": y,
        "pair": digits.pair(expected, observed), "err_u": sm.get("err_u", f.get("err_u")),
        "golden": digits.golden_command(variant, x, y, dtype, grad=str(check).startswith("grad")),
        "reproducer": sm.get("reproducer") or f.get("reproducer"), "reproducer_output": f.get("reproducer_output"),
        "spec_section": f.get("spec_section"), "note": f.get("note") or sm.get("detail"), "checks": f.get("checks"),
        "dtypes": f.get("dtypes"),
    }  # fmt: skip


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, list | tuple) and v else (None if isinstance(v, list | tuple) else v)


def _cause_from_evidence(x: Any, y: Any, expected: Any, observed: Any, dtype: Any, check: Any,
                         variant: dict[str, Any], err_u: Any) -> str | None:
    """A documented finding states its cause in prose; its numbers go through the suite's own
    classifier (SPEC §10.7), as a failing check's worst element would."""
    xf = to_float(x)
    if xf is not None and not math.isfinite(xf):
        return "nonfinite_input_policy"
    tier = None
    if xf is not None:
        import numpy as np

        from focalspec.conformance.suite.tiers import input_tier

        try:
            tier = input_tier(np.array([xf]), str(variant.get("input_kind") or "logits"), str(dtype))
        except Exception:  # an unknown dtype name: the classifier goes without a tier
            tier = None
    from focalspec.conformance.diagnosis.causes import classify_entry

    entry = {"check": check, "dtype": dtype, "variant": variant, "failure_tier": tier,
             "worst": {"input": x, "target": y, "expected": expected, "got": observed, "err_u": err_u,
                       "which": check}}  # fmt: skip
    cause = classify_entry(entry).cause
    if cause != "unclassified":
        return cause
    ef, of = finite_or_none(expected), to_float(observed)
    return "nonfinite_at_finite" if ef is not None and of is not None and not math.isfinite(of) else None


def _norm(implementation: str) -> str:
    """An implementation's dotted name without its note, case or underscores: the documented
    'keras.losses.binary_focal_crossentropy (TensorFlow backend)' and the adapter's
    'keras.losses.BinaryFocalCrossentropy' are one function."""
    return implementation.split(" (")[0].replace("_", "").lower()


_BACKEND = re.compile(r"\((\w+) backend\)", re.I)


def resolve(f: dict[str, Any], adapters: list[dict[str, Any]]) -> str | None:
    """The adapter of the run that a finding is about, or None: its own name; the name after a
    'direct:' prefix (a finding measured by calling the library directly, 'direct:torchvision');
    else the one adapter whose implementation is the finding's function (on the backend the finding
    names, '(TensorFlow backend)')."""
    names = {str(a.get("name")) for a in adapters}
    own = str(f.get("adapter") or "")
    for name in (own, own.partition(":")[2]):
        if name in names:
            return name
    implementation = str(f.get("implementation") or "")
    if not implementation:
        return None
    same = [a for a in adapters if _norm(str(a.get("implementation") or "")) == _norm(implementation)]
    backend = _BACKEND.search(implementation)
    if backend:
        same = [a for a in same if str(a.get("framework") or "").lower() == backend.group(1).lower()]
    return str(same[0]["name"]) if len(same) == 1 else None


@dataclass
class FindingGroup:
    """One implementation's findings, most severe first, with the anchors they link to."""

    name: str  # the run's adapter name where the finding resolves to one, else the finding's own
    anchor: str  # this group's id in the findings section
    items: list[dict[str, Any]]
    drill: str | None  # the implementation's drill-down id; None where the run has no such adapter
    answer: str | None  # its row on the first screen


def findings_by_adapter(findings: list[dict[str, Any]], order: list[str],
                        adapters: list[dict[str, Any]] | None = None) -> list[FindingGroup]:
    """The findings grouped by the run's adapter they are about (``resolve``), in the first
    screen's order ``order``; the rest after them by name."""
    adapters = adapters if adapters is not None else [{"name": n} for n in order]
    groups: dict[str, list[dict[str, Any]]] = {}
    known: set[str] = set()
    for f in findings:
        v = finding_view(f)
        name = resolve(f, adapters)
        known.update([name] if name else [])
        groups.setdefault(name or str(v["adapter"] or v["implementation"] or "?"), []).append(v)
    rank = {n: i for i, n in enumerate(order)}
    tested = {str(a.get("name")) for a in adapters if not a.get("unavailable")}  # the first screen's rows
    out = []
    for name, items in sorted(groups.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])):
        items.sort(key=lambda v: (sev.rank(v["severity"]), -(finite_or_none(v["err_u"]) or math.inf), str(v["id"])))
        drill = slug("impl", name) if name in known else None
        out.append(FindingGroup(name, slug("findings", name), items, drill,
                                "answer-" + drill if drill and name in rank and name in tested else None))
    return out
