"""The one interface between focalspec and any focal-loss implementation.

An adapter takes numpy inputs that already hold dtype-exact values, runs the real
implementation on its framework/device/dtype/mode, and hands back numpy arrays: the loss
and the gradient (through the framework's own autodiff) of the *sum of the returned loss*
with respect to the inputs.  It never computes in numpy what the implementation should.

Whatever an adapter cannot do is a reason string (``supports`` / ``unavailable_reason``),
which the suite turns into a skip with that reason -- never a pass, never a crash.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focalspec.adapters.capabilities import Capabilities, data_refusal, refusal
from focalspec.spec.variant import Variant

DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
# triton-interpret / pallas-interpret: a GPU kernel run by its interpreter on CPU (never a CUDA result)
MODES: tuple[str, ...] = ("eager", "compiled", "triton-interpret", "pallas-interpret")


def cache_folder(*parts: str) -> str:
    """A folder under focalspec's cache, ``$XDG_CACHE_HOME/focalspec`` (default ``~/.cache``):
    the mpmath references (``conformance/suite/refcache.py``) and a JAX callable's compiles."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "focalspec", *parts)


class AdapterError(RuntimeError):
    """The implementation under test raised or misbehaved; the message is one line."""


CLIP_UPPER_REASON = (
    "a stated rounded clip bound (clip_upper) is not a parameter of this implementation; "
    "it clips at [eps, 1 - eps] formed in its compute precision"
)


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` -- never a traceback wall (TF errors carry pages)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")[:500]


def failure(probe: Callable[[], object], why: str) -> str | None:
    """None when ``probe()`` works (a framework's first use, an import), else ``why`` with the one-line
    error in place of ``{err}``: every adapter's ``unavailable_reason`` in one shape."""
    try:
        probe()
    except Exception as exc:  # ImportError, or a broken build
        return why.format(err=one_line(exc))
    return None


def version_of(module: Callable[[], Any]) -> str | None:
    """``module().__version__`` as a string, None when the framework cannot be loaded."""
    try:
        return str(module().__version__)
    except Exception:
        return None


@contextlib.contextmanager
def framework_errors(prefix: str = "") -> Iterator[None]:
    """Whatever the framework raises inside becomes one AdapterError line (AdapterError passes
    through), so the suite records the failure and carries on with the other cases."""
    try:
        yield
    except AdapterError:
        raise
    except Exception as exc:
        raise AdapterError(f"{prefix}{one_line(exc)}") from None


def own_impl_kwargs(v: Variant) -> dict[str, Any]:
    """Keyword arguments of focalspec's own implementations for a variant: the
    torch, jax and tf modules of focalspec.kernels share one signature (sigmoid: soft_target; softmax: renormalize)."""
    kw: dict[str, Any] = {
        "gamma": v.gamma,
        "alpha": v.alpha,
        "input_kind": v.input_kind,
        "clip_eps": v.clip_eps,
        "label_smoothing": v.label_smoothing,
        "reduction": v.reduction,
    }
    if v.activation == "sigmoid":
        kw["soft_target"] = v.soft_target
    else:
        kw["renormalize"] = v.renormalize
    return kw


@dataclass
class Output:
    """What one call of an implementation produced (float64 copies of dtype values)."""

    loss: np.ndarray
    grad: np.ndarray | None
    ran: dict[str, Any] = field(default_factory=dict)  # framework, version, device name, mode, flags


@dataclass
class Timed:
    """A prepared, framework-native computation for the performance harness.

    ``step(i)`` runs one evaluation on the i-th (modulo the number given) pre-placed input
    set and returns the framework's output without waiting; ``sync(out)`` blocks until it
    is computed (CUDA synchronise, ``block_until_ready``, reading a TF tensor);
    ``to_numpy(out)`` gives (loss, grad-or-None) for the correctness check of timed output.
    ``compile_seconds`` is the time of the first (tracing/compiling) call, reported apart.
    """

    step: Callable[[int], Any]
    sync: Callable[[Any], None]
    to_numpy: Callable[[Any], tuple[np.ndarray, np.ndarray | None]]
    compile_seconds: float = 0.0
    ran: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Description:
    """What an adapter says about itself (for ``focalspec adapters`` and the reports)."""

    name: str
    implementation: str
    framework: str
    framework_version: str | None
    convention: str
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    modes: tuple[str, ...]
    unavailable: str | None


class Adapter(abc.ABC):
    """Base class of every adapter.  Subclasses set the class attributes and implement
    ``unavailable_reason``, ``supports`` and ``evaluate`` (or ``run``)."""

    name: str = ""  # short id used in test ids, e.g. "torchvision"
    implementation: str = ""  # dotted path of what is tested, e.g. "torchvision.ops.sigmoid_focal_loss"
    framework: str = ""  # "torch" | "jax" | "tensorflow" | "numpy"
    convention: str = ""  # the spec convention it claims (a key of spec.conventions), for the report
    dtypes: tuple[str, ...] = ("float64", "float32")
    modes: tuple[str, ...] = ("eager",)
    clip_scopes: tuple[str, ...] = ("all",)  # where a clip it applies acts (Variant.clip_scope values)
    package: str = ""  # the distribution under test when it is not the framework (findings are pinned to it)
    capabilities: Capabilities | None = None  # what it accepts, declared (adapters/capabilities.py)
    name_errors: bool = False  # its errors start with its name (the third-party ones: several share a framework)
    # the tox environment whose conformance run tests it (``focalspec adapters --env``); None: the
    # registry line's, "": none (it refuses every variant, or runs only where it says)
    env: str | None = None

    def variant_reason(self, variant: Variant) -> str | None:
        """None when ``variant`` maps onto the implementation's arguments, else why not: the
        declared ``capabilities``, then what they cannot say (``extra_reason``)."""
        declared = refusal(self.capabilities, variant) if self.capabilities is not None else None
        return declared or self.extra_reason(variant)

    def extra_reason(self, variant: Variant) -> str | None:
        """A refusal the capabilities cannot state (a per-class alpha of one shape only ...)."""
        return None

    def supports_data(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray) -> str | None:
        """None, or why this case's data is outside the declared capabilities (soft targets for a hard-target
        library): the check is not applicable, with that reason, instead of a fault."""
        return data_refusal(self.capabilities, variant, targets) if self.capabilities is not None else None

    def package_version(self) -> str | None:
        """The installed version of ``package`` (None when it is not installed or not named)."""
        import importlib.metadata

        try:
            return importlib.metadata.version(self.package) if self.package else None
        except importlib.metadata.PackageNotFoundError:
            return None

    @abc.abstractmethod
    def unavailable_reason(self) -> str | None:
        """None when usable here; otherwise why not (missing package, no compiled ops ...)."""

    @abc.abstractmethod
    def framework_version(self) -> str | None:
        """The installed version of the framework (None when it is missing)."""

    @abc.abstractmethod
    def devices(self) -> tuple[str, ...]:
        """Devices usable now: ("cpu",) or ("cpu", "cuda")."""

    @abc.abstractmethod
    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        """None when this combination can be run, else the reason it cannot."""

    # what a refused device or mode adds to the one shared message (``request_reason``)
    device_note: str = ""
    mode_note: str = ""

    def request_reason(self, dtype: str, device: str, mode: str) -> str | None:
        """The framework-free part of ``supports``, one check for every adapter: usable here,
        then the declared ``dtypes``, ``devices()`` and ``modes``."""
        reason = self.unavailable_reason()
        if reason:
            return reason
        if dtype not in DTYPES:
            return f"unknown dtype {dtype!r}"
        if dtype not in self.dtypes:
            return f"{self.name} does not support dtype {dtype} (supported: {', '.join(self.dtypes)})"
        if device not in DEVICES:
            return f"unknown device {device!r}"
        if device not in self.devices():
            return ("no CUDA device" if device == "cuda" else f"{self.name} has no {device} implementation") + (
                f" ({self.device_note})" if self.device_note else ""
            )
        if mode not in self.modes:
            return f"{self.name} has no {mode} mode" + (f" ({self.mode_note})" if self.mode_note else "")
        return None

    def run(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str = "cpu",
        mode: str = "eager", want_grad: bool = True,
    ) -> Output:  # fmt: skip
        """Evaluate the implementation; ``inputs`` are dtype-exact float64 values, ``targets``
        float (sigmoid) or int64 class indices / float distributions (softmax).  A combination
        ``supports`` refuses is refused here too (``require_supported``); an adapter implements
        ``evaluate``, or overrides ``run`` as a whole."""
        self.require_supported(variant, dtype, device, mode)
        return self.evaluate(variant, inputs, targets, dtype, device, mode, want_grad)

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        """``run`` after ``require_supported``: what an adapter implements (or it overrides ``run``)."""
        raise NotImplementedError(f"{self.name} implements neither evaluate nor run")

    def require_supported(
        self, variant: Variant, dtype: str, device: str, mode: str, input_sets: list[np.ndarray] | None = None
    ) -> None:
        """Refuse a combination ``supports`` rejects (and an empty list of timed input sets) with
        the reason: every ``run``/``prepare_timed`` starts here so a direct call cannot bypass it."""
        reason = self.clip_scope_reason(variant) or self.supports(variant, dtype, device, mode)
        if reason:
            raise AdapterError(f"{self.name}: {reason}" if self.name_errors else reason)
        if input_sets is not None and not input_sets:
            raise AdapterError("prepare_timed needs at least one input set")

    def clip_scope_reason(self, variant: Variant) -> str | None:
        """Why a clipped variant is refused when its clip acts where this adapter's does not
        (every adapter sees this check, whatever its own ``supports`` says)."""
        if variant.clip_eps is None or variant.clip_scope in self.clip_scopes:
            return None
        return (
            f"{self.name} clips with clip_scope {'/'.join(self.clip_scopes)}; "
            f"the variant clips with clip_scope={variant.clip_scope!r}"
        )

    def prepare_timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str = "cpu",
        mode: str = "eager", backward: bool = False,
    ) -> Timed:  # fmt: skip
        """Place every input set on the device once and return the timed step (see ``Timed``),
        after ``require_supported``: an adapter with a native timing path implements ``timed``."""
        if not self.has_timing_path():
            raise NotImplementedError(f"{self.name} has no native timing path")
        self.require_supported(variant, dtype, device, mode, input_sets)
        return self.timed(variant, input_sets, targets, dtype, device, mode, backward)

    def timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str, mode: str,
        backward: bool,
    ) -> Timed:  # fmt: skip
        """``prepare_timed`` after ``require_supported``: what an adapter with a native timing path implements."""
        raise NotImplementedError(f"{self.name} has no native timing path")

    def has_timing_path(self) -> bool:
        """Whether this adapter times its implementation natively (``timed`` or ``prepare_timed`` of its own)."""
        cls = type(self)
        return cls.timed is not Adapter.timed or cls.prepare_timed is not Adapter.prepare_timed

    def describe(self) -> Description:
        reason = self.unavailable_reason()
        return Description(
            name=self.name,
            implementation=self.implementation,
            framework=self.framework,
            framework_version=None if reason else self.framework_version(),
            convention=self.convention,
            dtypes=self.dtypes,
            devices=() if reason else self.devices(),
            modes=self.modes,
            unavailable=reason,
        )

    def __repr__(self) -> str:
        return f"<adapter {self.name} ({self.implementation})>"
