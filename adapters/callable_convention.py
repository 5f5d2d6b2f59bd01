"""How a user's callable is called and what it claims to compute: the ``Convention`` a
``focalspec check`` command line (or the plugin's options) declares, and the checks of a
request that fail before any test runs (``SpecError``, one line): the module cannot be
imported, the object is not callable, the signature lacks ``alpha``/``gamma`` or a declared
keyword, a declared reduction it cannot choose."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from focalspec.adapters.backends import first_line
from focalspec.spec.variant import CLIP_SCOPES, SOFT_TARGETS, SpecError

FRAMEWORKS: tuple[str, ...] = ("torch", "jax", "tensorflow", "paddle")
ALPHA_OFF: tuple[str, ...] = ("none", "-1", "flag", "never", "absent")
INPUTS: tuple[str, ...] = ("logits", "probs")
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum", "normalized")


@dataclass(frozen=True)
class Convention:
    """How the callable is called and what it claims to compute.

    alpha_off: how "alpha disabled" is passed -- ``none`` (alpha=None), ``-1`` (alpha=-1, the
    torchvision/fvcore convention), ``flag`` (a boolean keyword ``alpha_flag``, Keras'
    ``apply_class_balancing``; alpha passed only with the flag on), ``never`` (the callable
    always weights by alpha and cannot switch it off: variants without alpha are not applicable)
    or ``absent`` (the callable has no alpha at all and computes the unweighted loss: variants
    with alpha are not applicable, and no alpha is passed).
    normalized: the value of the ``reduction`` argument that means sum / max(1, #positives);
    None when the callable has no such reduction (those cases are skipped).
    reductions: the reductions the callable offers (None: none, mean, sum and, with
    ``normalized``, normalized where it has a ``reduction`` argument; none where it has not);
    the others are not applicable.  A callable without a ``reduction`` argument that declares one
    reduction always returns that one.
    """

    framework: str
    input_kind: str = "logits"
    alpha_off: str = "none"
    alpha_flag: str = "apply_class_balancing"
    clip_eps: float | None = None
    clip_scope: str = "all"
    softmax: bool = False
    soft_target: str = "canonical"
    normalized: str | None = None
    targets_first: bool = False
    kwargs: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    reductions: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _choice("--framework", self.framework, FRAMEWORKS)
        _choice("--input", self.input_kind, INPUTS)
        _choice("--alpha-off", self.alpha_off, ALPHA_OFF)
        _choice("--soft-target", self.soft_target, SOFT_TARGETS)
        if self.clip_eps is not None and not 0 < self.clip_eps < 0.5:
            raise SpecError(f"--clip-eps must be in (0, 0.5), got {self.clip_eps!r}")
        _choice("--clip-scope", self.clip_scope, CLIP_SCOPES)
        if self.clip_scope != "all" and (self.clip_eps is None or self.softmax):
            raise SpecError(f"--clip-scope {self.clip_scope} needs --clip-eps and a sigmoid loss")
        if self.softmax and self.soft_target != "canonical":
            raise SpecError("--soft-target applies to sigmoid losses only, not with --softmax")
        if self.softmax and self.normalized:
            raise SpecError("the normalized reduction is defined for sigmoid losses only, not with --softmax")
        if self.soft_target != "canonical" and (self.input_kind != "logits" or self.clip_eps is not None):
            raise SpecError("--soft-target other than canonical is defined for logits without clipping only")
        if self.reductions is not None:
            bad = [r for r in self.reductions if r not in REDUCTIONS]
            if bad or not self.reductions:
                raise SpecError(
                    f"--reductions: unknown {', '.join(bad) or '(empty)'}; expected among {', '.join(REDUCTIONS)}"
                )
            if self.softmax and "normalized" in self.reductions:
                raise SpecError("the normalized reduction is defined for sigmoid losses only, not with --softmax")
        if self.alpha_off == "absent" and self.alpha_flag != "apply_class_balancing":
            raise SpecError("--alpha-flag names the flag of --alpha-off flag, not of --alpha-off absent")

    def cli_args(self) -> list[str]:
        """The ``focalspec check`` options that declare this convention (for reproducers)."""
        out = ["--framework", self.framework]
        if self.input_kind != "logits":
            out += ["--input", self.input_kind]
        if self.alpha_off != "none":
            out += ["--alpha-off", self.alpha_off]
        if self.alpha_off == "flag" and self.alpha_flag != "apply_class_balancing":
            out += ["--alpha-flag", self.alpha_flag]
        if self.clip_eps is not None:
            out += ["--clip-eps", repr(self.clip_eps)]
        if self.clip_scope != "all":
            out += ["--clip-scope", self.clip_scope]
        if self.softmax:
            out.append("--softmax")
        if self.soft_target != "canonical":
            out += ["--soft-target", self.soft_target]
        if self.normalized:
            out += ["--normalized", self.normalized]
        if self.targets_first:
            out.append("--targets-first")
        if self.reductions is not None:
            out += ["--reductions", ",".join(self.reductions)]
        for k, v in self.kwargs:
            out += ["--kwarg", f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"]
        return out

    def describe(self) -> str:
        parts = [
            "softmax class indices" if self.softmax else "sigmoid",
            self.input_kind,
            f"alpha off: {self.alpha_off}",
        ]
        if self.clip_eps is not None:
            parts.append(f"clip {self.clip_eps:g}" + (" in the cross-entropy only" if self.clip_scope == "ce" else ""))
        if not self.softmax:
            parts.append(f"soft targets: {self.soft_target}")
        if self.normalized:
            parts.append(f"normalized = reduction={self.normalized!r}")
        if self.reductions is not None:
            parts.append(f"reductions {','.join(self.reductions)}")
        return ", ".join(parts)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{name}: unknown value {value!r}; expected one of {', '.join(choices)}")


def convention_from_options(opts: Any, kwarg_items: list[str] | tuple[str, ...]) -> Convention:
    """The convention from parsed options: ``focalspec check``'s argparse namespace and the
    plugin's FocalOptions name these fields alike (only the k=v list differs in name)."""
    return Convention(
        framework=opts.framework or "",
        input_kind=opts.input,
        alpha_off=opts.alpha_off,
        alpha_flag=opts.alpha_flag,
        clip_eps=opts.clip_eps,
        clip_scope=opts.clip_scope,
        softmax=opts.softmax,
        soft_target=opts.soft_target,
        normalized=opts.normalized,
        targets_first=opts.targets_first,
        kwargs=parse_kwargs(kwarg_items),
        reductions=parse_reductions(getattr(opts, "reductions", None)),
    )


def parse_reductions(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    """``none,mean`` -> ("none", "mean"); None: not declared (the signature decides)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    return tuple(dict.fromkeys(r.strip() for r in items if r.strip()))


def parse_kwargs(items: list[str] | tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """``k=v`` strings -> pairs; v is a Python literal when it parses as one, else the string."""
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise SpecError(f"--kwarg expects NAME=VALUE, got {item!r}")
        try:
            value: Any = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out.append((key, value))
    return tuple(out)


def callable_name(spec: str) -> str:
    """The adapter name of ``PKG.MODULE:CALLABLE`` (the gate's workers are named before it exists)."""
    return spec.replace(":", ".")


def load_callable(spec: str) -> Callable[..., Any]:
    """Import ``PKG.MODULE:CALLABLE`` (attribute paths with dots allowed); SpecError otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SpecError(f"implementation must be given as PKG.MODULE:CALLABLE, got {spec!r}")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises while importing
        raise SpecError(f"cannot import {module_name}: {type(exc).__name__}: {_one_line(exc)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{spec} is not callable (it is a {type(obj).__name__})")
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CallShape:
    """What the signature accepts: whether ``reduction`` and each keyword can be passed."""

    has_reduction: bool
    var_keyword: bool


def check_signature(fn: Callable[..., Any], spec: str, conv: Convention) -> CallShape:
    """The callable must take two positional tensors and ``alpha``/``gamma`` keywords."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust the declaration
        return CallShape(has_reduction=True, var_keyword=True)
    params = sig.parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    keywords = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if len(positional) < 2 and not var_pos:
        raise SpecError(f"{spec}{sig} does not take (inputs, targets) as its first two positional arguments")
    needed = (["gamma"] if conv.alpha_off == "absent" else ["alpha", "gamma"]) + (
        [conv.alpha_flag] if conv.alpha_off == "flag" else []
    )
    needed += [k for k, _ in conv.kwargs]
    missing = [k for k in needed if k not in keywords and not var_kw]
    if missing:
        hint = " (a loss without alpha: --alpha-off absent)" if missing == ["alpha"] else ""
        raise SpecError(f"{spec}{sig} has no keyword argument {', '.join(repr(m) for m in missing)}{hint}")
    required = [
        p.name
        for p in list(params)[2:]
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in needed
        and p.name != "reduction"
    ]
    if required:
        raise SpecError(f"{spec}{sig} requires argument(s) {', '.join(required)} that the suite cannot supply")
    has_reduction = "reduction" in keywords or var_kw
    if conv.normalized and not has_reduction:
        raise SpecError(f"--normalized {conv.normalized!r} given but {spec}{sig} has no 'reduction' argument")
    offered = conv.reductions or ()
    if not has_reduction and len(offered) > 1:
        raise SpecError(
            f"--reductions {','.join(offered)}: {spec}{sig} has no 'reduction' argument to choose one "
            "(declare the one it returns)"
        )
    if has_reduction and "normalized" in offered and not conv.normalized:
        raise SpecError("--reductions normalized: give --normalized NAME, the reduction argument's value for it")
    return CallShape(has_reduction=has_reduction, var_keyword=var_kw)


_one_line = first_line
