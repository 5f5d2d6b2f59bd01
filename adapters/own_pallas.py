"""Adapter for focalspec's own Pallas kernel (``focalspec.kernels.pallas_kernel``).

On CPU the kernel runs under ``pallas_call(interpret=True)``: mode ``pallas-interpret``, the
only mode claimed there, never reported as a GPU run.  On a GPU it runs compiled in mode
``eager``.  ``Output.ran`` records the launch (``pallas_launch``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from focalspec.adapters.base import Adapter, failure
from focalspec.adapters.capabilities import fused_kernel_capabilities
from focalspec.adapters.own_jax import _JaxAdapter
from focalspec.spec.variant import Variant

INTERPRET = "pallas-interpret"


class FocalspecPallasAdapter(_JaxAdapter):
    """The fused Pallas kernel with its custom_vjp."""

    name = "focalspec-pallas"
    implementation = "focalspec.kernels.pallas_kernel"
    convention = "focalspec"
    capabilities = fused_kernel_capabilities("the fused Pallas kernel")
    _interpret = True

    @property
    def modes(self) -> tuple[str, ...]:  # type: ignore[override]
        """pallas-interpret; and eager (the compiled kernel) where a GPU is there to run it."""
        if self.unavailable_reason() or "cuda" not in self.devices():
            return (INTERPRET,)
        return ("eager", INTERPRET)

    def unavailable_reason(self) -> str | None:
        pallas = "jax.experimental.pallas"
        return super().unavailable_reason() or failure(
            lambda: importlib.import_module(pallas), pallas + " cannot be imported: {err}"
        )

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        reason = super().supports(variant, dtype, device, mode)
        if reason:
            return reason
        want = INTERPRET if device == "cpu" else "eager"
        if mode != want:
            return f"{self.name} runs on {device} in mode {want} only"
        return None

    def _function(self, variant: Variant, mode: str, want_grad: bool, x: Any, t: Any) -> Callable[..., Any]:
        self._interpret = mode == INTERPRET  # read by _loss_fn (the base class caches per mode)
        return super()._function(variant, mode, want_grad, x, t)

    def _loss_fn(self, variant: Variant) -> Callable[[Any, Any], Any]:
        from focalspec.kernels import pallas_kernel as kp

        alpha = None if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        gamma, reduction, interpret = variant.gamma, variant.reduction, self._interpret
        return lambda x, t: kp.sigmoid_focal_loss(
            x, t, alpha=alpha, gamma=gamma, reduction=reduction, interpret=interpret
        )

    def _extra_ran(self, dtype: str) -> dict[str, Any]:
        from focalspec.kernels import pallas_kernel as kp

        extra: dict[str, Any] = {"pallas_launch": kp.last_mode()}
        if dtype in ("bfloat16", "float16"):
            extra["compute_dtype"] = "float32"
        return extra


def own_pallas() -> Adapter:
    """Factory for the registry (``focalspec.adapters.own_pallas:own_pallas``)."""
    return FocalspecPallasAdapter()
