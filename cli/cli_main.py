"""The one command-line entry point, ``focalspec``, dispatching to each part's subcommand.

Subcommands register themselves lazily so that ``focalspec golden`` never imports a
framework; every user error ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
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
    "impact": ("focalspec.conformance.impact", "NaN gradients, loss/gradient change against the rounding floor and a "
               "training run on realistic workloads (SPEC §10.9)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` (a subcommand named on the command line): import that one's module
    alone -- the others' imports (numpy extensions, report templates) would delay ``focalspec
    check``'s workers by ~0.6 s -- and list the rest by name."""
    parser = argparse.ArgumentParser(
        prog="focalspec", description="The reference specification and conformance suite for focal loss."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False).set_defaults(_module=module)
            continue
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

    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words and words[0] in SUBCOMMANDS else None)
    args, extra = parser.parse_known_args(words)
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


def entry() -> None:
    """The console script: ``main``, then exit without tearing the interpreter down.  Unloading
    torch (or TF, JAX) module by module takes ~0.3 s after the verdict is printed, a quarter of
    a bare start-up; the exit handlers (cache files, logging) still run and the streams are
    flushed first.  An error exit (SystemExit) and Ctrl-C leave the normal way."""
    rc = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to say
            pass
    os._exit(rc)


if __name__ == "__main__":
    entry()
