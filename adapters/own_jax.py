"""JAX adapters: the shared base (``_JaxAdapter``) and focalspec's own (``focalspec.kernels.jax_loss``);
optax subclasses the base (``thirdparty/optax_adapter.py``).

JAX is imported lazily and, the first time an adapter touches it, configured for honest
measurements: ``jax_enable_x64`` (float64 arrays otherwise silently become float32) and
``jax_default_matmul_precision='highest'`` (no TF32/bf16 passes inside a float32 claim).
Both settings are process-wide; every Output records them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends.jax_backend import _CONFIGURED, jax_devices, jax_module, np_dtype
from focalspec.adapters.base import (
    CLIP_UPPER_REASON,
    DTYPES,
    Adapter,
    Output,
    Timed,
    failure,
    framework_errors,
    own_impl_kwargs,
    version_of,
)
from focalspec.spec.variant import Variant

_jax = jax_module  # the configured jax (tests and the Pallas adapter use this name)

class _JaxAdapter(Adapter):
    """Shared plumbing: device placement, jit cache, gradient of ``loss.sum()``, timing."""

    framework = "jax"
    dtypes = DTYPES
    modes = ("eager", "compiled")

    def __init__(self) -> None:
        self._jitted: dict[tuple, Callable[..., Any]] = {}

    # --- what subclasses provide

    def _loss_fn(self, variant: Variant) -> Callable[[Any, Any], Any]:
        """A function (inputs, targets) -> loss calling the implementation under test."""
        raise NotImplementedError

    def _extra_ran(self, dtype: str) -> dict[str, Any]:
        return {}

    # --- Adapter interface

    def unavailable_reason(self) -> str | None:
        return failure(_jax, "jax is not usable: {err}")

    def framework_version(self) -> str | None:
        return version_of(_jax)

    def devices(self) -> tuple[str, ...]:
        return jax_devices()

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if variant.clip_upper is not None:
            return CLIP_UPPER_REASON
        return self.request_reason(dtype, device, mode) or self.variant_reason(variant)

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        jax = _jax()
        with framework_errors():
            x, t = self._place(variant, inputs, targets, dtype, device)
            fn = self._function(variant, mode, want_grad, x, t)
            start = time.perf_counter()
            out = jax.block_until_ready(fn(x, t))
            seconds = time.perf_counter() - start
        loss, grad = out if want_grad else (out, None)
        return Output(
            loss=np.asarray(loss).astype(np.float64),
            grad=None if grad is None else np.asarray(grad).astype(np.float64),
            ran=self._ran(device, mode, dtype, call_seconds=seconds),
        )

    def timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str, mode: str,
        backward: bool,
    ) -> Timed:  # fmt: skip
        jax = _jax()
        with framework_errors():
            placed = [self._place(variant, s, targets, dtype, device) for s in input_sets]
            xs = [x for x, _ in placed]
            t = placed[0][1]
            fn = self._function(variant, mode, backward, xs[0], t)
            k = len(xs)

            def step(i: int) -> Any:
                return fn(xs[i % k], t)

            start = time.perf_counter()
            jax.block_until_ready(step(0))
            compile_seconds = time.perf_counter() - start

        def to_numpy(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
            loss, grad = out if backward else (out, None)
            return np.asarray(loss).astype(np.float64), None if grad is None else np.asarray(grad).astype(np.float64)

        return Timed(
            step=step,
            sync=jax.block_until_ready,
            to_numpy=to_numpy,
            compile_seconds=compile_seconds,
            ran=self._ran(device, mode, dtype, backward=backward),
        )

    # --- helpers

    def _device(self, device: str) -> Any:
        jax = _jax()
        return jax.devices("gpu" if device == "cuda" else "cpu")[0]

    def _place(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str) -> tuple:
        """Exact conversion (the values are dtype-exact) and placement on the device."""
        jax = _jax()
        dev = self._device(device)
        x = np.asarray(inputs, dtype=np.float64).astype(np_dtype(dtype))
        tarr = np.asarray(targets)
        if variant.activation == "softmax" and tarr.shape == x.shape[:-1] and tarr.dtype.kind in "iub":
            t = tarr.astype(np.int32)
        else:
            t = tarr.astype(np.float64).astype(np_dtype(dtype))
        return jax.device_put(x, dev), jax.device_put(t, dev)

    def _function(self, variant: Variant, mode: str, want_grad: bool, x: Any, t: Any) -> Callable[..., Any]:
        """The evaluation (loss, or (loss, d sum(loss)/d inputs)); jitted ones are cached per
        variant, mode, shapes and dtypes."""
        key = (variant, mode, want_grad, x.shape, str(x.dtype), t.shape, str(t.dtype), str(next(iter(x.devices()))))
        if key in self._jitted:
            return self._jitted[key]
        jax = _jax()
        loss_fn = self._loss_fn(variant)
        if want_grad:

            def total(a: Any, b: Any) -> tuple[Any, Any]:
                loss = loss_fn(a, b)
                return loss.sum(), loss

            vg = jax.value_and_grad(total, has_aux=True)

            def fn(a: Any, b: Any) -> tuple[Any, Any]:
                (_, loss), grad = vg(a, b)
                return loss, grad

        else:
            fn = loss_fn
        if mode == "compiled":
            fn = jax.jit(fn)
        self._jitted[key] = fn
        return fn

    def _ran(self, device: str, mode: str, dtype: str, **extra: Any) -> dict[str, Any]:
        jax = _jax()
        dev = self._device(device)
        return {
            "framework": "jax",
            "version": jax.__version__,
            "implementation": self.implementation,
            "device": f"{dev.platform}:{dev.id} {dev.device_kind}",
            "mode": mode,
            "dtype": dtype,
            "compiler": "jax.jit (XLA)" if mode == "compiled" else None,
            **_CONFIGURED,
            **self._extra_ran(dtype),
            **extra,
        }


class OwnJaxAdapter(_JaxAdapter):
    """focalspec's own JAX implementation (``focalspec.kernels.jax_loss``): every Variant."""

    name = "focalspec-jax"
    implementation = "focalspec.kernels.jax_loss"
    convention = "focalspec"

    def _loss_fn(self, variant: Variant) -> Callable[[Any, Any], Any]:
        from focalspec.kernels import jax_loss as impl_jax

        fn = impl_jax.sigmoid_focal_loss if variant.activation == "sigmoid" else impl_jax.softmax_focal_loss
        kw = own_impl_kwargs(variant)
        return lambda x, t: fn(x, t, **kw)

    def _extra_ran(self, dtype: str) -> dict[str, Any]:
        return {"compute_dtype": "float32"} if dtype in ("bfloat16", "float16") else {}


def own_jax() -> Adapter:
    """Factory for the registry (``focalspec.adapters.own_jax:own_jax``)."""
    return OwnJaxAdapter()
