"""How much each failure matters (SPEC §10.8), for the page's first screen and its order.

Counts say how often a defect shows; a maintainer, a team choosing a library and a docs
writer need to know which defect breaks training.  Every failing entry gets a severity: its
own ``severity`` field where the suite (or the impact measurement) wrote one, else
``conformance.severity.severity`` from its cause and whether its failure tier is required.
A failure whose level is ``policy`` (an unrequired tier: ±∞/NaN inputs) never makes a cell or
an implementation fail; it is counted apart.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from focalspec.conformance.diagnosis import severity as sev
from focalspec.reports import digits
from focalspec.reports.entry import FAILING, max_err, slug

SEVERITIES = sev.SEVERITIES
# what each level means for training, in the words of the first screen
VERDICT = {
    "critical": "unsafe to train with",
    "major": "wrong numbers",
    "minor": "small precision loss",
    "policy": "conforms (±∞ only)",
    None: "conforms",
}
# "safe to train with?" for one dtype, from the worst required failure in it
SAFE = {"critical": "no", "major": "caution", "minor": "yes", "policy": "yes", None: "yes"}


def required_of(t: dict[str, Any]) -> bool:
    """Whether a failing entry's tier is required: the suite's ``tier_required``, else its
    failure tier against the default required tiers (results written before tiers: finite)."""
    r = t.get("tier_required")
    if isinstance(r, bool):
        return r
    from focalspec.conformance.suite.tiers import DEFAULT_REQUIRED

    return str(t.get("failure_tier") or t.get("tier") or "finite") in DEFAULT_REQUIRED


def cause_of(t: dict[str, Any]) -> str:
    """A failing entry's cause: its own (the suite writes it), else classified from its evidence."""
    c = t.get("cause")
    if c:
        return str(c)
    from focalspec.conformance.diagnosis.causes import classify_entry

    return classify_entry(t).cause


@functools.cache
def _impact() -> dict[str, Any]:
    """The committed realistic-batch measurements (reports/impact.json) by adapter name."""
    from focalspec.conformance.diagnosis import impact

    return impact.load()


def impact_of(adapter: Any) -> dict[str, Any] | None:
    """One implementation's impact entry (None where it was not measured)."""
    return _impact().get(str(adapter))


def severity_of(t: dict[str, Any]) -> str:
    """A failing entry's level: its ``severity`` field when present, else derived from its cause
    and, for a precision cause, whether its implementation moves a realistic batch of that dtype
    beyond the batch's rounding floor (reports/impact.json, SPEC §10.9)."""
    s = t.get("severity")
    if s in SEVERITIES:
        return str(s)
    from focalspec.conformance.diagnosis.impact import exceeds_floor

    beyond = exceeds_floor(impact_of(t.get("adapter")), [str(t.get("dtype") or "")])
    return sev.severity(cause_of(t), required=required_of(t), impact_exceeds_floor=beyond,
                        nonfinite=sev.nonfinite_example(t.get("cause_example")))


def annotate(results: dict[str, Any]) -> None:
    """Give every failing entry its ``cause`` and ``severity`` (kept where present), once, so
    that the matrix, the first screen, the drill-down and merged.json agree."""
    for t in results.get("tests") or []:
        if t.get("outcome") in FAILING:
            t["cause"] = cause_of(t)
            t["severity"] = severity_of(t)


def err_of(t: dict[str, Any]) -> float | None:
    return max_err(t)


def impact_key(t: dict[str, Any]) -> tuple[Any, ...]:
    """Sort key, most harmful first: severity, then the error (non-finite first), then the name."""
    e = err_of(t)
    return (sev.rank(str(t.get("severity") or severity_of(t))), t.get("outcome") == "xfailed",
            -(e if e is not None else -1.0), str(t.get("nodeid")))  # fmt: skip


def short(cause: str | None) -> str:
    from focalspec.conformance.diagnosis.causes import SHORT

    return SHORT.get(cause or "", cause or "")


def cause_order(cause: str) -> int:
    from focalspec.conformance.diagnosis.causes import PRIORITY

    return PRIORITY.index(cause) if cause in PRIORITY else len(PRIORITY)


# ----------------------------------------------------------------------------- the first screen


@dataclass
class LevelCell:
    """One implementation's failures of one severity: how many, which cause leads, how bad."""

    n: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    worst_u: float | None = None

    def add(self, t: dict[str, Any]) -> None:
        self.n += 1
        self.causes[str(t.get("cause"))] += 1
        e = err_of(t)
        if e is not None and (self.worst_u is None or e > self.worst_u):
            self.worst_u = e

    @property
    def lead(self) -> str | None:
        """The most serious cause of the level (the cause order of SPEC §10.7), not the most frequent."""
        return min(self.causes, key=lambda c: (cause_order(c), -self.causes[c])) if self.causes else None


@dataclass
class DtypeCell:
    """'Safe to train with?' in one dtype."""

    answer: str = "not run"  # no / caution / yes / not run
    worst: str | None = None  # the worst required severity
    reason: str = ""
    nonfinite_grads: int = 0  # gradient checks with NaN/Inf at a finite input
    ran: int = 0
    worst_u: float | None = None
    impact: str = ""  # realistic batches (SPEC §10.9): non-finite gradients per batch, first diverging step


def batch_impact(entry: dict[str, Any] | None, dtype: str) -> str:
    """'734/batch, step 19' (the worst realistic batch's NaN/Inf gradients; the step at which the training
    run goes non-finite: short, so four dtype columns fit a 1400 px screen; the page's key spells it out),
    'batches finite' (every realistic batch and the training run), or '' where the implementation was not
    measured in ``dtype``."""
    s = ((entry or {}).get("dtypes") or {}).get(dtype, {}).get("summary")
    if not s or not s.get("batches"):
        return ""
    if not s.get("nonfinite_grad") and s.get("first_nonfinite_step") is None:
        return "batches finite"
    out = f"{s.get('nonfinite_grad') or 0:,}/batch"
    if s.get("first_nonfinite_step") is not None:
        out += f", step {s['first_nonfinite_step']}"
    return out


@dataclass
class AnswerRow:
    name: str
    drill: str  # anchor of the drill-down
    causes_anchor: str
    findings_anchor: str | None
    unavailable: str | None
    levels: dict[str, LevelCell]
    dtypes: dict[str, DtypeCell]
    failed: int
    ran: int

    @property
    def worst(self) -> str | None:
        return sev.worst([s for s, c in self.levels.items() if c.n])

    @property
    def verdict(self) -> str:
        if self.unavailable:
            return "not tested here"
        if not self.ran:
            return "not run"
        return VERDICT[self.worst]

    def sort_key(self) -> tuple[Any, ...]:
        w = self.worst
        return (bool(self.unavailable) or not self.ran, sev.rank(w) if w else len(SEVERITIES),
                *(-self.levels[s].n for s in SEVERITIES), self.name)  # fmt: skip


def answer_rows(results: dict[str, Any], dtypes: list[str], findings_anchors: dict[str, str]) -> list[AnswerRow]:
    """One row per implementation, most harmful first (SPEC §10.8)."""
    tests = results.get("tests") or []
    adapters = {a["name"]: a for a in results.get("adapters") or []}
    for t in tests:
        adapters.setdefault(str(t.get("adapter")), {"name": str(t.get("adapter")), "unavailable": None})
    rows = []
    for name, a in adapters.items():
        mine = [t for t in tests if t.get("adapter") == name]
        levels = {s: LevelCell() for s in SEVERITIES}
        cells = {d: DtypeCell() for d in dtypes}
        for t in mine:
            d = cells.setdefault(str(t.get("dtype") or "-"), DtypeCell())
            if t.get("outcome") == "skipped":
                continue
            d.ran += 1
            if t.get("outcome") not in FAILING:
                continue
            s = str(t.get("severity") or severity_of(t))
            levels[s].add(t)
            if s == "policy":
                continue
            if d.worst is None or sev.rank(s) < sev.rank(d.worst):
                d.worst = s
            e = err_of(t)
            if e is not None and (d.worst_u is None or e > d.worst_u):
                d.worst_u = e
            if s == "critical" and t.get("check") in ("grad", "gradient") and e is not None and math.isinf(e):
                d.nonfinite_grads += 1
        for dt, d in cells.items():
            d.impact = batch_impact(impact_of(name), dt)
            if d.ran:
                d.answer = SAFE[d.worst]
                d.reason = _dtype_reason([t for t in mine if str(t.get("dtype") or "-") == dt], d.worst)
        rows.append(AnswerRow(
            name=name, drill=slug("impl", name), causes_anchor=slug("causes", name),
            findings_anchor=findings_anchors.get(name), unavailable=a.get("unavailable"), levels=levels,
            dtypes=cells, failed=sum(c.n for c in levels.values()),
            ran=sum(t.get("outcome") != "skipped" for t in mine),
        ))  # fmt: skip
    return sorted(rows, key=AnswerRow.sort_key)


def _dtype_reason(tests: list[dict[str, Any]], worst: str | None) -> str:
    """The most serious cause at the worst level of one dtype, with how many checks show it."""
    if worst is None:
        return ""
    at = Counter(str(t.get("cause")) for t in tests
                 if t.get("outcome") in FAILING and str(t.get("severity") or severity_of(t)) == worst)  # fmt: skip
    lead = min(at, key=lambda c: (cause_order(c), -at[c]))
    return f"{short(lead)} ×{at[lead]}"


# ----------------------------------------------------------------------------- causes with fixes


@dataclass
class CauseRow:
    adapter: str
    anchor: str
    cause: str
    severity: str
    n: int
    required: int  # of which in a required tier
    detail: str  # the line of the smallest input that shows it
    fix: str
    title: str
    spec: str
    golden: str | None


def cause_rows(results: dict[str, Any]) -> dict[str, list[CauseRow]]:
    """Per implementation: its causes, most severe first, each with its fix in plain text and
    the ``focalspec golden`` command of its smallest input."""
    from focalspec.conformance.diagnosis.causes import CAUSES, example_size
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for t in results.get("tests") or []:
        if t.get("outcome") not in FAILING:
            continue
        name, cause = str(t.get("adapter")), str(t.get("cause"))
        s = str(t.get("severity") or severity_of(t))
        slot = out.setdefault(name, {}).setdefault(cause, {"n": 0, "req": 0, "sev": s, "size": math.inf, "t": t})
        slot["n"] += 1
        slot["req"] += required_of(t)
        if sev.rank(s) < sev.rank(slot["sev"]):
            slot["sev"] = s
        size = example_size(t.get("cause_example") or ({"input": (t.get("worst") or {}).get("input")}))
        if size < slot["size"]:
            slot.update(size=size, t=t)
    rows: dict[str, list[CauseRow]] = {}
    for name, causes in out.items():
        items = []
        for cause, slot in causes.items():
            t = slot["t"]
            info = CAUSES.get(cause)
            items.append(CauseRow(
                adapter=name, anchor=slug("cause", name, cause), cause=cause, severity=slot["sev"], n=slot["n"],
                required=slot["req"], detail=str(t.get("cause_detail") or (t.get("message") or "").split("\n")[0]),
                fix=info.fix if info else "", title=info.title if info else cause, spec=info.spec if info else "",
                golden=entry_golden(t, example=True),
            ))  # fmt: skip
        rows[name] = sorted(items, key=lambda r: (sev.rank(r.severity), cause_order(r.cause), -r.n))
    return rows


def entry_golden(t: dict[str, Any], example: bool = False) -> str | None:
    """The golden command of the element a row shows: the entry's worst element, or with
    ``example`` its cause example (the smallest input of its cause); none for an invariant,
    whose expected value is not the loss at that element."""
    if t.get("check") not in ("value", "grad"):
        return None
    w = t.get("worst") if isinstance(t.get("worst"), dict) else {}
    if example and isinstance(t.get("cause_example"), dict) and t["cause_example"].get("input") is not None:
        w = t["cause_example"]
    x, y = w.get("input"), w.get("target")
    grad = str(w.get("which") or t.get("check")).startswith("grad")
    cmd = digits.golden_command(t.get("variant"), x, y, t.get("dtype"), grad=grad)
    if cmd is None and t.get("family") == "golden" and _in_catalogue(t.get("case_id")):
        cmd = digits.case_command(t.get("case_id"), t.get("dtype"), grad=t.get("check") == "grad")
    return cmd


def _in_catalogue(case_id: Any) -> bool:
    try:
        from focalspec.spec.catalogue import get_case

        get_case(str(case_id))
        return True
    except Exception:  # not a catalogue case (or no catalogue): no command
        return False
