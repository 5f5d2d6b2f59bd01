"""The option contract of the conformance suite: one table, command line and environment alike.

Every option ``--focal-NAME`` can also be given as the environment variable ``FOCAL_NAME``
(upper case, dashes as underscores); the command line wins.  Lists are comma separated;
``--focal-kwarg`` repeats on the command line and is ``;``-separated in ``FOCAL_KWARG``;
flags read 1/true/yes/on from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from focalspec.adapters.base import DEVICES, DTYPES, MODES
from focalspec.conformance.suite.families import DEPTHS, FAMILIES
from focalspec.conformance.suite.tiers import parse_require
from focalspec.spec.tolerance import GRADES
from focalspec.spec.variant import SOFT_TARGETS, SpecError

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_LIMIT_GIB = 8.0
ISOLATIONS: tuple[str, ...] = ("auto", "process", "thread")

# (name, kind, help); kind: "str" | "list" | "flag" | "multi"
OPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "adapters",
        "list",
        "adapters to test, NAME[,NAME] (default: every available built-in and entry-point adapter; "
        "only the callable when --focal-impl is given)",
    ),
    ("dtypes", "list", f"dtypes, subset of {','.join(DTYPES)} (default: those each adapter claims)"),
    ("devices", "list", f"devices, subset of {','.join(DEVICES)} (default: those each adapter reports)"),
    ("modes", "list", f"modes, subset of {','.join(MODES)} (default: those each adapter claims)"),
    (
        "impl",
        "str",
        "a third-party callable PKG.MODULE:CALLABLE with the signature of "
        "torchvision.ops.sigmoid_focal_loss (inputs, targets, alpha, gamma, reduction)",
    ),
    ("framework", "str", "framework of --focal-impl: torch | jax | tensorflow"),
    ("input", "str", "what --focal-impl takes: logits (default) | probs"),
    (
        "alpha-off",
        "str",
        "how --focal-impl disables alpha: none (alpha=None, default) | -1 (alpha=-1) | "
        "flag (a boolean keyword, see --focal-alpha-flag) | never (it always weights by alpha) | "
        "absent (it has no alpha: the unweighted loss)",
    ),
    (
        "alpha-flag",
        "str",
        "keyword of the alpha on/off flag for --focal-alpha-off flag (default apply_class_balancing)",
    ),
    ("clip-eps", "str", "--focal-impl declares clipping probabilities to [E, 1-E] (Keras: 1e-7)"),
    (
        "clip-scope",
        "str",
        "where that clip acts: all (everywhere p is used, default) | ce (inside the cross-entropy only, "
        "(1-p_t)^gamma takes the unclipped p: Keras' binary loss)",
    ),
    ("softmax", "flag", "--focal-impl is a softmax focal loss over the last axis with class-index targets"),
    ("soft-target", "str", f"soft-target form --focal-impl declares: {' | '.join(SOFT_TARGETS)} (default canonical)"),
    ("normalized", "str", "the reduction argument value with which --focal-impl computes sum / max(1, #positives)"),
    ("targets-first", "flag", "--focal-impl takes (targets, inputs) instead of (inputs, targets)"),
    (
        "reductions",
        "str",
        "the reductions --focal-impl offers, among none,mean,sum,normalized (default: none,mean,sum and "
        "--focal-normalized's where it has a 'reduction' argument); checks of the others are not applicable",
    ),
    ("kwarg", "multi", "extra keyword argument k=v for --focal-impl (repeatable; v a Python literal or a string)"),
    (
        "grade",
        "str",
        f"required grade, one of {', '.join(GRADES[:-1])} (default: accurate for focalspec's own "
        "adapters, acceptable for shipped implementations and --focal-impl)",
    ),
    ("depth", "str", f"size of the generated families: {' | '.join(DEPTHS)} (default: default)"),
    ("families", "list", f"families to run, subset of {','.join(FAMILIES)} (default: all)"),
    ("case", "list", "only cases whose id matches one of these fnmatch patterns"),
    (
        "point",
        "str",
        "grade one sigmoid element X:T instead of the families (e.g. 16.640625:1; a negative X in one word: "
        "--focal-point=-2.25:0)",
    ),
    ("variant", "str", "the variant of --focal-point as K=V,... (e.g. gamma=2.0,alpha=none)"),
    ("seed", "str", "offset of the seeds of the random and invariant batches (default 0)"),
    (
        "require",
        "str",
        "required tiers, subset of finite,saturation,extended,compile (default finite,saturation,compile): "
        "a failure in another tier is reported as xfailed, not failed (SPEC.md §10.5)",
    ),
    ("json", "str", "write the results JSON (schema focalspec-results v1) to this path"),
    ("xfails", "str", "file of expected failures: test ids or patterns (* and ?; brackets literal), # comments"),
    ("skips", "str", "file of tests to skip, same format as --focal-xfails"),
    (
        "timeout",
        "str",
        f"seconds one call of an implementation may take (default {DEFAULT_TIMEOUT_S:g}; 0 = none); "
        "a call past it fails its check and the suite goes on",
    ),
    (
        "isolate",
        "str",
        "where the implementation runs: process (a worker killed and replaced when it crashes, hangs or "
        "exceeds the memory limit) | thread (in this process; a crash ends the run) | auto (default: process "
        "for --focal-impl callables, thread for built-in adapters)",
    ),
    (
        "memory-limit",
        "str",
        f"GiB of resident memory a worker process may use (default {DEFAULT_MEMORY_LIMIT_GIB:g}; 0 = none; "
        "process isolation only)",
    ),
    (
        "hang-budget",
        "str",
        "hung calls of one implementation, dtype and mode before its other checks are not run "
        "(default 3; 0 = no limit)",
    ),
    (
        "crash-budget",
        "str",
        "crashed calls of one implementation, dtype and mode before its other checks are not run "
        "(default 10; 0 = no limit)",
    ),
    ("budget", "str", "wall-clock seconds for the whole run: checks after it are failed as not run (default 0 = none)"),
)


def env_name(name: str) -> str:
    return "FOCAL_" + name.upper().replace("-", "_")


def add_options(parser: Any) -> None:
    group = parser.getgroup("focalspec", "focalspec conformance suite (each option also reads FOCAL_<NAME>)")
    for name, kind, help_text in OPTIONS:
        dest = "focal_" + name.replace("-", "_")
        helptext = f"{help_text} [env {env_name(name)}]"
        if kind == "flag":
            group.addoption(f"--focal-{name}", action="store_true", default=None, dest=dest, help=helptext)
        elif kind == "multi":
            group.addoption(f"--focal-{name}", action="append", default=None, dest=dest, metavar="K=V", help=helptext)
        else:
            group.addoption(
                f"--focal-{name}", action="store", default=None, dest=dest, metavar=name.upper(), help=helptext
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
            kind = next(k for n, k, _ in OPTIONS if n == name)
            return _raw(config, name, kind)

        grade = get("grade")
        if grade is not None and grade not in GRADES[:-1]:
            raise SpecError(f"--focal-grade: unknown grade {grade!r}; expected one of {', '.join(GRADES[:-1])}")
        depth = get("depth") or "default"
        if depth not in DEPTHS:
            raise SpecError(f"--focal-depth: unknown depth {depth!r}; expected one of {', '.join(DEPTHS)}")
        clip = get("clip-eps")
        try:
            clip_eps = float(clip) if clip is not None else None
            seed = int(get("seed") or 0)
            timeout = float(get("timeout")) if get("timeout") is not None else DEFAULT_TIMEOUT_S
        except ValueError as exc:
            raise SpecError(f"focalspec option: {exc}") from None
        if timeout < 0:
            raise SpecError("--focal-timeout must be >= 0")
        isolate = get("isolate") or "auto"
        if isolate not in ISOLATIONS:
            raise SpecError(f"--focal-isolate: unknown {isolate!r}; expected one of {', '.join(ISOLATIONS)}")
        memory = _number(get("memory-limit"), "memory-limit", DEFAULT_MEMORY_LIMIT_GIB)
        hang_budget = int(_number(get("hang-budget"), "hang-budget", 3, integer=True))
        crash_budget = int(_number(get("crash-budget"), "crash-budget", 10, integer=True))
        budget_s = _number(get("budget"), "budget", 0.0)
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
            input=get("input") or "logits",
            alpha_off=get("alpha-off") or "none",
            alpha_flag=get("alpha-flag") or "apply_class_balancing",
            clip_eps=clip_eps,
            clip_scope=get("clip-scope") or "all",
            softmax=bool(get("softmax")),
            soft_target=get("soft-target") or "canonical",
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


def _number(value: Any, name: str, default: float, integer: bool = False) -> float:
    """A non-negative number option; SpecError naming the option otherwise."""
    if value is None:
        return default
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

