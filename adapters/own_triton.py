"""Adapters for Triton kernels: natively on CUDA, under Triton's interpreter on CPU.

A Triton kernel is checked on a CPU-only machine by running it in Triton's interpreter
(numpy executes the kernel's own formulas, masks and reductions; only the GPU's math library
differs, which a CUDA run covers).  That is never passed off as a CUDA run: on CPU the mode
is ``triton-interpret`` (the only mode claimed there), on CUDA it is ``eager`` (the compiled
kernel) unless ``TRITON_INTERPRET=1`` makes every launch interpreted, and ``Output.ran``
records which one ran (``triton_launch``: 'cuda' or 'triton-interpret').

Interpreted kernels are slow (numpy per program): the suite's case sizes are small except the
deep random batches, which stay in budget at the kernel's interpreter block size of 8192.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

from focalspec.adapters.backends.torch_backend import torch_devices, torch_module
from focalspec.adapters.base import CLIP_UPPER_REASON
from focalspec.adapters.capabilities import fused_kernel_capabilities
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant

INTERPRET = "triton-interpret"


def triton_missing() -> str | None:
    """Why Triton cannot be used here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install focalspec[torch])"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (it comes with the CUDA builds of torch on Linux: pip install triton)"
    try:
        import triton  # noqa: F401
        from triton.runtime.interpreter import InterpretedFunction  # noqa: F401
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return f"triton cannot be imported: {type(exc).__name__}: {text[0] if text else ''}"
    return None


def interpret_everywhere() -> bool:
    """TRITON_INTERPRET=1: every launch, CUDA tensors included, runs in the interpreter."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def triton_mode_reason(name: str, device: str, mode: str) -> str | None:
    """The one mode a (device) runs in: triton-interpret on CPU, eager (native) on CUDA."""
    want = INTERPRET if device == "cpu" or interpret_everywhere() else "eager"
    if mode != want:
        where = "under TRITON_INTERPRET=1" if device != "cpu" else "on CPU"
        return f"{name} runs {where} in mode {want} only (a Triton kernel has no {mode} mode there)"
    return None


class TritonAdapter(TorchAdapter):
    """Common part of the Triton adapters: modes by device, the launch mode in ``Output.ran``."""

    @property
    def modes(self) -> tuple[str, ...]:  # type: ignore[override]
        """triton-interpret; and eager (the compiled kernel) where CUDA is there to run it."""
        if self.unavailable_reason() or interpret_everywhere() or "cuda" not in torch_devices():
            return (INTERPRET,)
        return ("eager", INTERPRET)

    name_errors = False
    clip_upper_reason = CLIP_UPPER_REASON

    def _probe(self) -> str | None:
        return triton_missing()

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        return super().supports(variant, dtype, device, mode) or triton_mode_reason(self.name, device, mode)

    def _loss_fn(self, variant: Variant, dtype: str, device: str, mode: str) -> Callable[[Any, Any], Any]:
        return self.make_loss(variant)  # the kernel is compiled by Triton, or interpreted: never torch.compile

    def launch_mode(self) -> str:
        """'cuda' or 'triton-interpret' for the last call (subclasses ask their kernel)."""
        raise NotImplementedError

    def ran_extra(self) -> dict[str, Any]:
        import triton

        return {"triton_version": triton.__version__, "triton_launch": self.launch_mode()}

    def framework_version(self) -> str | None:
        if self.unavailable_reason():
            return None
        import triton

        return f"torch {torch_module().__version__}, triton {triton.__version__}"


class FocalspecTritonAdapter(TritonAdapter):
    """focalspec's own fused Triton kernel (``focalspec.kernels.triton_kernel``)."""

    name = "focalspec-triton"
    implementation = "focalspec.kernels.triton_kernel"
    convention = "focalspec"

    capabilities = fused_kernel_capabilities("the fused Triton kernel")

    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        from focalspec.kernels import triton_kernel as kt

        alpha = None if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        gamma, reduction = variant.gamma, variant.reduction

        def loss(x: Any, t: Any) -> Any:
            # check=False: the suite's targets are in [0, 1] by construction, and the range check is
            # three passes over the targets and a host sync inside every timed call
            return kt.sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction, check=False)

        return loss

    def launch_mode(self) -> str:
        from focalspec.kernels import triton_kernel as kt

        return kt.last_mode()

    def bytes_per_element(self, variant: Variant, dtype: str, pass_: str) -> float:
        """Bytes per element the kernel moves, as the bench calls it (the gradient through autograd
        with upstream 1): forward reads logits and targets (and writes the loss for 'none');
        forward+backward also writes the gradient in the same pass -- 12 B for float32 -- and only
        'none' (a per-element upstream gradient) and 'normalized' (1 / count after the pass) add
        the backward's multiply: read the saved gradient, write the result."""
        item = 8 if dtype == "float64" else 4 if dtype == "float32" else 2
        total = 2 * item + (item if variant.reduction == "none" else 0)
        if pass_ == "forward_backward":
            total += item
            if variant.reduction in ("none", "normalized"):
                total += 2 * item
        return float(total)


def own_triton() -> FocalspecTritonAdapter:
    return FocalspecTritonAdapter()
