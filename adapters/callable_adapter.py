"""An adapter around a user's own focal-loss callable: the CI gate for third-party code.

The callable is named ``PKG.MODULE:CALLABLE`` and, by default, has the signature of
``torchvision.ops.sigmoid_focal_loss``: ``fn(inputs, targets, alpha=..., gamma=..., reduction=...)``
taking and returning the framework's tensors.  A ``Convention`` declares what differs
(probabilities instead of logits, how alpha is switched off, a clip epsilon, softmax with
class indices, the soft-target form, which reduction argument means "normalized", the
argument order, extra keyword arguments); the suite then checks the callable against the
variant it declares (``declared_variant``), never against one it does not claim.

Everything wrong with the *request* (module not importable, not callable, a signature
without ``alpha``/``gamma``, framework missing) is a ``SpecError`` with one line, raised
before any test runs.  Everything wrong with the *callable's behaviour* (it raises, returns
something that is not a tensor, the wrong dtype or shape, a loss that does not depend
differentiably on the inputs) is an ``AdapterError`` at run time: that check fails, the
suite goes on.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from focalspec.adapters.base import DTYPES, Adapter, AdapterError, Output, cache_folder
from focalspec.adapters.tf_adapters import tf_exact  # TF tensors converted in numpy: TF's cast flushes subnormals
from focalspec.reference.rounding import round_mpf
from focalspec.spec.variant import CLIP_SCOPES, SOFT_TARGETS, SpecError, Variant

FRAMEWORKS: tuple[str, ...] = ("torch", "jax", "tensorflow", "paddle")
ALPHA_OFF: tuple[str, ...] = ("none", "-1", "flag", "never", "absent")
INPUTS: tuple[str, ...] = ("logits", "probs")
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum", "normalized")
# the skip reason of a check the callable's declared convention does not offer (no alpha, a
# reduction it lacks, probabilities instead of logits ...): not a fault, not applicable to it
NOT_APPLICABLE = "not applicable: "
_IMPORT_NAME = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow", "paddle": "paddle"}


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


@dataclass(frozen=True)
class WorkerFacts:
    """What the suite's own process needs to know of a callable that only its worker imports
    (``CallableAdapter.worker_facts``): the suite then never imports the framework or the user's
    module itself -- ~0.8 s of a 2-core gate run, and a crash at import is the worker's."""

    call_shape: CallShape
    unavailable: str | None
    framework_version: str | None
    devices: tuple[str, ...]
    misuse: str | None = None  # the first call shows the request is wrong (``first_call_problem``)


class CallableAdapter(Adapter):
    """Runs a user's callable through its framework's autodiff (see module docstring).  Given
    ``facts`` (from the worker that runs it), it is a description only: nothing is imported."""

    dtypes = DTYPES
    modes = ("eager", "compiled")

    def __init__(self, spec: str, convention: Convention, facts: WorkerFacts | None = None) -> None:
        self.spec = spec
        self.conv = convention
        self.clip_scopes = (convention.clip_scope,)
        self._facts = facts
        self._fn: Callable[..., Any] | None = None
        if facts is None:
            self._fn = load_callable(spec)
            self.call_shape = check_signature(self._fn, spec, convention)
        else:
            self.call_shape = facts.call_shape
        self.name = callable_name(spec)
        self.implementation = spec
        self.framework = convention.framework
        self.convention = convention.describe()
        self._backend: _Backend | None = None

    @property
    def fn(self) -> Callable[..., Any]:
        if self._fn is None:
            self._fn = load_callable(self.spec)
        return self._fn

    def worker_facts(self) -> WorkerFacts:
        """This adapter's facts, for a suite process that does not import the callable."""
        reason = self.unavailable_reason()
        return WorkerFacts(
            self.call_shape,
            reason,
            None if reason else self.framework_version(),
            () if reason else self.devices(),
            None if reason else self.first_call_problem(),
        )

    def first_call_problem(self) -> str | None:
        """One eager call on a 2-element float32 batch before any check runs: a request that is
        wrong as a whole is one usage line, not hundreds of identical failures.  Wrong when the
        callable raises and its module works with another framework than ``--framework`` (or it
        returns another framework's tensor), or when it raises KeyboardInterrupt / SystemExit
        (a callable must return; the suite would read them as its own interruption).  Any other
        raise is the callable's behaviour: the checks report it one by one."""
        v = Variant(
            activation="softmax" if self.conv.softmax else "sigmoid",
            input_kind=self.conv.input_kind,  # type: ignore[arg-type]
            alpha=None if self.conv.alpha_off == "absent" else 0.25,
            reduction=self.offered_reductions()[0],  # type: ignore[arg-type]
        )
        v = self.declared_variant(v, "float32")
        if self.conv.softmax:
            x, t = np.array([[1.0, -0.5, 0.25], [0.0, 2.0, -1.0]]), np.array([0, 1])
        elif self.conv.input_kind == "probs":
            x, t = np.array([0.25, 0.75]), np.array([0.0, 1.0])
        else:
            x, t = np.array([-1.0, 0.5]), np.array([0.0, 1.0])
        if self.supports(v, "float32", "cpu", "eager") is not None:
            return None  # nothing it claims to compute on this batch: the checks say what they can
        used = _frameworks_used(self.fn)
        hint = ""
        if used and self.framework not in used:
            hint = f"did you mean --framework {sorted(used)[0]}? (its module uses {', '.join(sorted(used))})"
        try:
            obs = self.probe(v, x, t, "float32", "cpu")
        except (KeyboardInterrupt, SystemExit) as exc:
            return (
                f"{self.spec} raised {type(exc).__name__} when called on a 2-element float32 batch: a loss must "
                "return (KeyboardInterrupt is what Ctrl-C raises; the gate would read it as its own interruption)"
            )
        except AdapterError as exc:
            if hint:
                return f"{self.spec} fails on {self.framework} tensors ({exc}): {hint}"
            return None
        top = str(obs.get("type") or "").split(".")[0]
        other = {"jaxlib": "jax"}.get(top, top)
        if not obs.get("is_tensor") and other in _IMPORT_NAME.values() and other != _IMPORT_NAME[self.framework]:
            return (
                f"{self.spec} returned a {obs['type']} for {self.framework} inputs: "
                f"did you mean --framework {other}?"
            )
        return None

    def offered_reductions(self) -> tuple[str, ...]:
        """The reductions this callable computes (``Convention.reductions``)."""
        if self.conv.reductions is not None:
            return self.conv.reductions
        if not self.call_shape.has_reduction:
            return ("none",)
        return ("none", "mean", "sum", *(("normalized",) if self.conv.normalized and not self.conv.softmax else ()))

    # -------------------------------------------------------------- what it claims

    def unavailable_reason(self) -> str | None:
        if self._facts is not None:
            return self._facts.unavailable
        module = _IMPORT_NAME[self.framework]
        if module in sys.modules:
            return None
        try:
            importlib.import_module(module)
        except Exception as exc:
            return f"{self.framework} is not importable here: {type(exc).__name__}: {_one_line(exc)}"
        return None

    def framework_version(self) -> str | None:
        if self._facts is not None:
            return self._facts.framework_version
        try:
            return str(importlib.import_module(_IMPORT_NAME[self.framework]).__version__)
        except Exception:
            return None

    def devices(self) -> tuple[str, ...]:
        return self._facts.devices if self._facts is not None else self.backend().devices()

    def reproducer_args(self) -> list[str]:
        """``focalspec check`` arguments that rebuild this adapter (used in failure messages)."""
        return [self.spec, *self.conv.cli_args()]

    def declared_variant(self, variant: Variant, dtype: str | None = None) -> Variant:
        """The case variant as this callable claims to compute it: a declared clip epsilon (with
        the bounds the callable forms in ``dtype``) and soft-target form replace the exact ones."""
        v = variant
        conv = self.conv
        if conv.clip_eps is not None and v.clip_eps is None and v.soft_target == "canonical":
            v = replace(v, clip_eps=conv.clip_eps)
        if v.clip_eps is not None and v.clip_eps == conv.clip_eps:
            if v.activation == "sigmoid":
                v = replace(v, clip_scope=conv.clip_scope)  # type: ignore[arg-type]
            if dtype is not None:
                lo = round_mpf(conv.clip_eps, dtype)
                hi = round_mpf(1.0 - conv.clip_eps, dtype)
                if 0 < lo < 0.5 and 0.5 < hi < 1:
                    v = v.clip_bounds_for(lo, hi)
        if (
            conv.soft_target != "canonical"
            and v.soft_target == "canonical"
            and v.activation == "sigmoid"
            and v.input_kind == "logits"
            and v.clip_eps is None
        ):
            v = replace(v, soft_target=conv.soft_target)
        return v

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if dtype not in self.dtypes:
            return f"{dtype} is not a dtype the suite can pass to {self.framework}"
        if mode not in self.modes:
            return f"unknown mode {mode!r}"
        if self.framework == "paddle" and (dtype not in ("float64", "float32") or mode != "eager"):
            return "paddle callables are tested in eager mode, float64 and float32 (paddle's CPU kernels)"
        reason = self.unavailable_reason()
        if reason:
            return reason
        if device not in self.devices():
            return f"no {device.upper()} device for {self.framework}" if device == "cuda" else f"no {device} device"
        why = self._not_offered(variant, dtype)
        return NOT_APPLICABLE + why if why else None

    def _not_offered(self, variant: Variant, dtype: str) -> str | None:
        """Why the declared convention does not offer this variant (a 'not applicable' check)."""
        conv = self.conv
        want = "softmax" if conv.softmax else "sigmoid"
        if variant.activation != want:
            return f"the callable is declared a {want} loss (--softmax {'given' if conv.softmax else 'not given'})"
        if variant.input_kind != conv.input_kind:
            return f"the callable is declared to take {conv.input_kind}, the case has {variant.input_kind}"
        if variant.alpha is None and conv.alpha_off == "never":
            return "the callable cannot switch alpha off (--alpha-off never)"
        if variant.alpha is not None and conv.alpha_off == "absent":
            return "the callable has no alpha (--alpha-off absent)"
        if isinstance(variant.alpha, tuple):
            return "a per-class alpha vector is not part of the callable convention"
        if variant.clip_eps is not None:
            if conv.clip_eps is None or variant.clip_eps not in (conv.clip_eps, round_mpf(conv.clip_eps, dtype)):
                return f"the case clips at {variant.clip_eps:g}; the callable declares clip {conv.clip_eps}"
            if variant.clip_upper is None and round_mpf(1.0 - conv.clip_eps, dtype) >= 1:
                return f"1 - {conv.clip_eps:g} rounds to 1 in {dtype}: the declared clip is not expressible"
        elif conv.clip_eps is not None:
            return f"the callable declares clip {conv.clip_eps:g}; the case has no clipping"
        if variant.soft_target != conv.soft_target and not conv.softmax:
            return f"the case uses the {variant.soft_target} soft-target form; the callable declares {conv.soft_target}"
        if variant.label_smoothing:
            return "label smoothing is not part of the callable convention"
        if variant.renormalize:
            return "renormalisation of probability rows is not part of the callable convention"
        offered = self.offered_reductions()
        if variant.reduction not in offered:
            if conv.reductions is not None:
                return f"the callable offers reductions {', '.join(offered)} (--reductions)"
            if not self.call_shape.has_reduction:
                return "the callable has no 'reduction' argument (elementwise losses only)"
            return "no reduction argument declared for 'normalized' (--normalized NAME)"
        return None

    def supports_data(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray) -> str | None:
        """Target forms outside the convention (class distributions for a class-index loss)."""
        if variant.activation == "softmax" and np.ndim(targets) == np.ndim(inputs):
            return "the callable takes class indices (--softmax); the case has target distributions"
        return None

    # -------------------------------------------------------------- running

    def backend(self) -> _Backend:
        if self._backend is None:
            self._backend = _BACKENDS[self.framework]()
        return self._backend

    def call_kwargs(self, variant: Variant) -> dict[str, Any]:
        conv = self.conv
        kw: dict[str, Any] = dict(conv.kwargs)
        alpha = variant.alpha
        if conv.alpha_off == "flag":
            kw[conv.alpha_flag] = alpha is not None
            if alpha is not None:
                kw["alpha"] = float(alpha)  # type: ignore[arg-type]
        elif conv.alpha_off == "absent":
            pass  # no alpha argument: it computes the unweighted loss
        elif alpha is None:
            kw["alpha"] = None if conv.alpha_off == "none" else -1.0
        else:
            kw["alpha"] = float(alpha)  # type: ignore[arg-type]
        kw["gamma"] = float(variant.gamma)
        if self.call_shape.has_reduction:
            red = variant.reduction
            kw["reduction"] = conv.normalized if red == "normalized" else red
        return kw

    def run(
        self,
        variant: Variant,
        inputs: np.ndarray,
        targets: np.ndarray,
        dtype: str,
        device: str = "cpu",
        mode: str = "eager",
        want_grad: bool = True,
    ) -> Output:
        self.require_supported(variant, dtype, device, mode)
        kw = self.call_kwargs(variant)
        fn = self.fn

        def call(x: Any, t: Any) -> Any:
            return fn(t, x, **kw) if self.conv.targets_first else fn(x, t, **kw)

        expect = (
            ()
            if variant.reduction != "none"
            else (inputs.shape[:-1] if variant.activation == "softmax" else inputs.shape)
        )
        key = (self.spec, tuple(sorted((k, repr(v)) for k, v in kw.items())))
        loss, grad, ran = self.backend().evaluate(
            call, key, inputs, targets, dtype, device, mode, want_grad, softmax=variant.activation == "softmax"
        )
        if loss.shape != tuple(expect):
            raise AdapterError(
                f"returned a loss of shape {loss.shape}; the spec gives {tuple(expect)} for "
                f"inputs {inputs.shape} with reduction {variant.reduction!r}"
            )
        return Output(loss=loss, grad=grad, ran=ran)

    def probe(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str = "cpu"
    ) -> dict[str, Any]:
        """One raw eager call without autodiff and what came back (``conformance/contracts.py``):
        type, dtype, shape, autograd state, the value, and which arguments changed in place."""
        self.require_supported(variant, dtype, device, "eager")
        kw = self.call_kwargs(variant)
        fn = self.fn

        def call(x: Any, t: Any) -> Any:
            return fn(t, x, **kw) if self.conv.targets_first else fn(x, t, **kw)

        return self.backend().probe(call, inputs, targets, dtype, device, softmax=variant.activation == "softmax")

    def warm_up(self, mode: str) -> None:
        """Load the framework's compiler (``_Backend.warm_up_compiler``): the first compile of a
        process costs seconds of imports and set-up, which a worker kept for the compiled mode
        pays while the eager checks run (``Suite.prefetch``).  The callable itself is not called."""
        if mode == "compiled":
            self.backend().warm_up_compiler()


# ============================================================================= backends


def _describe_exc(exc: BaseException) -> str:
    return f"the callable raised {type(exc).__name__}: {_one_line(exc)}"


class _Backend:
    """One framework: tensors in, the callable, autodiff of the summed loss, numpy out."""

    framework = ""

    def devices(self) -> tuple[str, ...]:
        raise NotImplementedError

    def evaluate(
        self,
        call: Callable[[Any, Any], Any],
        key: Any,
        inputs: np.ndarray,
        targets: np.ndarray,
        dtype: str,
        device: str,
        mode: str,
        want_grad: bool,
        softmax: bool,
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        raise NotImplementedError

    def probe(
        self, call: Callable[[Any, Any], Any], inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str,
        softmax: bool,
    ) -> dict[str, Any]:  # fmt: skip
        raise NotImplementedError

    def warm_up_compiler(self) -> None:
        """Load the compiler, e.g. by compiling and differentiating x*x once (``CallableAdapter.warm_up``)."""


def _call_for_probe(call: Callable[[Any, Any], Any], x: Any, t: Any) -> Any:
    try:
        return call(x, t)
    except Exception as exc:
        raise AdapterError(_describe_exc(exc)) from exc


class _TorchBackend(_Backend):
    """Compiled mode is ``torch.compile(fullgraph=True)`` as for focalspec's own torch adapters: a
    graph break or hitting the recompile limit is an error, never a silent eager fall-back."""

    framework = "torch"

    def __init__(self) -> None:
        from focalspec.adapters._torch_common import CompiledCache, torch_module

        self.torch = torch_module()  # TF32 off, 'highest' float32 matmul precision
        self._compiled = CompiledCache()
        torch = self.torch
        self.dtypes = {
            "float64": torch.float64,
            "float32": torch.float32,
            "bfloat16": torch.bfloat16,
            "float16": torch.float16,
        }

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda") if self.torch.cuda.is_available() else ("cpu",)

    def warm_up_compiler(self) -> None:
        """Dynamo and Inductor imported and the CPU's vector ISA picked (2 s on 2 cores), not a
        trivial function compiled: the real compiles are queued by then (``Suite.prefetch``), and
        a compile of x*x would only add its own ~0.3 s before them."""
        from focalspec.adapters._inductor_probes import remember_isa_probes

        torch = self.torch
        remember_isa_probes(torch)
        try:
            import torch._dynamo
            import torch._inductor.compile_fx
            from torch._inductor.cpu_vec_isa import pick_vec_isa

            pick_vec_isa()
        except (ImportError, AttributeError):  # another torch's layout: compile x*x instead
            x = torch.ones(2, dtype=torch.float32, requires_grad=True)
            torch.autograd.grad(torch.compile(lambda a: (a * a).sum(), fullgraph=True)(x), x)

    def _tensors(self, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, softmax: bool) -> Any:
        torch = self.torch
        tdt = self.dtypes[dtype]
        dev = torch.device("cuda" if device == "cuda" else "cpu")
        x = torch.tensor(np.asarray(inputs, dtype=np.float64), dtype=torch.float64, device=dev).to(tdt)
        if softmax:
            t = torch.tensor(np.asarray(targets, dtype=np.int64), device=dev)
        else:
            t = torch.tensor(np.asarray(targets, dtype=np.float64), dtype=torch.float64, device=dev).to(tdt)
        return x, t

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        torch = self.torch
        x, t = self._tensors(inputs, targets, dtype, device, softmax)
        def snapshot() -> dict[str, np.ndarray]:  # copies: .numpy() of a float64 CPU tensor aliases it
            return {k: v.detach().to(torch.float64).cpu().numpy().copy() for k, v in (("inputs", x), ("targets", t))}

        before = snapshot()
        out = _call_for_probe(call, x, t)
        after = snapshot()
        obs = _observed(out, torch.Tensor, "torch.Tensor", before, after)
        if isinstance(out, torch.Tensor):
            obs |= {
                "dtype": str(out.dtype).removeprefix("torch."),
                "grad_attached": bool(out.requires_grad),
                "grad_fn": type(out.grad_fn).__name__ if out.grad_fn is not None else None,
                "value": out.detach().to(torch.float64).cpu().numpy(),
            }
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        from focalspec.adapters._torch_common import call_compiled, torch_ran

        torch = self.torch
        tdt = self.dtypes[dtype]
        x, t = self._tensors(inputs, targets, dtype, device, softmax)
        x.requires_grad_(want_grad)
        try:
            if mode == "compiled":
                fn = self._compiled.get((key, dtype, device), lambda: lambda a, b: call(a, b))
                loss = call_compiled(fn, x, t)
            else:
                loss = call(x, t)
        except Exception as exc:
            raise AdapterError(_describe_exc(exc)) from exc
        if not isinstance(loss, torch.Tensor):
            raise AdapterError(f"the callable returned {type(loss).__name__}, not a torch.Tensor")
        note = _returned_dtype(loss.dtype, tdt)
        grad = None
        if want_grad:
            if not loss.requires_grad:
                raise AdapterError("the returned loss does not depend differentiably on the inputs (no grad_fn)")
            try:
                (g,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
            except Exception as exc:
                raise AdapterError(f"backward raised {type(exc).__name__}: {_one_line(exc)}") from exc
            if g is None:
                g = torch.zeros_like(x)
            note = note or _returned_dtype(g.dtype, tdt, "the gradient")
            grad = g.detach().to(torch.float64).cpu().numpy()
        ran = torch_ran(device, mode, dtype, implementation="callable") | note
        return loss.detach().to(torch.float64).cpu().numpy(), grad, ran


def _persist_xla_compiles(jax: Any) -> None:
    """JAX's eager mode compiles each primitive once per new shape (~18 ms apiece on 2 cores; the
    gate on optax's loss made 2,360 such compiles, most of its 95 s).  XLA's persistent compilation
    cache, in focalspec's cache folder, lets a later run load them instead: the same executables
    (the key is the lowered module, the compile options and the backend's version).  A cache
    folder the user configured (``JAX_COMPILATION_CACHE_DIR``) is left as it is; remove
    ``~/.cache/focalspec/jax-xla`` to reclaim the space."""
    if jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", cache_folder("jax-xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the per-primitive compiles too
    # Left unbounded (JAX's default): its size-capped mode needs an access-time file beside every entry
    # and fails every write once one is missing.  The cases' shapes are fixed, so a callable adds its
    # ~10-20 MB once and later runs reuse them.


class _JaxBackend(_Backend):
    framework = "jax"

    def __init__(self) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 inputs must stay float64
        jax.config.update("jax_default_matmul_precision", "highest")  # no TF32/bf16 passes
        _persist_xla_compiles(jax)
        self.jax = jax
        self._compiled: dict[Any, Callable[..., Any]] = {}

    def warm_up_compiler(self) -> None:
        jax, jnp = self.jax, self.jax.numpy
        jax.block_until_ready(jax.jit(jax.value_and_grad(lambda a: jnp.sum(a * a)))(jnp.ones(2, jnp.float32)))

    def devices(self) -> tuple[str, ...]:
        try:
            gpus = self.jax.devices("gpu")
        except RuntimeError:
            gpus = []
        return ("cpu", "cuda") if gpus else ("cpu",)

    def _np_dtype(self, dtype: str) -> Any:
        import ml_dtypes

        return {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}[
            dtype
        ]

    def _arrays(self, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, softmax: bool) -> Any:
        jax = self.jax
        dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        npdt = self._np_dtype(dtype)
        x = jax.device_put(np.asarray(inputs, dtype=np.float64).astype(npdt), dev)
        t_np = np.asarray(targets, dtype=np.int64) if softmax else np.asarray(targets, dtype=np.float64).astype(npdt)
        return x, jax.device_put(t_np, dev), dev

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        x, t, _ = self._arrays(inputs, targets, dtype, device, softmax)
        out = _call_for_probe(call, x, t)
        obs = _observed(out, self.jax.Array, "jax.Array", {}, {})  # jax arrays are immutable
        if isinstance(out, self.jax.Array):
            obs |= {"dtype": str(out.dtype), "value": np.asarray(out).astype(np.float64)}
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        jax = self.jax
        jnp = jax.numpy
        x, t, dev = self._arrays(inputs, targets, dtype, device, softmax)

        def value_and_grad(xx: Any, tt: Any) -> Any:
            if not want_grad:
                return call(xx, tt), None
            loss, vjp = jax.vjp(lambda a: call(a, tt), xx)
            (g,) = vjp(jnp.ones_like(loss))
            return loss, g

        if mode == "compiled":
            ck = (key, want_grad)
            if ck not in self._compiled:
                self._compiled[ck] = jax.jit(value_and_grad)
            fn = self._compiled[ck]
        else:
            fn = value_and_grad
        try:
            loss, g = fn(x, t)
            loss = jax.block_until_ready(loss)
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(_describe_exc(exc)) from exc
        if not isinstance(loss, jax.Array):
            raise AdapterError(f"the callable returned {type(loss).__name__}, not a jax.Array")
        note = _returned_dtype(loss.dtype, x.dtype)
        grad = None
        if want_grad:
            note = note or _returned_dtype(g.dtype, x.dtype, "the gradient")
            grad = np.asarray(g).astype(np.float64)
        ran = {
            "framework": "jax",
            "version": jax.__version__,
            "device": str(dev.device_kind),
            "mode": mode,
            "flags": {"jax_enable_x64": True, "matmul_precision": "highest"}
            | ({"jit": True} if mode == "compiled" else {}),
        } | note
        return np.asarray(loss).astype(np.float64), grad, ran


class _TfBackend(_Backend):
    framework = "tensorflow"

    def __init__(self) -> None:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
        self.tf = tf
        self._compiled: dict[Any, Callable[..., Any]] = {}
        self.dtypes = {"float64": tf.float64, "float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda") if self.tf.config.list_physical_devices("GPU") else ("cpu",)

    def warm_up_compiler(self) -> None:
        tf = self.tf

        def value_and_grad(a: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(a)
                total = tf.reduce_sum(a * a)
            return total, tape.gradient(total, a)

        tf.function(value_and_grad, jit_compile=True)(tf.ones(2, tf.float32))

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        tf = self.tf
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            x = tf_exact(inputs, dtype)
            t = tf.constant(np.asarray(targets, dtype=np.int64)) if softmax else tf_exact(targets, dtype)
            out = _call_for_probe(call, x, t)
        obs = _observed(out, tf.Tensor, "tf.Tensor", {}, {})  # tf tensors are immutable
        if isinstance(out, tf.Tensor):
            obs |= {"dtype": out.dtype.name, "value": tf.cast(out, tf.float64).numpy()}
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        tf = self.tf
        tdt = self.dtypes[dtype]
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            x = tf_exact(inputs, dtype)
            t = tf.constant(np.asarray(targets, dtype=np.int64)) if softmax else tf_exact(targets, dtype)

            def value_and_grad(xx: Any, tt: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(xx)
                    loss = call(xx, tt)
                    if not want_grad or not isinstance(loss, tf.Tensor):
                        return loss, None
                    total = tf.reduce_sum(loss)  # on the tape: a sum taken after it would have no gradient
                return loss, tape.gradient(total, xx)

            if mode == "compiled":
                ck = (key, want_grad)
                if ck not in self._compiled:
                    self._compiled[ck] = tf.function(value_and_grad, jit_compile=True)
                fn = self._compiled[ck]
            else:
                fn = value_and_grad
            try:
                loss, g = fn(x, t)
            except Exception as exc:
                raise AdapterError(_describe_exc(exc)) from exc
        if not isinstance(loss, tf.Tensor):
            raise AdapterError(f"the callable returned {type(loss).__name__}, not a tf.Tensor")
        note = _returned_dtype(loss.dtype.name, tdt.name)
        grad = None
        if want_grad:
            if g is None:
                raise AdapterError("the returned loss does not depend differentiably on the inputs (gradient None)")
            note = note or _returned_dtype(g.dtype.name, tdt.name, "the gradient")
            grad = tf.cast(g, tf.float64).numpy()
        ran = {
            "framework": "tensorflow",
            "version": tf.__version__,
            "device": "GPU:0" if device == "cuda" else "CPU:0",
            "mode": mode,
            "flags": {"tensor_float_32": False} | ({"tf.function": "jit_compile"} if mode == "compiled" else {}),
        } | note
        return tf.cast(loss, tf.float64).numpy(), grad, ran


class _PaddleBackend(_Backend):
    """PaddlePaddle on the CPU, eager only (float64/float32: what paddle's CPU kernels offer);
    the gradient is ``paddle.grad`` of the summed loss."""

    framework = "paddle"

    def __init__(self) -> None:
        import paddle

        paddle.set_device("cpu")
        self.paddle = paddle

    def devices(self) -> tuple[str, ...]:
        return ("cpu",)

    def _tensors(self, inputs: np.ndarray, targets: np.ndarray, dtype: str, softmax: bool, grad: bool) -> Any:
        paddle = self.paddle
        if dtype not in ("float64", "float32"):
            raise AdapterError(f"paddle on the CPU is tested in float64 and float32, not {dtype}")
        x = paddle.to_tensor(np.asarray(inputs, dtype=np.float64)).astype(dtype)
        x.stop_gradient = not grad
        if softmax:
            t = paddle.to_tensor(np.asarray(targets, dtype=np.int64))
        else:
            t = paddle.to_tensor(np.asarray(targets, dtype=np.float64)).astype(dtype)
        return x, t

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        paddle = self.paddle
        x, t = self._tensors(inputs, targets, dtype, softmax, grad=False)

        def snapshot() -> dict[str, np.ndarray]:
            return {k: v.astype("float64").numpy().copy() for k, v in (("inputs", x), ("targets", t))}

        before = snapshot()
        out = _call_for_probe(call, x, t)
        after = snapshot()
        obs = _observed(out, paddle.Tensor, "paddle.Tensor", before, after)
        if isinstance(out, paddle.Tensor):
            obs |= {
                "dtype": str(out.dtype).removeprefix("paddle."),
                "grad_attached": not bool(out.stop_gradient),
                "value": out.astype("float64").numpy(),
            }
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        paddle = self.paddle
        if mode != "eager":
            raise AdapterError("paddle callables are tested in eager mode only")
        x, t = self._tensors(inputs, targets, dtype, softmax, grad=want_grad)
        try:
            loss = call(x, t)
        except Exception as exc:
            raise AdapterError(_describe_exc(exc)) from exc
        if not isinstance(loss, paddle.Tensor):
            raise AdapterError(f"the callable returned {type(loss).__name__}, not a paddle.Tensor")
        note = _returned_dtype(str(loss.dtype).removeprefix("paddle."), dtype)
        grad = None
        if want_grad:
            if loss.stop_gradient:
                raise AdapterError("the returned loss does not depend differentiably on the inputs (stop_gradient)")
            (g,) = paddle.grad(paddle.sum(loss), [x], allow_unused=True)
            grad = np.zeros(x.shape) if g is None else g.astype("float64").numpy()
        ran = {"framework": "paddle", "version": str(paddle.__version__), "device": "cpu", "mode": "eager"} | note
        return loss.astype("float64").numpy(), grad, ran


RETURNED_DTYPE = "returned_dtype"  # Output.ran key: the callable broke the dtype contract (graded as returned)


def _returned_dtype(got: Any, want: Any, what: str = "the callable") -> dict[str, str]:
    """A dtype-contract breach, as a note rather than an error: the numbers that came back are
    still graded (exactly, in float64), so that "float64 computed in float32" can be said of them;
    the breach itself is the ``dtype_shape`` contract check's failure (conformance/contracts.py)."""
    if str(got) == str(want):
        return {}
    return {RETURNED_DTYPE: f"{what} returned {got} for {want} inputs"}


def _frameworks_used(fn: Any) -> set[str]:
    """The frameworks the callable's module works with (its imported modules and functions)."""
    import types

    target = getattr(fn, "func", fn)  # functools.partial
    module = sys.modules.get(getattr(target, "__module__", None) or "")
    names = set(_IMPORT_NAME.values())
    used = set()
    for value in vars(module).values() if module is not None else ():
        owner = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        top = str(owner or "").split(".")[0]
        if top in names:
            used.add(top)
    return used


def _observed(
    out: Any, tensor_type: type, tensor_name: str, before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The framework-independent part of a probe: what type came back, the arguments before and after."""
    t = type(out)
    return {
        "type": f"{t.__module__}.{t.__qualname__}".removeprefix("builtins."),
        "tensor_type": tensor_name,
        "is_tensor": isinstance(out, tensor_type),
        "shape": tuple(getattr(out, "shape", ())) if isinstance(out, tensor_type) else None,
        "dtype": None,
        "grad_attached": False,
        "grad_fn": None,
        "value": None,
        "before": before,  # the arguments as passed and as left (contracts.py judges)
        "after": after,
    }


_BACKENDS: dict[str, type[_Backend]] = {
    "torch": _TorchBackend,
    "jax": _JaxBackend,
    "tensorflow": _TfBackend,
    "paddle": _PaddleBackend,
}


def make_callable_adapter(spec: str, convention: Convention) -> CallableAdapter:
    """The adapter, with every usage problem reported as one SpecError line."""
    adapter = CallableAdapter(spec, convention)
    reason = adapter.unavailable_reason()
    if reason:
        raise SpecError(reason)
    return adapter


__all__ = [
    "ALPHA_OFF",
    "FRAMEWORKS",
    "CallableAdapter",
    "Convention",
    "WorkerFacts",
    "check_signature",
    "load_callable",
    "make_callable_adapter",
    "parse_kwargs",
]
