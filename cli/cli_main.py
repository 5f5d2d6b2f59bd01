"""The one command-line entry point, ``focalspec``, dispatching to each part's subcommand.

Subcommands register themselves lazily so that ``focalspec golden`` never imports a
framework; every user error ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

# name -> (module, help); each module provides add_arguments(parser) and run(args) -> int
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "golden": ("focalspec.certified.cli", "print certified golden values (documentation lookup)"),
    "adapters": ("focalspec.adapters.adapters_cli", "list the adapters, their versions, devices, dtypes and modes"),
    "bench": ("focalspec.benchmarks.cli", "throughput of each adapter against this machine's copy ceiling"),
    "report": ("focalspec.reports.build", "build the self-contained HTML agreement report from results JSON"),
    "check": ("focalspec.conformance.gate.check",
              "CI gate: run the conformance suite on one implementation (exit 0/1/2)"),
    "findings": ("focalspec.reports.findings_cli", "one finding per (implementation, cause) from results JSON"),
    "impact": ("focalspec.conformance.diagnosis.impact",
               "NaN gradients, loss/gradient change against the rounding floor and a "
               "training run on realistic workloads (SPEC §10.9)"),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (``prog: error: ...``) and exit 2, not a
    usage block: the one-line contract of every other error (``focalspec check --depth nonsense``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# a value that starts with '-' but is a number: -2.25, -1, -.5, -inf, -2.203125:0.0 (a --point X:T)
_NEGATIVE_VALUE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def attach_negative_values(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``--point -2.2:0.0`` as ``--point=-2.2:0.0``: argparse reads a word starting with '-' as an
    option unless it is a plain negative number, so a reproducer with a negative input (or
    ``--timeout -1``, to be refused with its own message) would stop at "expected one argument"."""
    takes_value = {
        opt
        for action in _all_actions(parser)
        if action.option_strings and action.nargs is None and not isinstance(action, _FLAG_ACTIONS)
        for opt in action.option_strings
    }
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in takes_value and i + 1 < len(words) and _NEGATIVE_VALUE.match(words[i + 1]):
            out.append(f"{w}={words[i + 1]}")
            i += 2
            continue
        out.append(w)
        i += 1
    return out


_FLAG_ACTIONS = (argparse._StoreConstAction, argparse._CountAction, argparse._HelpAction, argparse._VersionAction)


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions += _all_actions(sub)
    return actions


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` (a subcommand named on the command line): import that one's module
    alone -- the others' imports (numpy extensions, report templates) would delay ``focalspec
    check``'s workers by ~0.6 s -- and list the rest by name."""
    parser = OneLineParser(
        prog="focalspec", description="The reference specification and conformance suite for focal loss."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
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
    args, extra = parser.parse_known_args(attach_negative_values(parser, words))
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_module", None) is None:
        print(f"focalspec {args.command}: error: this subcommand cannot load ({args._unavailable})", file=sys.stderr)
        return 2
    if extra:
        print(f"focalspec {args.command}: error: unrecognized arguments: {' '.join(extra)} "
              f"(see focalspec {args.command} --help)", file=sys.stderr)  # fmt: skip
        return 2
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
