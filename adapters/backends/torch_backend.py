"""PyTorch, once: lazy import, strict float32, placement, compilation, and the callable's backend.

torch is imported on first use only: listing adapters must not pay for it.  A float32 claim
is made with TensorFloat-32 off and 'highest' matmul precision, recorded in ``Output.ran``.
Compiled mode is ``torch.compile(fullgraph=True)`` (Inductor): a graph break is an error,
never a silent fall-back to eager, and so is hitting Dynamo's recompile limit (every
variant/dtype is one more specialisation of the same code object).
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends import (
    CallBackend,
    first_line,
    not_installed,
    probe_mutable,
    returned_dtype,
    tensor_loss,
)
from focalspec.adapters.base import AdapterError
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
    return not_installed("torch", "torch")


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


class TorchCallBackend(CallBackend):
    """Compiled mode is ``torch.compile(fullgraph=True)`` as for focalspec's own torch adapters: a
    graph break or hitting the recompile limit is an error, never a silent eager fall-back."""

    framework = "torch"

    def __init__(self) -> None:
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

        out, obs = probe_mutable(call, x, t, snapshot, torch.Tensor, "torch.Tensor")
        if isinstance(out, torch.Tensor):
            obs |= {
                "dtype": str(out.dtype).removeprefix("torch."),
                "grad_attached": bool(out.requires_grad),
                "grad_fn": type(out.grad_fn).__name__ if out.grad_fn is not None else None,
                "value": out.detach().to(torch.float64).cpu().numpy(),
            }
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        torch = self.torch
        tdt = self.dtypes[dtype]
        x, t = self._tensors(inputs, targets, dtype, device, softmax)
        x.requires_grad_(want_grad)

        def run() -> Any:
            if mode != "compiled":
                return call(x, t)
            return call_compiled(self._compiled.get((key, dtype, device), lambda: lambda a, b: call(a, b)), x, t)

        loss = tensor_loss(run, torch.Tensor, "torch.Tensor")
        note = returned_dtype(loss.dtype, tdt)
        grad = None
        if want_grad:
            if not loss.requires_grad:
                raise AdapterError("the returned loss does not depend differentiably on the inputs (no grad_fn)")
            try:
                (g,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
            except Exception as exc:
                raise AdapterError(f"backward raised {type(exc).__name__}: {first_line(exc)}") from exc
            if g is None:
                g = torch.zeros_like(x)
            note = note or returned_dtype(g.dtype, tdt, "the gradient")
            grad = g.detach().to(torch.float64).cpu().numpy()
        ran = torch_ran(device, mode, dtype, implementation="callable") | note
        return loss.detach().to(torch.float64).cpu().numpy(), grad, ran
