"""What the report shows, computed from merged results: the agreement matrix, the drill-down
groups and the per-implementation summaries -- plain data, so the template only lays it out
and the JSON carries the same numbers as the page (the first screen's severities: harm.py).

A cell's grade is the worst over its tests: a failed, erroring or expected-to-fail test is
a "fail" (a known disagreement is still a disagreement) unless its severity is ``policy`` (a
tier that is not required, SPEC §10.8), which is counted apart and never colours the cell; a
passed test without a numeric grade (an invariant) counts as "pass" and never hides a graded
result.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from focalspec.conformance.diagnosis import severity as sev
from focalspec.reports import harm
from focalspec.reports.entry import FAILING, max_err, slug
from focalspec.reports.merge import FAMILIES, to_float

DTYPE_ORDER: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
# cell categories, best first; "pass" = passed without a numeric grade
CATEGORIES: tuple[str, ...] = ("pass", "exact", "faithful", "accurate", "acceptable", "fail")
RANK = {c: i for i, c in enumerate(CATEGORIES)}


def short_nodeid(nodeid: str) -> str:
    """The suite's test name without its file path: in a tox env the path is the installed
    package's (".tox/jax/lib/python3.11/site-packages/focalspec/conformance/test_conformance.py"),
    75 bytes repeated on every line of the page; the environment is shown beside it."""
    path, sep, name = str(nodeid).partition("::")
    return name if sep and path.endswith("test_conformance.py") else str(nodeid)


def category(t: dict[str, Any]) -> str:
    """The matrix category of one test: a grade, "pass", "fail" or "skipped"."""
    outcome = t.get("outcome")
    if outcome == "skipped":
        return "skipped"
    if outcome in FAILING:
        return "fail"
    grade = t.get("grade")
    return grade if grade in RANK and grade != "fail" else "pass"


def cause_of(t: dict[str, Any]) -> str:
    """A failing test's cause: its own (the suite writes it), else classified from its entry."""
    return harm.cause_of(t)


def fmt_u(v: Any) -> str:
    """An error in units of roundoff, readable at a glance."""
    f = to_float(v)
    if f is None:
        return "—"
    if math.isnan(f) or math.isinf(f):
        return "NaN/Inf"
    if f == 0:
        return "0 u"
    if f < 0.01:
        return f"{f:.1e} u"
    if f < 10:
        return f"{f:.2f} u"
    if f < 1e5:
        return f"{f:.0f} u"
    return f"{f:.1e} u"


def fmt_num(v: Any) -> str:
    """A value as the results wrote it: strings kept (they carry exact digits), floats in repr."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list | tuple):
        inner = ", ".join(fmt_num(x) for x in v[:12])
        return f"[{inner}{', …' if len(v) > 12 else ''}]"
    return str(v)


@dataclass
class Cell:
    """One matrix cell.  A failure whose severity is ``policy`` (a tier that is not required,
    SPEC §10.8) never colours the cell: it is counted in ``policy`` and shown hatched beside the
    grade; a cell with nothing but such failures is ``policy``, not ``fail``."""

    category: str = "none"  # a CATEGORIES entry, "policy", "skipped" or "none" (no tests)
    worst_u: float | None = None
    passed: int = 0
    ran: int = 0
    skipped: int = 0
    xfailed: int = 0
    worst_nodeid: str = ""
    failed: int = 0  # failures that count (severity above policy)
    fail_u: float | None = None  # largest error among the failing tests (None: they failed ungraded)
    causes: Counter[str] = field(default_factory=Counter)  # counting failures per cause (SPEC §10.7)
    levels: Counter[str] = field(default_factory=Counter)  # counting failures per severity (SPEC §10.8)
    cause_level: dict[str, str] = field(default_factory=dict)  # cause -> its worst severity here
    policy: int = 0  # failures in a tier that is not required
    policy_causes: Counter[str] = field(default_factory=Counter)
    anchor: str = ""  # the cell's id in the matrix; its tests are under "t-" + anchor

    def add(self, t: dict[str, Any]) -> None:
        cat = category(t)
        if cat == "skipped":
            self.skipped += 1
            if self.category == "none":
                self.category = "skipped"
            return
        self.ran += 1
        self.passed += t["outcome"] in ("passed", "xpassed")
        self.xfailed += t["outcome"] == "xfailed"
        if cat == "fail":
            level = str(t.get("severity") or harm.severity_of(t))
            if level == "policy":
                self.policy += 1
                self.policy_causes[cause_of(t)] += 1
                if self.category in ("none", "skipped"):
                    self.category = "policy"
                return
            self.failed += 1
            cause = cause_of(t)
            self.causes[cause] += 1
            self.levels[level] += 1
            if cause not in self.cause_level or sev.rank(level) < sev.rank(self.cause_level[cause]):
                self.cause_level[cause] = level
        if self.category in ("none", "skipped", "policy") or RANK[cat] > RANK[self.category]:
            self.category = cat
        e = max_err(t)
        if e is not None and (self.worst_u is None or e > self.worst_u):
            self.worst_u, self.worst_nodeid = e, t["nodeid"]
        if cat == "fail" and e is not None and (self.fail_u is None or e > self.fail_u):
            self.fail_u = e

    @property
    def severity(self) -> str | None:
        return sev.worst(list(self.levels)) or ("policy" if self.policy else None)

    @property
    def dominant_cause(self) -> str | None:
        """The most severe cause of the cell's failures (SPEC §10.8, then the cause order of
        §10.7; the count only breaks ties): six NaN gradients at finite inputs outrank seven
        failures at x = ±∞."""
        if not self.causes:
            return None
        return min(self.causes, key=lambda c: (sev.rank(self.cause_level.get(c, "")), harm.cause_order(c),
                                               -self.causes[c]))

    @property
    def cause_label(self) -> str:
        from focalspec.conformance.diagnosis.causes import SHORT

        c = self.dominant_cause
        if c:
            return SHORT.get(c, c)
        return "±∞ only" if self.policy else ""

    @property
    def cause_title(self) -> str:
        parts = [f"{n} {c}" for c, n in self.causes.most_common()]
        parts += [f"{n} {c} (not required)" for c, n in self.policy_causes.most_common()]
        return ", ".join(parts)

    @property
    def shown_error(self) -> str:
        """The error a cell shows: of its failures when it fails (a passing test's small error
        next to "fail" would mislead), "ungraded" when they failed before any error was measured
        (wrong shape, an exception)."""
        if self.category == "fail":
            return fmt_u(self.fail_u) if self.fail_u is not None else "ungraded"
        return fmt_u(self.worst_u) if self.worst_u is not None else ""

    @property
    def label(self) -> str:
        return {"none": "", "pass": "pass", "policy": "policy"}.get(self.category, self.category)

    def to_dict(self) -> dict[str, Any]:
        w = self.worst_u
        return {
            "grade": self.category,
            "severity": self.severity,
            "worst_u": None if w is None else (w if math.isfinite(w) else "inf"),
            "passed": self.passed,
            "ran": self.ran,
            "skipped": self.skipped,
            "xfailed": self.xfailed,
            "failed": self.failed,
            "not_required_failures": self.policy,
            "fail_u": None if self.fail_u is None else (self.fail_u if math.isfinite(self.fail_u) else "inf"),
            "causes": dict(self.causes),
            "not_required_causes": dict(self.policy_causes),
        }


def cell_anchor(adapter: str, device: str, mode: str, family: str, dtype: str) -> str:
    """The id of one matrix cell (its tests in the drill-down are under "t-" + this id)."""
    return slug("cell", adapter, device, mode, family, dtype)


@dataclass
class Row:
    adapter: dict[str, Any]
    device: str
    mode: str
    anchor: str
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    overall: Cell = field(default_factory=Cell)
    span: int = 1  # rows of this adapter starting here (0: not the adapter's first row)

    @property
    def unavailable(self) -> str | None:
        return self.adapter.get("unavailable")


@dataclass
class Matrix:
    families: list[str]
    dtypes: list[str]
    rows: list[Row]

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(f, d) for f in self.families for d in self.dtypes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "families": self.families,
            "dtypes": self.dtypes,
            "rows": [
                {
                    "adapter": r.adapter["name"],
                    "device": r.device,
                    "mode": r.mode,
                    "unavailable": r.unavailable,
                    "overall": r.overall.to_dict(),
                    "cells": {f"{f}/{d}": c.to_dict() for (f, d), c in r.cells.items()},
                }
                for r in self.rows
            ],
        }


def _ordered(values: set[str], order: tuple[str, ...]) -> list[str]:
    return [v for v in order if v in values] + sorted(values - set(order))


def build_matrix(results: dict[str, Any]) -> Matrix:
    """Rows: adapter x device x mode (adapters in file order, unavailable ones as one row);
    columns: family x dtype, only those present."""
    tests = results.get("tests") or []
    families = _ordered({str(t.get("family") or "other") for t in tests}, FAMILIES)
    dtypes = _ordered({str(t.get("dtype") or "-") for t in tests}, DTYPE_ORDER)
    adapters = {a["name"]: a for a in results.get("adapters") or []}
    for t in tests:  # a test of an adapter the file did not describe still gets a row
        adapters.setdefault(str(t.get("adapter")), {"name": str(t.get("adapter")), "unavailable": None})
    rows: dict[tuple[str, str, str], Row] = {}
    for name, a in adapters.items():
        combos = sorted(
            {(str(t.get("device") or "-"), str(t.get("mode") or "-")) for t in tests if t.get("adapter") == name},
            key=lambda dm: (dm[0] != "cpu", dm[0], dm[1] != "eager", dm[1]),
        )
        if not combos:
            combos = [("—", "—")]
        for device, mode in combos:
            rows[(name, device, mode)] = Row(a, device, mode, slug("impl", name))
            rows[(name, device, mode)].overall.anchor = slug("cellall", name, device, mode)
    for t in tests:
        row = rows[(str(t.get("adapter")), str(t.get("device") or "-"), str(t.get("mode") or "-"))]
        key = (str(t.get("family") or "other"), str(t.get("dtype") or "-"))
        anchor = cell_anchor(row.adapter["name"], row.device, row.mode, *key)
        row.cells.setdefault(key, Cell(anchor=anchor)).add(t)
        row.overall.add(t)
    ordered = sorted(rows.values(), key=lambda r: bool(r.unavailable))  # unavailable last, order kept
    for r in ordered:
        same = [q for q in ordered if q.adapter is r.adapter]
        r.span = len(same) if same[0] is r else 0
    return Matrix(families, dtypes, ordered)


# ----------------------------------------------------------------------------- drill-down


def sort_key_failures(t: dict[str, Any]) -> tuple[Any, ...]:
    """Most harmful first: severity (SPEC §10.8), then the error, not the error alone -- a
    9e15 u error at an exact value of 1e-48 is not the first thing to fix."""
    return harm.impact_key(t)


@dataclass
class CellTests:
    """The tests of one matrix cell as the drill-down lists them: the worst failures of each
    cause (most harmful first), how many are left out, and the cell's passes in one line."""

    anchor: str  # "t-" + the matrix cell's anchor
    device: str
    mode: str
    family: str
    dtype: str
    failures: list[dict[str, Any]]
    hidden: Counter[str]
    n_failed: int
    ran: int
    passed: int
    skipped: int
    worst_pass: dict[str, Any] | None

    @property
    def severity(self) -> str | None:
        return sev.worst([str(t.get("severity")) for t in self.failures])


@dataclass
class AdapterGroup:
    """One implementation's tests, failures first, as the drill-down shows them."""

    adapter: dict[str, Any]
    anchor: str
    failures: list[dict[str, Any]]
    passed: list[dict[str, Any]]
    skipped: dict[str, list[dict[str, Any]]]  # reason -> tests
    counts: Counter[str]
    passed_shown: int
    failures_hidden: Counter[str] = field(default_factory=Counter)  # cause -> failures not listed
    cells: list[CellTests] = field(default_factory=list)

    @property
    def n_listed(self) -> int:
        return sum(len(c.failures) for c in self.cells)


def first_per_cause(failures: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The first ``limit`` failures of each cause, in the given (worst-first) order, and how many
    of each cause are left out; ``limit`` 0 keeps all."""
    if limit <= 0:
        return failures, Counter()
    seen: Counter[str] = Counter()
    kept = []
    for t in failures:
        cause = str(t.get("cause") or "unclassified")
        seen[cause] += 1
        if seen[cause] <= limit:
            kept.append(t)
    return kept, Counter({c: n - limit for c, n in seen.items() if n > limit})


def _cell_key(t: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(t.get("device") or "-"), str(t.get("mode") or "-"), str(t.get("family") or "other"),
            str(t.get("dtype") or "-"))  # fmt: skip


def cell_tests(name: str, tests: list[dict[str, Any]], limit: int) -> list[CellTests]:
    """Per matrix cell of one implementation: its listed failures and the count of the rest;
    cells with the most harmful failures first, then the matrix order."""
    by_cell: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for t in tests:
        by_cell.setdefault(_cell_key(t), []).append(t)
    dorder = {d: i for i, d in enumerate(DTYPE_ORDER)}
    forder = {f: i for i, f in enumerate(FAMILIES)}
    out = []
    for (device, mode, family, dtype), ts in by_cell.items():
        fails = sorted((t for t in ts if t["outcome"] in FAILING), key=sort_key_failures)
        kept, hidden = first_per_cause(fails, limit)
        passes = [t for t in ts if t["outcome"] in ("passed", "xpassed")]
        worst_pass = max(passes, key=lambda t: max_err(t) or 0.0, default=None)
        out.append(CellTests("t-" + cell_anchor(name, device, mode, family, dtype), device, mode, family, dtype,
                             kept, hidden, len(fails), sum(t["outcome"] != "skipped" for t in ts), len(passes),
                             sum(t["outcome"] == "skipped" for t in ts), worst_pass))  # fmt: skip
    return sorted(out, key=lambda c: (sev.rank(c.severity) if c.severity else 9, -c.n_failed, c.device != "cpu",
                                      c.device, c.mode != "eager", forder.get(c.family, 99), c.family,
                                      dorder.get(c.dtype, 9)))  # fmt: skip


def drilldown(results: dict[str, Any], max_passed_rows: int, max_failures_per_cause: int = 0) -> list[AdapterGroup]:
    """Per adapter: failed/error/xfailed tests most harmful first, grouped by matrix cell (the
    first ``max_failures_per_cause`` of each cause in each cell, 0 = all), skips by reason,
    passes by decreasing error -- the first ``max_passed_rows`` of them (merged.json has all)."""
    by_adapter: dict[str, list[dict[str, Any]]] = {}
    for t in results.get("tests") or []:
        by_adapter.setdefault(str(t.get("adapter")), []).append(t)
    groups: list[AdapterGroup] = []
    adapters = {a["name"]: a for a in results.get("adapters") or []}
    names = [n for n in adapters if not adapters[n].get("unavailable")]
    names += [n for n in by_adapter if n not in names]
    names += [n for n in adapters if n not in names]  # unavailable ones last, as in the matrix
    for name in names:
        tests = by_adapter.get(name, [])
        cells = cell_tests(name, tests, max_failures_per_cause)
        hidden: Counter[str] = Counter()
        for c in cells:
            hidden.update(c.hidden)
        passed = sorted(
            (t for t in tests if t["outcome"] in ("passed", "xpassed")),
            key=lambda t: (-(max_err(t) or 0.0), t["nodeid"]),
        )
        skipped: dict[str, list[dict[str, Any]]] = {}
        for t in tests:
            if t["outcome"] == "skipped":
                skipped.setdefault(str(t.get("skip_reason") or t.get("message") or "no reason given"), []).append(t)
        groups.append(
            AdapterGroup(
                adapter=adapters.get(name, {"name": name}),
                anchor=slug("impl", name),
                failures=sorted((t for t in tests if t["outcome"] in FAILING), key=sort_key_failures),
                passed=passed,
                skipped=skipped,
                counts=Counter(t["outcome"] for t in tests),
                passed_shown=min(len(passed), max_passed_rows),
                failures_hidden=hidden,
                cells=cells,
            )
        )
    return groups


# ----------------------------------------------------------------------------- summaries


@dataclass
class ImplSummary:
    """The line a maintainer reads first: tiers, causes with their smallest inputs, finite grade."""

    name: str
    anchor: str
    tiers: list[tuple[str, int, int]]  # (tier, run, failed)
    causes: list[tuple[str, int, str]]  # (cause, failing checks, detail of the smallest input)
    finite_grade: str | None
    failed: int


def impl_summaries(results: dict[str, Any]) -> list[ImplSummary]:
    from focalspec.conformance.diagnosis import causes
    from focalspec.conformance.suite import tiers

    tests = results.get("tests") or []
    failing = [dict(t, cause=cause_of(t)) if t.get("outcome") in FAILING else t for t in tests]
    per_tier = tiers.summarize(dict(t, outcome="failed") if t.get("outcome") == "xfailed" else t for t in failing)
    per_cause = causes.tally(dict(t, outcome="failed") if t.get("outcome") == "xfailed" else t for t in failing)
    out = []
    names = [a["name"] for a in results.get("adapters") or [] if not a.get("unavailable")]
    names += [n for n in dict.fromkeys(str(t.get("adapter")) for t in tests) if n not in names]
    for name in names:
        mine = [t for t in tests if t.get("adapter") == name]
        if not mine:
            continue
        grade: str | None = None
        for t in mine:
            if (t.get("tier") or "finite") != "finite" or t.get("outcome") == "skipped":
                continue
            bad = t.get("outcome") in FAILING and (t.get("failure_tier") or "finite") == "finite"
            g = "fail" if bad else category(t)
            if g in RANK and (grade is None or RANK[g] > RANK[grade]):
                grade = g
        row = per_tier.get(name, {})
        crow = per_cause.get(name, {})
        out.append(ImplSummary(
            name=name, anchor=slug("impl", name),
            tiers=[(tier, n, bad) for tier, (n, bad) in row.items() if n],
            causes=[(c, s["n"], s["detail"]) for c, s in sorted(crow.items(), key=lambda kv: -kv[1]["n"])],
            finite_grade=grade,
            failed=sum(s["n"] for s in crow.values()),
        ))  # fmt: skip
    return out
