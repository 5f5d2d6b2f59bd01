"""The base of focalspec's own PyTorch adapters (and the Triton kernels'): the dtype/device/mode
check and the run/timing path over ``backends/torch_backend``."""

from __future__ import annotations

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
from focalspec.adapters.base import CLIP_UPPER_REASON, DEVICES, DTYPES, Adapter, Output, Timed, framework_errors
from focalspec.spec.variant import Variant


def check_common(adapter: Adapter, dtype: str, device: str, mode: str) -> str | None:
    """The dtype/device/mode part of ``supports`` shared by the PyTorch adapters."""
    reason = adapter.unavailable_reason()
    if reason:
        return reason
    if dtype not in DTYPES:
        return f"unknown dtype {dtype!r}"
    if dtype not in adapter.dtypes:
        return f"{adapter.name} does not support dtype {dtype}"
    if device not in DEVICES:
        return f"unknown device {device!r}"
    if device not in torch_devices():
        return "no CUDA device"
    if mode not in adapter.modes:
        return f"{adapter.name} has no {mode} mode"
    if mode == "compiled" and device == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on CPU needs a C++ compiler and none is on PATH"
    return None


class TorchAdapter(Adapter):
    """Common run/timing path: subclasses give ``make_loss(variant)`` (a function of
    (inputs, targets) returning the loss) and ``variant_reason``."""

    framework = "torch"
    dtypes = DTYPES
    modes: tuple[str, ...] = ("eager", "compiled")

    def __init__(self) -> None:
        self._compiled = CompiledCache()

    # -- to be provided
    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        raise NotImplementedError

    def extra_missing(self) -> str | None:
        """Why a package beyond torch is missing, or None."""
        return None

    def ran_extra(self) -> dict[str, Any]:
        """More facts for ``Output.ran`` (versions of packages beyond torch)."""
        return {}

    # -- Adapter API
    def unavailable_reason(self) -> str | None:
        return torch_missing() or self.extra_missing()

    def framework_version(self) -> str | None:
        return None if torch_missing() else torch_module().__version__

    def devices(self) -> tuple[str, ...]:
        return () if self.unavailable_reason() else torch_devices()

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if variant.clip_upper is not None:
            return CLIP_UPPER_REASON
        return check_common(self, dtype, device, mode) or self.variant_reason(variant)

    def _loss_fn(self, variant: Variant, dtype: str, device: str, mode: str) -> Callable[[Any, Any], Any]:
        if mode == "eager":
            return self.make_loss(variant)
        compiled = self._compiled.get((variant, dtype, device), lambda: self.make_loss(variant))
        return lambda x, t: call_compiled(compiled, x, t)

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        torch = torch_module()
        with framework_errors():
            x = place_inputs(inputs, dtype, device, want_grad)
            t = place_targets(variant, targets, x.shape, dtype, device)
            fn = self._loss_fn(variant, dtype, device, mode)
            start = time.perf_counter()
            loss = fn(x, t)
            grad = torch.autograd.grad(loss.sum(), x)[0] if want_grad else None
            seconds = time.perf_counter() - start
        return Output(
            loss=to_float64(loss),
            grad=None if grad is None else to_float64(grad),
            ran=torch_ran(
                device, mode, dtype, implementation=self.implementation, call_seconds=seconds, **self.ran_extra()
            ),
        )

    def prepare_timed(
        self,
        variant: Variant,
        input_sets: list[np.ndarray],
        targets: np.ndarray,
        dtype: str,
        device: str = "cpu",
        mode: str = "eager",
        backward: bool = False,
    ) -> Timed:
        self.require_supported(variant, dtype, device, mode, input_sets)
        torch = torch_module()
        with framework_errors():
            xs = [place_inputs(a, dtype, device, backward) for a in input_sets]
            t = place_targets(variant, targets, xs[0].shape, dtype, device)
            fn = self._loss_fn(variant, dtype, device, mode)
        n = len(xs)

        def step(i: int) -> Any:
            x = xs[i % n]
            loss = fn(x, t)
            if not backward:
                return loss, None
            return loss, torch.autograd.grad(loss.sum() if loss.dim() else loss, x)[0]

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
        return Timed(
            step=step,
            sync=sync,
            to_numpy=to_numpy,
            compile_seconds=compile_seconds,
            ran=torch_ran(
                device, mode, dtype, implementation=self.implementation, backward=backward, **self.ran_extra()
            ),
        )
