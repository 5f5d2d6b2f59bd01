"""``focalspec check``: the CI gate -- the conformance suite for one implementation, one verdict.

    focalspec check PKG.MODULE:CALLABLE --framework torch [convention options] [--grade G]
    focalspec check ADAPTER_NAME [--case ID] [--dtype D] ...      (e.g. focalspec check torchvision)

runs ``pytest --pyargs focalspec.conformance`` in-process with the focalspec plugin, its own
empty pytest configuration (a project's ``addopts`` cannot change the verdict) and only the
options given here (``FOCAL_*`` environment variables are ignored: the command line is the
contract).  Exit 0 when every check ran passes at the required grade, 1 when any fails, 2 on a
usage error (callable not importable, wrong signature, framework missing, unknown adapter,
nothing selected) with one line on stderr.  Option values are judged before any framework is
imported (``check_values``); the callable's first call, in its eager worker, tells a wrong
``--framework`` or a KeyboardInterrupt (``CallableAdapter.first_call_problem``).  The verdict
line counts the run in the one tally pytest's line, the JSON and JUnit share (``results.TALLY``,
SPEC §10.5) and names the checks its declared convention does not offer (not applicable).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from focalspec.conformance.suite.options import BY_NAME, OPTIONS, add_gate_arguments
from focalspec.conformance.suite.tiers import UNREQUIRED_ATTR, parse_require
from focalspec.spec.variant import SpecError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The gate's options: generated from the suite's one option table (``options.OPTIONS``)."""
    p.description = "Run the conformance suite against one implementation and give a verdict (exit 0/1/2)."
    add_gate_arguments(p)


def _joined(values: list[str]) -> str | None:
    items = [v.strip() for chunk in values for v in chunk.split(",") if v.strip()]
    return ",".join(items) if items else None


def validate(args: argparse.Namespace) -> list[str]:
    """The plugin options for this target; SpecError (exit 2) for anything unusable."""
    opts: list[str] = []
    target: str = args.target
    if ":" in target:
        from focalspec.adapters.callable_adapter import callable_name, convention_from_options, make_callable_adapter

        if not args.framework:
            raise SpecError("a callable needs --framework torch|jax|tensorflow")
        # import, signature, framework: one line each -- asked of the worker that will run it, so
        # this process imports neither the framework nor the callable (and survives a crash at import)
        conv = convention_from_options(args, args.kwarg)
        if _prespawns(args):
            from focalspec.conformance.suite import isolation

            isolation.worker_facts(isolation.Recipe.of_callable(target, conv), callable_name(target))
        else:
            problem = make_callable_adapter(target, conv).first_call_problem()
            if problem:
                raise SpecError(problem)
        opts.append(_opt("impl", target))
    else:
        from focalspec.adapters.registry import get_adapter

        try:
            adapter = get_adapter(target)
        except KeyError as exc:
            import difflib

            from focalspec.adapters.registry import all_adapters

            close = difflib.get_close_matches(target, [a.name for a in all_adapters()], n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise SpecError(f"no adapter named {target!r}; {hint}(`focalspec adapters` lists them)" if close
                            else str(exc.args[0])) from None  # fmt: skip
        reason = adapter.unavailable_reason()
        if reason:
            raise SpecError(f"adapter {target} is unavailable here: {reason}")
        opts.append(_opt("adapters", target))
    return opts + forwarded(args, callable_target=":" in target) + _jobs(args.jobs)


def forwarded(args: argparse.Namespace, callable_target: bool) -> list[str]:
    """The gate's options as the suite's ``--focal-NAME=VALUE`` words, from ``options.OPTIONS``:
    every option with a pytest twin that was given (or has a gate default), a callable's
    convention only for a callable; repeated options joined by commas (``--kwarg`` repeated)."""
    out: list[str] = []
    for o in OPTIONS:
        if o.gate is None or not o.pytest or (o.callable_only and not callable_target):
            continue
        if o.forward_with is not None and getattr(args, BY_NAME[o.forward_with].dest) is None:
            continue
        value = getattr(args, o.dest)
        if o.kind == "flag":
            out += [o.flag] if value else []
        elif o.kind == "multi":
            out += [_opt(o.name, v) for v in value]
        elif o.gate.action == "append":
            joined = _joined(value)
            out += [_opt(o.name, joined)] if joined else []
        elif value is not None and value != "":
            out.append(_opt(o.name, repr(value) if isinstance(value, float) else str(value)))
    return out


def _opt(name: str, value: str) -> str:
    """``--focal-NAME=VALUE`` in one word: pytest's argparse would read a value starting with '-'
    (a negative --point, a -1 alpha-off) as an option of its own."""
    return f"{BY_NAME[name].flag}={value}"


def _jobs(n: int) -> list[str]:
    if n < 1:
        raise SpecError(f"--jobs must be >= 1, got {n}")
    if n == 1:
        return []
    try:
        import xdist  # noqa: F401
    except ImportError:
        raise SpecError("--jobs needs pytest-xdist (pip install pytest-xdist)") from None
    autoload_off = bool(os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"))
    return [*(["-p", "xdist"] if autoload_off else []), "-n", str(n)]


class _Tally:
    """Counts outcomes of the in-process run (the verdict line and the 'nothing ran' case)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.failed: list[str] = []
        self.unrequired: Counter[str] = Counter()
        self.causes: dict[str, list[Any]] = {}
        self.minimal: list[dict[str, Any]] = []
        self.not_run: list[str] = []
        self.tally: dict[str, int] | None = None
        self.not_applicable: dict[str, int] = {}

    def pytest_unconfigure(self, config: Any) -> None:
        from focalspec.conformance.suite.plugin import minimal_of, not_applicable_of, required_not_run, tally_of

        self.minimal = minimal_of(config)  # after the plugin's sessionfinish has shrunk them
        self.not_run = required_not_run(config)
        self.tally = tally_of(config)  # the one tally (results.TALLY) that pytest's line, JSON and JUnit share
        self.not_applicable = not_applicable_of(config)

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            key = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            tier = getattr(report, UNREQUIRED_ATTR, None)  # set by the plugin (plugin.unrequired_tier)
            if key == "xfailed" and tier is not None:
                key = "unrequired"
                self.unrequired[str(tier)] += 1
            if report.when == "setup" and report.failed:
                key = "error"
            self.counts[key] += 1
            if key == "skipped" and isinstance(report.longrepr, tuple):
                self.skip_reasons[str(report.longrepr[2]).removeprefix("Skipped: ")] += 1
            if key in ("failed", "error"):
                self.failed.append(report.nodeid.split("::")[-1])
            if key in ("failed", "error", "unrequired"):
                self.cause(dict(report.user_properties), key == "unrequired", report.nodeid)

    def cause(self, props: dict[str, Any], unrequired: bool, nodeid: str = "") -> None:
        """Per cause: [failing checks, |smallest input|, its line, only in tiers not required, dtypes,
        the reproducing mechanism's fix (of the smallest input), NaN/Inf at a finite input in a required tier]."""
        name = str(props.get("cause") or "unclassified")
        x = props.get("cause_input")
        size = abs(float(x)) if isinstance(x, int | float) and x == x else math.inf
        slot = self.causes.setdefault(name, [0, math.inf, str(props.get("cause_detail") or ""), True, set(), None,
                                             False])  # fmt: skip
        slot[0] += 1
        slot[3] = slot[3] and unrequired
        slot[4].update(re.findall(r"-(?:cpu|cuda)-(float64|float32|bfloat16|float16)-", nodeid)[:1])
        slot[6] = slot[6] or (bool(props.get("cause_nonfinite")) and not unrequired)
        if size < slot[1] or slot[5] is None:
            slot[5] = props.get("cause_fix") or slot[5]
        if size < slot[1]:
            slot[1], slot[2] = size, str(props.get("cause_detail") or "")

    def cause_lines(self, target: str = "") -> list[str]:
        """The causes by severity, then count (SPEC §10.8), each with its impact numbers (§10.9,
        the committed reports/impact.json for a built-in adapter)."""
        from focalspec.conformance.diagnosis import impact, severity
        from focalspec.conformance.diagnosis.causes import CAUSES, PRIORITY
        from focalspec.conformance.suite import shrink

        smallest = {cause: m for (_, cause), m in shrink.best(self.minimal).items()}
        by_dtype = shrink.best_by_dtype(self.minimal)
        entry = impact.load().get(target)
        level = {name: severity.severity(name, required=not slot[3], impact_exceeds_floor=impact.exceeds_floor(
            entry, slot[4]), nonfinite=slot[6]) for name, slot in self.causes.items()}  # fmt: skip
        out = []
        for name, (n, _, detail, unreq, dtypes, fix, _nf) in sorted(self.causes.items(),
                                                          key=lambda kv: severity.summary_key(level[kv[0]], kv[1][0],
                                                                                              kv[0])):  # fmt: skip
            rank = PRIORITY.index(name) if name in PRIORITY else len(PRIORITY)
            tag = " (tiers not required)" if unreq else ""
            out.append(f"  [{level[name]}] {name} {n}{tag}: {detail[:160]}")
            if not unreq:
                out.append(f"    {impact.impact_line(entry, name, dtypes)}")
            if name in smallest:
                shown = shrink.lines(smallest[name]) + shrink.also_lines(smallest[name], by_dtype)
                out += [f"    {line}" for line in shown]
            if name in CAUSES and rank < len(PRIORITY) - 1:
                out.append(f"    fix: {(fix or CAUSES[name].fix)[:240]}")
        return out


@contextlib.contextmanager
def _without_focal_env() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("FOCAL_")}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


def check_values(args: argparse.Namespace) -> None:
    """Every option value the gate can judge on its own, before any worker starts or framework is
    imported: one SpecError line (exit 2) in a fraction of a second instead of a pytest error
    after the imports (``--timeout -1``, a missing ``--xfails`` file, ``--families nonsense``)."""
    from focalspec.adapters.base import DEVICES, DTYPES, MODES
    from focalspec.conformance.suite.families import FAMILIES

    for o in OPTIONS:  # the numbers with a floor (options.Opt.minimum); --jobs says it its own way below
        value = getattr(args, o.dest, None)
        if o.minimum is None or o.gate is None or not o.pytest or value is None:
            continue
        if not (value >= o.minimum and math.isfinite(value)):
            kind = "a whole number" if o.gate.type is int else "a number"
            raise SpecError(f"--{o.name} must be {kind} >= {o.minimum:g}, got {value:g}")
    if args.jobs < 1:
        raise SpecError(f"--jobs must be >= 1, got {args.jobs}")
    for name, values, allowed in (
        ("dtype", args.dtypes, DTYPES),
        ("mode", args.modes, MODES),
        ("device", args.devices, DEVICES),
        ("families", [args.families or ""], FAMILIES),
    ):
        bad = [v for v in (_joined(values) or "").split(",") if v and v not in allowed]
        if bad:
            raise SpecError(f"--{name}: unknown {', '.join(bad)}; expected among {', '.join(allowed)}")
    parse_require(args.require)
    for name, path in (("xfails", args.xfails), ("skips", args.skips)):
        if path:
            try:
                Path(path).open(encoding="utf-8").close()
            except OSError as exc:
                raise SpecError(f"--{name}: cannot read {path}: {exc.strerror}") from None
    if args.variant and not args.point:
        raise SpecError("--variant names the variant of --point; give --point X:T too")
    if args.point:
        from focalspec.conformance.suite.families import point_case

        point_case(args.point, args.variant)
    if ":" not in args.target and "." in args.target:
        from focalspec.adapters.registry import all_adapters

        if args.target not in {a.name for a in all_adapters()}:
            module, _, attr = args.target.rpartition(".")
            raise SpecError(
                f"no adapter named {args.target!r}; did you mean {module}:{attr}? "
                "(a callable is given as PKG.MODULE:CALLABLE)"
            )


def run(args: argparse.Namespace) -> int:
    check_values(args)
    import pytest

    import focalspec.conformance as pkg

    _prespawn(args)
    try:
        opts = validate(args)
        return _run_pytest(args, opts, Path(pkg.__file__).resolve().parent.parent, pytest)
    finally:
        from focalspec.conformance.suite import isolation

        isolation.discard_prespawned()


def _has_compiled_mode(target: str) -> bool:
    """A callable has one (torch.compile, jax.jit, tf.function); a registry adapter says."""
    if ":" in target:
        return True
    from focalspec.adapters.registry import get_adapter

    try:
        return "compiled" in get_adapter(target).modes
    except Exception:
        return True


def _prespawns(args: argparse.Namespace) -> bool:
    """Whether this process starts the callable's workers itself (one process, process isolation)."""
    return ":" in args.target and bool(args.framework) and args.isolate == "process" and args.jobs == 1


def _prespawn(args: argparse.Namespace) -> None:
    """Start the callable's workers now, before ``validate`` imports the framework here: the
    workers' imports (and the compiled mode's compiler) overlap this process's.  Only for one
    process (-j 1) and process isolation; anything odd is left to ``validate`` to report."""
    if not _prespawns(args):
        return
    from focalspec.adapters.callable_adapter import callable_name, convention_from_options
    from focalspec.conformance.suite import isolation

    try:
        conv = convention_from_options(args, args.kwarg)
    except Exception:
        return
    from focalspec.conformance.suite.options import compiled_dtypes

    recipe = isolation.Recipe.of_callable(args.target, conv)
    name = callable_name(args.target)
    modes, dtypes = _joined(args.modes), _joined(args.dtypes)
    asked = (tuple(modes.split(",")) if modes else None, tuple(dtypes.split(",")) if dtypes else None)
    compiled = compiled_dtypes(args.depth, *asked) if args.framework != "paddle" else ()
    for tag in dict.fromkeys(isolation.worker_tag("compiled", d) for d in compiled):  # the longest path first
        isolation.prespawn(recipe, name, tag, warm_up=True)
    isolation.prespawn(recipe, name, "eager")


def _summary(tally: _Tally) -> tuple[str, int]:
    """The verdict line's counts in the one tally of the run (``results.TALLY``, SPEC §10.5): the
    words and numbers of pytest's own line; and how many checks ran."""
    from focalspec.conformance.suite.results import TALLY

    c = tally.tally or {}
    if not c:  # no focalspec session (pytest stopped before configuring it): the reports' counts
        c = {k: tally.counts[k] for k in TALLY} | {"not required": tally.counts["unrequired"]}
    parts = [f"{c[k]} {k}" for k in TALLY if c[k] or k in ("passed", "failed", "skipped")]
    if c["error"]:
        parts[-1] = parts[-1].replace("error", "errors" if c["error"] > 1 else "error")
    summary = ", ".join(parts)
    if tally.unrequired:
        summary += " (not required: " + ", ".join(f"{n} {t}" for t, n in sorted(tally.unrequired.items())) + ")"
    if tally.not_applicable:  # checks its declared convention does not offer: said, not hidden among skips
        n = sum(tally.not_applicable.values())
        # what a library lacks (a reduction, alpha) is named; a form it was never meant to take
        # (softmax rows for a sigmoid loss, probabilities for one on logits) is only counted
        gaps = sorted(((k, why) for why, k in tally.not_applicable.items() if "reduction" in why or "alpha" in why),
                      key=lambda kv: -kv[0])  # fmt: skip
        named = ": " + "; ".join(f"{k} as {why}" for k, why in gaps) if gaps else ""
        summary += f"; {n} of the skipped not applicable to its declared convention{named}"
    checked = sum(c[k] for k in ("passed", "failed", "not required", "xfailed", "xpassed", "error"))
    return summary, checked


def _run_pytest(args: argparse.Namespace, opts: list[str], root: Path, pytest: Any) -> int:
    tally = _Tally()
    with tempfile.TemporaryDirectory(prefix="focalspec-check-") as tmp:
        ini = Path(tmp, "pytest.ini")
        ini.write_text("[pytest]\n", encoding="utf-8")
        argv = [
            "--pyargs",
            "focalspec.conformance",
            "-c",
            str(ini),
            "--rootdir",
            str(root),
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",  # its terminal summary imports hypothesis internals: ~0.5 s, unused here
            "-p",
            "no:logging",  # its per-test handler set-up is a third of pytest's overhead here (PROFILE.md)
            "-rfE",
            "-o",
            "junit_family=xunit1",
            "-o",
            "console_output_style=classic",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            "-v" if args.verbose else "-q",
            *opts,
        ]
        if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            argv[:0] = ["-p", "focalspec"]  # the pytest11 entry point, loaded by name
        if args.junitxml:
            argv += ["--junitxml", args.junitxml, "-o", "junit_suite_name=focalspec-conformance"]
        with _without_focal_env():
            code = int(pytest.main(argv, plugins=[tally]))
    summary, checked = _summary(tally)
    if tally.not_run and checked:
        summary += f"; required tiers not run: {', '.join(tally.not_run)}"
        if "compile" in tally.not_run and not _has_compiled_mode(args.target):
            summary += f" ({args.target} has no compiled mode)"
        elif "compile" in tally.not_run and args.depth == "quick":
            summary += " (--depth quick is eager only; --mode eager,compiled adds the compiled checks)"
    if code in (2, 3, 4):
        print(f"focalspec check: error: pytest ended with exit code {code}", file=sys.stderr)
        return 2
    if code == 5 or checked == 0:
        why = tally.skip_reasons.most_common(1)
        hint = f" (every selected check skipped: {why[0][0]})" if why else " (the filters select nothing)"
        print(f"focalspec check: error: no check ran for {args.target}{hint}", file=sys.stderr)
        return 2
    if tally.causes:
        print(f"causes of the failures of {args.target}, worst first (SPEC §10.7, §10.8; the smallest input of each):")
        print("\n".join(tally.cause_lines(args.target)))
    if code == 0:
        print(f"focalspec check: PASS {args.target}: {summary}")
        return 0
    print(f"focalspec check: FAIL {args.target}: {summary}")
    return 1
