"""The one base of every PyTorch adapter: focalspec's own, torchvision, the Triton kernels' and the
third-party libraries' (adapters/thirdparty/).  Availability, the dtype/device/mode check, exact
placement, autograd of ``sum(loss)``, compiled mode and the timing path over
``backends/torch_backend``; a subclass states what it calls (``make_loss`` or ``_loss``) and what
it accepts (class attributes and ``capabilities``)."""

from __future__ import annotations

import importlib
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends.torch_backend import (
    CompiledCache,
    call_compiled,
    place_inputs,
    place_targets,
    to_float64,
    torch_devices,
    torch_missing,
    torch_module,
    torch_ran,
)
from focalspec.adapters.base import DTYPES, Adapter, Output, Timed, framework_errors, one_line
from focalspec.spec.variant import Variant


class TorchAdapter(Adapter):
    """Subclasses give ``make_loss(variant)`` (a function of (inputs, targets) returning the loss)
    or ``_loss(variant, x, t, n_classes)``, and declare ``capabilities``."""

    # the defaults are a library's loss (adapters/thirdparty/): eager only, its errors named, a stated
    # clip bound left to its capabilities; focalspec's own kernels and torchvision declare more
    framework = "torch"
    dtypes = DTYPES
    modes: tuple[str, ...] = ("eager",)
    name_errors = True
    clip_upper_reason: str | None = None
    module = ""  # a module beyond torch that must import for the adapter to be usable (a library's)
    cuda_only = False  # compiled ops without a CPU kernel (mmcv)

    def __init__(self) -> None:
        self._compiled = CompiledCache()
        self._unavailable: str | bool | None = False  # False: not probed yet

    # -- to be provided
    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        """The loss as a function of (inputs, targets); by default ``_loss`` with the class count."""

        def loss(x: Any, t: Any) -> Any:
            n_classes = x.shape[-1] if variant.activation == "softmax" and x.dim() else None
            return self._loss(variant, x, t, n_classes)

        return loss

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        """Call the implementation; ``x`` is the leaf tensor in the requested dtype, ``t`` the
        targets (same dtype for sigmoid, int64 indices or distributions for softmax).  Returns
        a tensor of the spec's loss shape (elementwise / per row) or a scalar."""
        raise NotImplementedError(f"{self.name} implements neither make_loss nor _loss")

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        """The variant this implementation computes when asked for ``variant`` (the identity
        for a conforming implementation).  ``n_classes`` is needed only where the declared
        convention depends on it (softmax alpha of kornia/MONAI)."""
        return variant

    def _probe(self) -> str | None:
        """Why it is unusable here (torch, or ``module`` missing), or None."""
        missing = torch_missing()
        if missing or not self.module:
            return missing
        try:
            importlib.import_module(self.module)
        except Exception as exc:
            return f"{self.package} is not installed here ({self.module}: {one_line(exc)})"
        return None

    def ran_extra(self) -> dict[str, Any]:
        """More facts for ``Output.ran`` (versions of packages beyond torch)."""
        if not self.package:
            return {}
        return {"package": self.package, "package_version": self.package_version()}

    # -- Adapter API
    def unavailable_reason(self) -> str | None:
        if self._unavailable is False:
            self._unavailable = self._probe()
        return self._unavailable  # type: ignore[return-value]

    def framework_version(self) -> str | None:
        return None if torch_missing() else str(torch_module().__version__)

    def devices(self) -> tuple[str, ...]:
        if self.unavailable_reason():
            return ()
        found = torch_devices()
        return tuple(d for d in found if d == "cuda") if self.cuda_only else found

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if variant.clip_upper is not None and self.clip_upper_reason:
            return self.clip_upper_reason
        reason = self.request_reason(dtype, device, mode)
        if reason:
            return reason
        if mode == "compiled" and device == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
            return "torch.compile on CPU needs a C++ compiler and none is on PATH"
        return self.variant_reason(variant)

    def _loss_fn(self, variant: Variant, dtype: str, device: str, mode: str) -> Callable[[Any, Any], Any]:
        if mode == "eager":
            return self.make_loss(variant)
        compiled = self._compiled.get((variant, dtype, device), lambda: self.make_loss(variant))
        return lambda x, t: call_compiled(compiled, x, t)

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        with framework_errors(f"{self.name}: " if self.name_errors else ""):
            x = place_inputs(inputs, dtype, device, want_grad)
            t = place_targets(variant, targets, x.shape, dtype, device)
            fn = self._loss_fn(variant, dtype, device, mode)
            start = time.perf_counter()
            loss = fn(x, t)
            grad = grad_of_sum(loss, x) if want_grad else None
            seconds = time.perf_counter() - start
        ran = self._ran(device, mode, dtype, call_seconds=seconds)
        # fvcore/MONAI hand back float32 whatever the input dtype
        ran["output_dtype"] = str(loss.dtype).removeprefix("torch.")
        return Output(loss=to_float64(loss), grad=None if grad is None else to_float64(grad), ran=ran)

    def _ran(self, device: str, mode: str, dtype: str, **extra: Any) -> dict[str, Any]:
        return torch_ran(device, mode, dtype, implementation=self.implementation, **extra, **self.ran_extra())

    def timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str, mode: str,
        backward: bool,
    ) -> Timed:  # fmt: skip
        with framework_errors():
            xs = [place_inputs(a, dtype, device, backward) for a in input_sets]
            t = place_targets(variant, targets, xs[0].shape, dtype, device)
            fn = self._loss_fn(variant, dtype, device, mode)
        n, torch = len(xs), torch_module()

        def step(i: int) -> Any:
            x = xs[i % n]
            loss = fn(x, t)
            return loss, (grad_of_sum(loss, x) if backward else None)

        def sync(out: Any) -> None:
            if device == "cuda":
                torch.cuda.synchronize()

        def to_numpy(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
            loss, grad = out
            return to_float64(loss), None if grad is None else to_float64(grad)

        compile_seconds = 0.0
        if mode == "compiled":
            with framework_errors():
                start = time.perf_counter()
                sync(step(0))
                compile_seconds = time.perf_counter() - start
        ran = self._ran(device, mode, dtype, backward=backward)
        return Timed(step=step, sync=sync, to_numpy=to_numpy, compile_seconds=compile_seconds, ran=ran)


def grad_of_sum(loss: Any, x: Any) -> Any:
    """d sum(loss) / d x by torch's autograd; zeros where the loss does not depend on ``x`` (an
    implementation that detaches its input is then measured, not crashed)."""
    torch = torch_module()
    if not loss.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
    return torch.zeros_like(x) if g is None else g
