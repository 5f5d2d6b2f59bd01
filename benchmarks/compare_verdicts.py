"""Compare two folders of results JSON (``--focal-json`` / ``focalspec check --json``), file by file
and check by check: are the verdicts of a refactoring the same?

    python benchmarks/compare_verdicts.py BEFORE_DIR AFTER_DIR

A grouped skip ('<family>-skipped-<hash of the reason>') is expanded into its cases, since the
group id follows the reason's text; then every (check, adapter, device, dtype, mode, family,
case) is compared on outcome, grade, cause, fault and tiers.  Reworded skip reasons are counted
apart (a refusal may be reworded; whether a check runs, and its verdict, may not change).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

KEYS = ("outcome", "grade", "cause", "fault", "failure_tier", "tier")


def load(path: Path) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = json.loads(path.read_text())["tests"]
    return tests


def expand(tests: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    out = {}
    for t in tests:
        base = (t["check"], t["adapter"], t["device"], t["dtype"], t["mode"], t["family"])
        for case in t["skipped_cases"] or [t["case_id"]]:
            out[(*base, case)] = {k: t.get(k) for k in KEYS} | {"reason": t.get("skip_reason")}
    return out


def main(before: Path, after: Path) -> int:
    total = same = 0
    for fb in sorted(before.glob("*.json")):
        fa = after / fb.name
        if not fa.exists():
            print(f"{fb.stem}: no after file")
            continue
        rb, ra = load(fb), load(fa)
        tb, ta = expand(rb), expand(ra)
        diff = [k for k in tb if k in ta and any(tb[k][x] != ta[k][x] for x in KEYS)]
        reworded = sum(1 for k in tb if k in ta and tb[k]["reason"] != ta[k]["reason"])
        only_b, only_a = len(set(tb) - set(ta)), len(set(ta) - set(tb))
        outcomes = dict(Counter(v["outcome"] for v in tb.values()))
        print(
            f"{fb.stem:18s} test ids {len(rb):4d}->{len(ra):4d}  checks {len(tb):5d}  only-before {only_b} "
            f"only-after {only_a}  outcome/grade/cause diffs {len(diff)}  reworded skip reasons {reworded}  {outcomes}"
        )
        for k in diff[:5]:
            print("   ", k, {x: (tb[k][x], ta[k][x]) for x in KEYS if tb[k][x] != ta[k][x]})
        total += len(tb)
        same += len(tb) - len(diff) - only_b
    print(f"total {total} checks (grouped skips expanded); identical in outcome/grade/cause/fault/tier: {same}")
    return 0 if total == same else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
