"""The one command-line entry point, ``focalspec``, dispatching to each part's subcommand.

Subcommands register themselves lazily so that ``focalspec golden`` never imports a
framework; every user error ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, help); each module provides add_arguments(parser) and run(args) -> int
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "golden": ("focalspec.spec.golden_cli", "print certified golden values (documentation lookup)"),
    "adapters": ("focalspec.adapters.adapters_cli", "list the adapters, their versions, devices, dtypes and modes"),
    "bench": ("focalspec.conformance.bench_cli", "throughput of each adapter against this machine's copy ceiling"),
    "report": ("focalspec.reports.build", "build the self-contained HTML agreement report from results JSON"),
    "check": ("focalspec.conformance.gate", "CI gate: run the conformance suite on one implementation (exit 0/1/2)"),
    "findings": ("focalspec.reports.findings_cli", "one finding per (implementation, cause) from results JSON"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="focalspec", description="The reference specification and conformance suite for focal loss."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # one broken part must not take the whole CLI down
            p = sub.add_parser(name, help=f"(unavailable: {exc})", add_help=False)
            p.set_defaults(_module=None, _unavailable=f"{type(exc).__name__}: {exc}")
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        mod.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from focalspec.spec.variant import SpecError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_module", None) is None:
        print(f"focalspec {args.command}: error: this subcommand cannot load ({args._unavailable})", file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(importlib.import_module(args._module).run(args))
    except SpecError as exc:
        print(f"focalspec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `focalspec golden --list | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
