"""``focalspec adapters``: what can be tested here, and why the rest cannot."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from focalspec.adapters.registry import all_adapters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.add_argument("--available", action="store_true", help="only the adapters usable here")


def run(args: argparse.Namespace) -> int:
    rows = [a.describe() for a in all_adapters()]
    if args.available:
        rows = [r for r in rows if r.unavailable is None]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    header = ("adapter", "implementation", "framework", "devices", "dtypes", "modes", "status")
    table = [header]
    for r in rows:
        framework = f"{r.framework} {r.framework_version}" if r.framework_version else r.framework
        status = "available" if r.unavailable is None else f"unavailable: {r.unavailable}"
        table.append(
            (r.name, r.implementation, framework, ",".join(r.devices) or "-", ",".join(r.dtypes), ",".join(r.modes),
             status)
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:  # the last column (the reason) is not padded
        print("  ".join([c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)] + [row[-1]]))
    return 0
