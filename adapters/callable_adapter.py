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

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from focalspec.adapters.backends import CallBackend, call_backend, first_line
from focalspec.adapters.base import DTYPES, Adapter, AdapterError, Output
from focalspec.adapters.callable_convention import (
    ALPHA_OFF,
    FRAMEWORKS,
    CallShape,
    Convention,
    callable_name,
    check_signature,
    convention_from_options,
    load_callable,
    parse_kwargs,
    parse_reductions,
)
from focalspec.reference.rounding import round_mpf
from focalspec.spec.variant import SpecError, Variant

# the skip reason of a check the callable's declared convention does not offer (no alpha, a
# reduction it lacks, probabilities instead of logits ...): not a fault, not applicable to it
NOT_APPLICABLE = "not applicable: "
_IMPORT_NAME = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow", "paddle": "paddle"}


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
        self._backend: CallBackend | None = None

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
            return f"{self.framework} is not importable here: {type(exc).__name__}: {first_line(exc)}"
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

    def backend(self) -> CallBackend:
        if self._backend is None:
            self._backend = call_backend(self.framework)
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

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
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
        """One raw eager call without autodiff and what came back (``conformance/suite/contracts.py``):
        type, dtype, shape, autograd state, the value, and which arguments changed in place."""
        self.require_supported(variant, dtype, device, "eager")
        kw = self.call_kwargs(variant)
        fn = self.fn

        def call(x: Any, t: Any) -> Any:
            return fn(t, x, **kw) if self.conv.targets_first else fn(x, t, **kw)

        return self.backend().probe(call, inputs, targets, dtype, device, softmax=variant.activation == "softmax")

    def warm_up(self, mode: str) -> None:
        """Load the framework's compiler (``CallBackend.warm_up_compiler``): the first compile of a
        process costs seconds of imports and set-up, which a worker kept for the compiled mode
        pays while the eager checks run (``Suite.prefetch``).  The callable itself is not called."""
        if mode == "compiled":
            self.backend().warm_up_compiler()


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


def make_callable_adapter(spec: str, convention: Convention) -> CallableAdapter:
    """The adapter, with every usage problem reported as one SpecError line."""
    adapter = CallableAdapter(spec, convention)
    reason = adapter.unavailable_reason()
    if reason:
        raise SpecError(reason)
    return adapter


__all__ = [  # the convention's names are re-exported: the gate, plugin and tests import them from here
    "ALPHA_OFF",
    "FRAMEWORKS",
    "CallShape",
    "CallableAdapter",
    "Convention",
    "WorkerFacts",
    "callable_name",
    "check_signature",
    "convention_from_options",
    "load_callable",
    "make_callable_adapter",
    "parse_kwargs",
    "parse_reductions",
]
