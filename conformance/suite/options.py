"""The option contract of the conformance suite: one table, command line and environment alike.

``OPTIONS`` is the one definition of every option -- name, how it reads, default, help, choices,
environment variable -- from which both the pytest options ``--focal-NAME`` (``add_options``)
and ``focalspec check``'s argparse options (``add_gate_arguments``) are generated, and through
which the gate forwards what it was given to the suite (``check.forwarded``).

Every option ``--focal-NAME`` can also be given as the environment variable ``FOCAL_NAME``
(upper case, dashes as underscores); the command line wins.  Lists are comma separated;
``--focal-kwarg`` repeats on the command line and is ``;``-separated in ``FOCAL_KWARG``;
flags read 1/true/yes/on from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from focalspec.adapters.base import DEVICES, DTYPES, MODES
from focalspec.conformance.suite.families import DEPTHS, FAMILIES
from focalspec.conformance.suite.tiers import DEFAULT_REQUIRED, parse_require
from focalspec.spec.tolerance import GRADES
from focalspec.spec.variant import CLIP_SCOPES, SOFT_TARGETS, SpecError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_LIMIT_GIB = 8.0
ISOLATIONS: tuple[str, ...] = ("auto", "process", "thread")

SAME: Any = object()  # Gate.default: the suite's own default (Opt.default)


@dataclass(frozen=True)
class Gate:
    """How ``focalspec check`` spells an option (argparse); ``default`` None where the gate
    leaves an option the suite's default by not forwarding it."""

    group: str  # the help group: convention | selection | isolation | output ("" for the positional)
    help: str
    flags: tuple[str, ...] = ()  # default: --NAME
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    default: Any = SAME
    metavar: str | None = None
    action: str | None = None  # store_true | append


@dataclass(frozen=True)
class Opt:
    """One option of the suite: ``--focal-NAME`` / ``FOCAL_NAME`` for pytest (``pytest``), the
    gate's twin (``gate``), its default and check.  The one definition of both command lines."""

    name: str
    kind: str  # str | list | flag | multi: how the pytest option and its env variable read
    help: str  # the pytest option's help ("" for a gate-only option)
    default: Any = None  # the suite's default (pytest and the environment)
    gate: Gate | None = None  # None: pytest only
    pytest: bool = True  # False: the gate's own (-j, --junitxml, -v, the target)
    callable_only: bool = False  # the gate forwards it only for a callable target
    forward_with: str | None = None  # the gate forwards it only together with this option
    minimum: float | None = None  # a number >= minimum (gate and suite refuse less in one line)

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def flag(self) -> str:
        return f"--focal-{self.name}"


_CONV, _SEL, _ISO, _OUT = "convention", "selection", "isolation", "output"
GROUPS: dict[str, str] = {
    _CONV: "convention of a callable (default: torchvision.ops.sigmoid_focal_loss's)",
    _SEL: "selection",
    _ISO: "isolation (the implementation runs in a worker process the gate kills and replaces)",
    _OUT: "output",
}
GRADE_CHOICES = tuple(GRADES[:-1])
FRAMEWORKS = ("torch", "jax", "tensorflow", "paddle")

OPTIONS: tuple[Opt, ...] = (
    Opt("target", "str", "", pytest=False,
        gate=Gate("", "a built-in adapter name (see 'focalspec adapters') or PKG.MODULE:CALLABLE", flags=("target",))),
    Opt("adapters", "list", "adapters to test, NAME[,NAME] (default: every available built-in and entry-point "
        "adapter; only the callable when --focal-impl is given)"),
    Opt("impl", "str", "a third-party callable PKG.MODULE:CALLABLE with the signature of "
        "torchvision.ops.sigmoid_focal_loss (inputs, targets, alpha, gamma, reduction)"),
    Opt("framework", "str", "framework of --focal-impl: torch | jax | tensorflow", callable_only=True,
        gate=Gate(_CONV, "framework of the callable", choices=FRAMEWORKS)),
    Opt("input", "str", "what --focal-impl takes: logits (default) | probs", "logits", callable_only=True,
        gate=Gate(_CONV, "what it takes (default logits)", choices=("logits", "probs"))),
    Opt("alpha-off", "str", "how --focal-impl disables alpha: none (alpha=None, default) | -1 (alpha=-1) | "
        "flag (a boolean keyword, see --focal-alpha-flag) | never (it always weights by alpha) | "
        "absent (it has no alpha: the unweighted loss)", "none", callable_only=True,
        gate=Gate(_CONV, "how it disables alpha: alpha=None (default), alpha=-1, a boolean flag; never: it always "
                  "weights by alpha and cannot switch it off; absent: it has no alpha at all (the unweighted loss)",
                  choices=("none", "-1", "flag", "never", "absent"))),
    Opt("alpha-flag", "str", "keyword of the alpha on/off flag for --focal-alpha-off flag (default "
        "apply_class_balancing)", "apply_class_balancing", callable_only=True,
        gate=Gate(_CONV, "keyword of the alpha flag")),
    Opt("clip-eps", "str", "--focal-impl declares clipping probabilities to [E, 1-E] (Keras: 1e-7)",
        callable_only=True, gate=Gate(_CONV, "it clips probabilities to [E, 1-E] (declared convention)", type=float)),
    Opt("clip-scope", "str", "where that clip acts: all (everywhere p is used, default) | ce (inside the "
        "cross-entropy only, (1-p_t)^gamma takes the unclipped p: Keras' binary loss)", "all", callable_only=True,
        forward_with="clip-eps",
        gate=Gate(_CONV, "where that clip acts: everywhere p is used (default) or inside the cross-entropy only, "
                  "(1-p_t)^gamma taking the unclipped p (Keras' binary loss)", choices=CLIP_SCOPES)),
    Opt("softmax", "flag", "--focal-impl is a softmax focal loss over the last axis with class-index targets",
        callable_only=True,
        gate=Gate(_CONV, "a softmax loss over the last axis, class indices", action="store_true", default=False)),
    Opt("soft-target", "str", f"soft-target form --focal-impl declares: {' | '.join(SOFT_TARGETS)} "
        "(default canonical)", "canonical", callable_only=True,
        gate=Gate(_CONV, "its soft-target form (default canonical)", choices=SOFT_TARGETS)),
    Opt("normalized", "str", "the reduction argument value with which --focal-impl computes "
        "sum / max(1, #positives)", callable_only=True,
        gate=Gate(_CONV, "reduction value meaning sum / max(1, #positives)", metavar="NAME")),
    Opt("targets-first", "flag", "--focal-impl takes (targets, inputs) instead of (inputs, targets)",
        callable_only=True, gate=Gate(_CONV, "it takes (targets, inputs)", action="store_true", default=False)),
    Opt("reductions", "str", "the reductions --focal-impl offers, among none,mean,sum,normalized (default: "
        "none,mean,sum and --focal-normalized's where it has a 'reduction' argument); checks of the others are "
        "not applicable", callable_only=True,
        gate=Gate(_CONV, "the reductions it offers, among none,mean,sum,normalized (default: none,mean,sum and "
                  "--normalized's where it has a 'reduction' argument, none where not); checks of the others are "
                  "not applicable, not faults", metavar="R,...")),
    Opt("kwarg", "multi", "extra keyword argument k=v for --focal-impl (repeatable; v a Python literal or a "
        "string)", callable_only=True,
        gate=Gate(_CONV, "extra keyword argument (repeat)", action="append", default=[], metavar="K=V")),
    Opt("grade", "str", f"required grade, one of {', '.join(GRADE_CHOICES)} (default: accurate for focalspec's "
        "own adapters, acceptable for shipped implementations and --focal-impl)",
        gate=Gate(_SEL, "required grade (default: acceptable; accurate for focalspec's own adapters)",
                  choices=GRADE_CHOICES)),
    Opt("depth", "str", f"size of the generated families: {' | '.join(DEPTHS)} (default: default)", "default",
        gate=Gate(_SEL, "size of the families (quick: eager mode only unless --mode names compiled)",
                  choices=DEPTHS)),
    Opt("families", "list", f"families to run, subset of {','.join(FAMILIES)} (default: all)",
        gate=Gate(_SEL, "comma-separated subset of golden,random,invariant,edge,shape")),
    Opt("dtypes", "list", f"dtypes, subset of {','.join(DTYPES)} (default: those each adapter claims)",
        gate=Gate(_SEL, f"dtype(s) to check, comma-separated or repeated ({', '.join(DTYPES)})",
                  flags=("--dtype", "--dtypes"), action="append", default=[], metavar="D")),
    Opt("devices", "list", f"devices, subset of {','.join(DEVICES)} (default: those each adapter reports)",
        gate=Gate(_SEL, "", flags=("--device", "--devices"), action="append", default=[], metavar="D")),
    Opt("modes", "list", f"modes, subset of {','.join(MODES)} (default: those each adapter claims)",
        gate=Gate(_SEL, "", flags=("--mode", "--modes"), action="append", default=[], metavar="M")),
    Opt("case", "list", "only cases whose id matches one of these fnmatch patterns",
        gate=Gate(_SEL, "case id or pattern (repeat)", action="append", default=[], metavar="ID")),
    Opt("seed", "str", "offset of the seeds of the random and invariant batches (default 0)", 0,
        gate=Gate(_SEL, "seed offset of the generated batches", type=int)),
    Opt("point", "str", "grade one sigmoid element X:T instead of the families (e.g. 16.640625:1; a negative X in "
        "one word: --focal-point=-2.25:0)",
        gate=Gate(_SEL, "grade one sigmoid element (input X, target T) instead of the families, e.g. 16.640625:1 "
                  "(a finding's reproducer)", metavar="X:T")),
    Opt("variant", "str", "the variant of --focal-point as K=V,... (e.g. gamma=2.0,alpha=none)",
        gate=Gate(_SEL, "variant of --point, e.g. gamma=2.0,alpha=none (default gamma=2.0,alpha=0.25)",
                  metavar="K=V,...")),
    Opt("timeout", "str", f"seconds one call of an implementation may take (default {DEFAULT_TIMEOUT_S:g}; 0 = "
        "none); a call past it fails its check and the suite goes on", DEFAULT_TIMEOUT_S, minimum=0,
        gate=Gate(_SEL, "seconds one call may take (default 120; 0 = no limit)", type=float, default=None)),
    Opt("isolate", "str", "where the implementation runs: process (a worker killed and replaced when it crashes, "
        "hangs or exceeds the memory limit) | thread (in this process; a crash ends the run) | auto (default: "
        "process for --focal-impl callables, thread for built-in adapters)", "auto",
        gate=Gate(_ISO, "process (default): a crash, hang or memory blow-up fails that check only; thread: in the "
                  "gate's own process (no start-up cost, a crash ends the run)", choices=("process", "thread"),
                  default="process")),
    Opt("memory-limit", "str", f"GiB of resident memory a worker process may use (default "
        f"{DEFAULT_MEMORY_LIMIT_GIB:g}; 0 = none; process isolation only)", DEFAULT_MEMORY_LIMIT_GIB, minimum=0,
        gate=Gate(_ISO, "resident memory of the worker (default 8)", type=float, default=None, metavar="GIB")),
    Opt("hang-budget", "str", "hung calls of one implementation, dtype and mode before its other checks are not "
        "run (default 3; 0 = no limit)", 3, minimum=0,
        gate=Gate(_ISO, "hangs per dtype and mode before the rest is not run (default 3; 0 = no limit)", type=int,
                  default=None, metavar="N")),
    Opt("crash-budget", "str", "crashed calls of one implementation, dtype and mode before its other checks are "
        "not run (default 10; 0 = no limit)", 10, minimum=0,
        gate=Gate(_ISO, "crashes per dtype and mode before the rest is not run (default 10; 0 = no limit)",
                  type=int, default=None, metavar="N")),
    Opt("budget", "str", "wall-clock seconds for the whole run: checks after it are failed as not run (default 0 "
        "= none)", 0.0, minimum=0,
        gate=Gate(_ISO, "wall-clock seconds for the whole run (default none)", type=float, default=None,
                  metavar="S")),
    Opt("xfails", "str", "file of expected failures: test ids or patterns (* and ?; brackets literal), # comments",
        gate=Gate(_SEL, "expected failures (ids or patterns, # comments)", metavar="FILE")),
    Opt("skips", "str", "file of tests to skip, same format as --focal-xfails",
        gate=Gate(_SEL, "tests to skip (same format)", metavar="FILE")),
    Opt("require", "str", "required tiers, subset of finite,saturation,extended,compile (default "
        "finite,saturation,compile): a failure in another tier is reported as xfailed, not failed (SPEC.md §10.5)",
        ",".join(DEFAULT_REQUIRED),
        gate=Gate(_SEL, "required tiers, comma-separated among finite,saturation,extended,compile (default "
                  "finite,saturation,compile; a failure in another tier is reported, not failing)", metavar="TIERS")),
    Opt("jobs", "str", "", 1, pytest=False, minimum=1,
        gate=Gate(_SEL, "worker processes (pytest-xdist; default 1)", flags=("-j", "--jobs"), type=int, metavar="N")),
    Opt("json", "str", "write the results JSON (schema focalspec-results v1) to this path",
        gate=Gate(_OUT, "write the results JSON here", metavar="PATH")),
    Opt("junitxml", "str", "", pytest=False, gate=Gate(_OUT, "write JUnit XML here", metavar="PATH")),
    Opt("verbose", "flag", "", pytest=False,
        gate=Gate(_OUT, "one line per test", flags=("-v", "--verbose"), action="store_true", default=False)),
)  # fmt: skip
BY_NAME: dict[str, Opt] = {o.name: o for o in OPTIONS}


def add_gate_arguments(parser: Any) -> None:
    """``focalspec check``'s argparse options, from ``OPTIONS`` (its groups in GROUPS' order)."""
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for o in OPTIONS:
        g = o.gate
        if g is None:
            continue
        if not g.group:
            parser.add_argument(o.name, help=g.help)
            continue
        kw: dict[str, Any] = {"dest": o.dest, "default": o.default if g.default is SAME else g.default}
        if g.help:
            kw["help"] = g.help
        for key in ("type", "choices", "metavar", "action"):
            if getattr(g, key) is not None:
                kw[key] = getattr(g, key)
        groups[g.group].add_argument(*(g.flags or (f"--{o.name}",)), **kw)


def env_name(name: str) -> str:
    return "FOCAL_" + name.upper().replace("-", "_")


def add_options(parser: Any) -> None:
    """The pytest options ``--focal-NAME``, from ``OPTIONS``."""
    group = parser.getgroup("focalspec", "focalspec conformance suite (each option also reads FOCAL_<NAME>)")
    for o in OPTIONS:
        if not o.pytest:
            continue
        name, kind, help_text = o.name, o.kind, o.help
        dest = "focal_" + o.dest
        helptext = f"{help_text} [env {env_name(name)}]"
        if kind == "flag":
            group.addoption(o.flag, action="store_true", default=None, dest=dest, help=helptext)
        elif kind == "multi":
            group.addoption(o.flag, action="append", default=None, dest=dest, metavar="K=V", help=helptext)
        else:
            group.addoption(
                o.flag, action="store", default=None, dest=dest, metavar=name.upper(), help=helptext
            )


def _raw(config: Any, name: str, kind: str) -> Any:
    value = config.getoption("focal_" + name.replace("-", "_"), default=None)
    if value not in (None, [], ""):
        return value
    env = os.environ.get(env_name(name))
    if env is None or env == "":
        return None
    if kind == "flag":
        return env.strip().lower() in ("1", "true", "yes", "on")
    if kind == "multi":
        return [p for p in env.split(";") if p.strip()]
    return env


def _list(value: Any, name: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(p.strip() for p in str(value).split(",") if p.strip())
    if allowed is not None:
        bad = [i for i in items if i not in allowed]
        if bad:
            raise SpecError(f"--focal-{name}: unknown {', '.join(bad)}; expected among {', '.join(allowed)}")
    return items


@dataclass(frozen=True)
class Options:
    """The parsed option contract (``None`` = not given)."""

    adapters: tuple[str, ...] | None
    dtypes: tuple[str, ...] | None
    devices: tuple[str, ...] | None
    modes: tuple[str, ...] | None
    impl: str | None
    framework: str | None
    input: str
    alpha_off: str
    alpha_flag: str
    clip_eps: float | None
    clip_scope: str
    softmax: bool
    soft_target: str
    normalized: str | None
    targets_first: bool
    kwargs: tuple[str, ...]
    grade: str | None
    depth: str
    families: tuple[str, ...]
    cases: tuple[str, ...] | None
    seed: int
    json: str | None
    xfails: str | None
    skips: str | None
    timeout: float
    require: tuple[str, ...] = ()
    isolate: str = "auto"
    memory_limit_gib: float = DEFAULT_MEMORY_LIMIT_GIB
    hang_budget: int = 3
    crash_budget: int = 10
    budget_s: float = 0.0
    point: str | None = None
    variant: str | None = None
    reductions: str | None = None

    @classmethod
    def from_config(cls, config: Any) -> Options:
        def get(name: str) -> Any:
            """The value given (command line, then FOCAL_NAME), else the option's default."""
            value = _raw(config, name, BY_NAME[name].kind)
            return BY_NAME[name].default if value is None else value

        grade = get("grade")
        if grade is not None and grade not in GRADES[:-1]:
            raise SpecError(f"--focal-grade: unknown grade {grade!r}; expected one of {', '.join(GRADES[:-1])}")
        depth = get("depth")
        if depth not in DEPTHS:
            raise SpecError(f"--focal-depth: unknown depth {depth!r}; expected one of {', '.join(DEPTHS)}")
        clip = get("clip-eps")
        try:
            clip_eps = float(clip) if clip is not None else None
            seed = int(get("seed"))
            timeout = float(get("timeout"))
        except ValueError as exc:
            raise SpecError(f"focalspec option: {exc}") from None
        if timeout < 0:
            raise SpecError("--focal-timeout must be >= 0")
        isolate = get("isolate")
        if isolate not in ISOLATIONS:
            raise SpecError(f"--focal-isolate: unknown {isolate!r}; expected one of {', '.join(ISOLATIONS)}")
        memory = _number(get("memory-limit"), "memory-limit")
        hang_budget = int(_number(get("hang-budget"), "hang-budget", integer=True))
        crash_budget = int(_number(get("crash-budget"), "crash-budget", integer=True))
        budget_s = _number(get("budget"), "budget")
        if get("variant") and not get("point"):
            raise SpecError("--focal-variant names the variant of --focal-point; give --focal-point X:T too")
        impl = get("impl")
        framework = get("framework")
        if impl and not framework:
            raise SpecError("--focal-impl needs --focal-framework torch|jax|tensorflow")
        return cls(
            adapters=_list(get("adapters"), "adapters"),
            dtypes=_list(get("dtypes"), "dtypes", DTYPES),
            devices=_list(get("devices"), "devices", DEVICES),
            modes=_list(get("modes"), "modes", MODES),
            impl=impl,
            framework=framework,
            input=get("input"),
            alpha_off=get("alpha-off"),
            alpha_flag=get("alpha-flag"),
            clip_eps=clip_eps,
            clip_scope=get("clip-scope"),
            softmax=bool(get("softmax")),
            soft_target=get("soft-target"),
            normalized=get("normalized"),
            targets_first=bool(get("targets-first")),
            kwargs=tuple(get("kwarg") or ()),
            grade=grade,
            depth=depth,
            families=_list(get("families"), "families", FAMILIES) or FAMILIES,
            cases=_list(get("case"), "case"),
            seed=seed,
            json=get("json"),
            xfails=get("xfails"),
            skips=get("skips"),
            timeout=timeout,
            require=parse_require(get("require")),
            isolate=isolate,
            memory_limit_gib=memory,
            hang_budget=hang_budget,
            crash_budget=crash_budget,
            budget_s=budget_s,
            point=get("point"),
            variant=get("variant"),
            reductions=get("reductions"),
        )


def _number(value: Any, name: str, integer: bool = False) -> float:
    """A non-negative number option; SpecError naming the option otherwise."""
    try:
        out = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number"
        raise SpecError(f"--focal-{name} must be {kind} >= 0, got {value!r}") from None
    if out < 0:
        raise SpecError(f"--focal-{name} must be >= 0, got {value!r}")
    return out


def compiled_runs(depth: str, modes: tuple[str, ...] | None, dtypes: tuple[str, ...] | None) -> bool:
    """Whether a run of these options runs the compiled mode at all: --depth quick only when
    asked (--mode compiled, or named dtypes), for a process's first compile costs more than the
    rest of a quick run (runner.QUICK_EAGER_REASON)."""
    if modes:
        return "compiled" in modes
    return depth != "quick" or bool(dtypes)


# A compilation costs seconds (torch.compile ~0.6 s a case and dtype after ~2 s of compiler start-up
# on 2 cores, benchmarks/PROFILE.md): --depth quick with the compiled mode asked for compiles in
# one dtype unless the dtypes are named; default and deep compile in every dtype.
QUICK_COMPILED_DTYPE = "float32"


def compiled_dtypes(
    depth: str, modes: tuple[str, ...] | None, dtypes: tuple[str, ...] | None, claimed: tuple[str, ...] = DTYPES
) -> tuple[str, ...]:
    """The dtypes a run compiles in, of those an adapter claims: none where the compiled mode
    does not run (``compiled_runs``), float32 alone at --depth quick unless dtypes are named."""
    if not compiled_runs(depth, modes, dtypes):
        return ()
    wanted = dtypes or ((QUICK_COMPILED_DTYPE,) if depth == "quick" else DTYPES)
    return tuple(d for d in DTYPES if d in wanted and d in claimed)

