"""``focalspec adapters``: what can be tested here, and why the rest cannot."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from focalspec.adapters.registry import adapters_of_env, all_adapters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.add_argument("--available", action="store_true", help="only the adapters usable here")
    parser.add_argument(
        "--env",
        metavar="ENV",
        help="print the comma-separated names of the built-in adapters the tox environment ENV tests "
        "(what tox.ini passes as --focal-adapters)",
    )


def run(args: argparse.Namespace) -> int:
    if args.env is not None:
        names = [a.name for a in adapters_of_env(args.env)]
        if not names:
            envs = sorted({a.env for a in all_adapters(include_entry_points=False) if a.env})
            print(f"focalspec adapters: no adapter is tested in env {args.env!r}; envs: {', '.join(envs)}",
                  file=sys.stderr)
            return 2
        print(",".join(names))
        return 0
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
