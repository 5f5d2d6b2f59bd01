"""What every PyTorch adapter needs: lazy import, strict float32, placement, compilation, timing.

torch is imported on first use only: listing adapters must not pay for it.  A float32 claim
is made with TensorFloat-32 off and 'highest' matmul precision, recorded in ``Output.ran``.
Compiled mode is ``torch.compile(fullgraph=True)`` (Inductor): a graph break is an error,
never a silent fall-back to eager, and so is hitting Dynamo's recompile limit (every
variant/dtype is one more specialisation of the same code object).
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.base import CLIP_UPPER_REASON, DEVICES, DTYPES, Adapter, Output, Timed, framework_errors
from focalspec.spec.variant import Variant

_TORCH: Any = None
RECOMPILE_LIMIT = 4096  # specialisations per code object the suite may create


def torch_module() -> Any:
    """torch, imported once, with every reduced-precision float32 path switched off."""
    global _TORCH
    if _TORCH is None:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        _TORCH = torch
    return _TORCH


def torch_missing() -> str | None:
    """Why torch cannot be used here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install focalspec[torch])"
    return None


def torch_devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if torch_module().cuda.is_available() else ("cpu",)


def torch_dtype(dtype: str) -> Any:
    torch = torch_module()
    return {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        dtype
    ]


def device_description(device: str) -> str:
    torch = torch_module()
    if device == "cuda":
        return f"cuda:0 {torch.cuda.get_device_name(0)}"
    return f"cpu ({_cpu_model() or platform.processor() or platform.machine()})"


def _cpu_model() -> str | None:
    """The CPU's model name on Linux (platform.processor() is often empty there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def torch_ran(device: str, mode: str, dtype: str, **extra: Any) -> dict[str, Any]:
    torch = torch_module()
    info: dict[str, Any] = {
        "framework": "torch",
        "version": str(torch.__version__),  # a plain str: TorchVersion would make the suite unpickling it import torch
        "device": device_description(device),
        "mode": mode,
        "dtype": dtype,
        "compiler": "torch.compile(fullgraph=True), inductor" if mode == "compiled" else None,
        "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "allow_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    info.update(extra)
    return info


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


def place_inputs(inputs: np.ndarray, dtype: str, device: str, requires_grad: bool) -> Any:
    """float64 numpy holding dtype-exact values -> a tensor of ``dtype`` (exact conversion)."""
    torch = torch_module()
    x = torch.from_numpy(np.array(inputs, dtype=np.float64, order="C")).to(device=device, dtype=torch_dtype(dtype))
    return x.requires_grad_(requires_grad)


def place_targets(variant: Variant, targets: np.ndarray, inputs_shape: tuple[int, ...], dtype: str, device: str) -> Any:
    """Sigmoid targets and softmax distributions in ``dtype``; softmax class indices as int64."""
    torch = torch_module()
    t = np.asarray(targets)
    if variant.activation == "softmax" and t.shape == tuple(inputs_shape[:-1]) and t.dtype.kind in "iub":
        return torch.from_numpy(np.array(t, dtype=np.int64, order="C")).to(device)
    return torch.from_numpy(np.array(t, dtype=np.float64, order="C")).to(device=device, dtype=torch_dtype(dtype))


def to_float64(t: Any) -> np.ndarray:
    return t.detach().to("cpu", dtype=torch_module().float64).numpy()


class CompiledCache:
    """``torch.compile`` wrappers, one per (key), and calls that refuse a silent eager fall-back."""

    def __init__(self) -> None:
        self._fns: dict[Any, Callable[..., Any]] = {}

    def get(self, key: Any, make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        if key not in self._fns:
            from focalspec.adapters._inductor_probes import remember_isa_probes

            remember_isa_probes(torch_module())
            self._fns[key] = torch_module().compile(make(), fullgraph=True)
        return self._fns[key]


def call_compiled(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a compiled function with a recompile limit the suite cannot reach, failing loudly if it does."""
    torch = torch_module()
    import torch._dynamo.config as dynamo_config

    with dynamo_config.patch(
        recompile_limit=RECOMPILE_LIMIT,
        accumulated_recompile_limit=RECOMPILE_LIMIT,
        fail_on_recompile_limit_hit=True,
        specialize_float=True,  # gamma/alpha/eps are constants of the graph, as a user's would be
    ):
        with torch.enable_grad():
            return fn(*args)


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

    def variant_reason(self, variant: Variant) -> str | None:
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
