"""The suite's section of pytest's terminal summary: per combination, per tier, per cause, faults.

Written by the plugin at the end of a session from its records (``plugin.State``); a module of
its own so that the plugin keeps to its hooks.
"""

from __future__ import annotations

from typing import Any

from focalspec.conformance.diagnosis import causes
from focalspec.conformance.suite import results, tiers


def write(tr: Any, state: Any) -> None:
    """The summary of ``state`` (a ``plugin.State`` with entries) on the terminal reporter ``tr``."""
    entries = state.entry_dicts()
    tr.section("focalspec conformance")
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for e in entries:
        k = (e["adapter"], e["device"], e["dtype"], e["mode"])
        r = rows.setdefault(
            k,
            {
                "passed": 0,
                "failed": 0,
                "not required": 0,
                "skipped": 0,
                "xfailed": 0,
                "other": 0,
                "worst": None,
                "required": e["required_grade"],
            },
        )
        out = results.tally_key(e) or "other"
        r[out if out in r else "other"] += 1
        g = e.get("grade") if out in ("passed", "failed", "xpassed") else None  # what the verdict counts
        if g and (r["worst"] is None or _rank(g) > _rank(r["worst"])):
            r["worst"] = g
    tr.write_line(
        f"{'adapter':<28} {'device':<6} {'dtype':<9} {'mode':<9} {'pass':>6} {'fail':>6} {'notreq':>6} "
        f"{'skip':>6} {'xfail':>6}  worst grade (required)"
    )
    for (a, dev, dt, mode), r in rows.items():
        tr.write_line(
            f"{a:<28} {dev:<6} {dt:<9} {mode:<9} {r['passed']:>6} {r['failed']:>6} {r['not required']:>6} "
            f"{r['skipped']:>6} {r['xfailed']:>6}  {r['worst'] or '-'} ({r['required']})"
        )
    tr.write_line(f"tiers (* = required, --focal-require {','.join(state.options.require)}):")
    for line in tiers.summary_lines(entries, state.options.require):
        tr.write_line("  " + line)
    cause_lines = causes.summary_lines(entries)
    if cause_lines:
        tr.write_line("causes of the failures (SPEC §10.7; smallest input that shows each):")
        for line in cause_lines:
            tr.write_line("  " + line)
    stale_x, stale_s = state.stale()
    for kind, stale in (("xfail", stale_x), ("skip", stale_s)):
        for entry in stale:
            why = (
                f"passed: {', '.join(entry.xpassed[:3])}" + (" ..." if len(entry.xpassed) > 3 else "")
                if entry.xpassed
                else "matches no collected test"
            )
            tr.write_line(f"stale {kind} entry {entry.file}:{entry.line}: {entry.pattern} ({why})", yellow=True)
    for line in fault_lines(entries):
        tr.write_line(line, red=True)
    if state.sweep_error:
        tr.write_line(f"sweeps not computed: {state.sweep_error}", red=True)
    if state.json_path:
        tr.write_line(f"results JSON: {state.json_path}")


def _rank(grade: str) -> int:
    from focalspec.conformance.suite.grading import RANK

    return RANK.get(grade, 0)


FAULT_WORDS = {"crash": "crashed", "exit": "exited", "hang": "hung", "memory": "over the memory limit",
               "not-run": "not run (fault or run budget spent)", "contract": "broke a contract"}  # fmt: skip


def fault_lines(entries: Any) -> list[str]:
    """One line per adapter whose implementation crashed, hung, blew memory, broke a contract or was not run."""
    per: dict[str, dict[str, int]] = {}
    for e in entries:
        if e.get("fault"):
            row = per.setdefault(e["adapter"], {})
            row[e["fault"]] = row.get(e["fault"], 0) + 1
    return [
        f"faults of {a}: " + ", ".join(f"{n} checks {FAULT_WORDS.get(k, k)}" for k, n in sorted(row.items()))
        for a, row in per.items()
    ]
