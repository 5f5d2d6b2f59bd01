"""Adapter for focalspec's own TensorFlow implementation (``focalspec.kernels.tf_loss``).

TensorFlow is imported on first use only: listing adapters must not cost the 5 s import.
Float32 runs with TensorFloat-32 disabled (a float32 claim with 10-bit matmuls would be
false); the flag is recorded in ``Output.ran``.  Compiled mode is
``tf.function(jit_compile=True)`` (XLA), traced once per variant/shape/dtype/device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends.tf_backend import (
    sync_tf,
    tf_device_name,
    tf_devices,
    tf_exact,
    tf_missing,
    tf_module,
    tf_ran,
)
from focalspec.adapters.base import (
    CLIP_UPPER_REASON,
    DTYPES,
    Adapter,
    AdapterError,
    Output,
    Timed,
    framework_errors,
    own_impl_kwargs,
)
from focalspec.spec.variant import Variant


class FocalspecTFAdapter(Adapter):
    """focalspec's own TensorFlow implementation; claims every variant of the spec."""

    name = "focalspec-tf"
    implementation = "focalspec.kernels.tf_loss"
    framework = "tensorflow"
    convention = "focalspec"
    dtypes = DTYPES
    modes = ("eager", "compiled")

    def __init__(self) -> None:
        self._compiled: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def unavailable_reason(self) -> str | None:
        return tf_missing()

    def framework_version(self) -> str | None:
        return None if tf_missing() else tf_module().__version__

    def devices(self) -> tuple[str, ...]:
        return tf_devices()

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if variant.clip_upper is not None:
            return CLIP_UPPER_REASON
        return self.request_reason(dtype, device, mode)

    # ------------------------------------------------------------------ building blocks

    def _function(self, variant: Variant, want_grad: bool) -> Callable[..., Any]:
        tf = tf_module()
        from focalspec.kernels import tf_loss as impl_tf

        loss_fn = impl_tf.sigmoid_focal_loss if variant.activation == "sigmoid" else impl_tf.softmax_focal_loss
        kwargs = own_impl_kwargs(variant)

        def fn(x: Any, t: Any) -> tuple[Any, ...]:
            if not want_grad:
                return (loss_fn(x, t, **kwargs),)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_fn(x, t, **kwargs)
                total = tf.reduce_sum(loss)
            return loss, tape.gradient(total, x)

        return fn

    def _callable(
        self,
        variant: Variant,
        shape: tuple[int, ...],
        tshape: tuple[int, ...],
        dtype: str,
        device: str,
        mode: str,
        want_grad: bool,
    ) -> Callable[..., Any]:
        fn = self._function(variant, want_grad)
        if mode == "eager":
            return fn
        key = (variant, shape, tshape, dtype, device, want_grad)
        if key not in self._compiled:
            self._compiled[key] = tf_module().function(fn, jit_compile=True)
        return self._compiled[key]

    def _place(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str) -> tuple[Any, Any]:
        tf = tf_module()
        x = tf_exact(inputs, dtype)
        tarr = np.asarray(targets)
        if variant.activation == "softmax" and tarr.dtype.kind in "iu":
            t = tf.constant(tarr.astype(np.int64))
        else:
            t = tf_exact(tarr, dtype)
        return x, t

    # ------------------------------------------------------------------ interface

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        tf = tf_module()
        with framework_errors():
            with tf.device(tf_device_name(device)):
                x, t = self._place(variant, inputs, targets, dtype)
                fn = self._callable(variant, tuple(x.shape), tuple(t.shape), dtype, device, mode, want_grad)
                out = fn(x, t)
                loss = np.asarray(out[0].numpy(), dtype=np.float64)
                grad = np.asarray(out[1].numpy(), dtype=np.float64) if want_grad and out[1] is not None else None
        if want_grad and grad is None:
            raise AdapterError("TensorFlow returned no gradient for the inputs")
        return Output(loss=loss, grad=grad, ran=tf_ran(device, mode, dtype))

    def timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str, mode: str,
        backward: bool,
    ) -> Timed:  # fmt: skip
        return tf_timed(self, variant, input_sets, targets, dtype, device, mode, backward)


def tf_timed(
    adapter: Any,
    variant: Variant,
    input_sets: list[np.ndarray],
    targets: np.ndarray,
    dtype: str,
    device: str,
    mode: str,
    backward: bool,
) -> Timed:
    """A ``Timed`` over an adapter with ``_place`` and ``_callable`` (shared with Keras on TF)."""
    tf = tf_module()
    with framework_errors():
        with tf.device(tf_device_name(device)):
            placed = [adapter._place(variant, xs, targets, dtype) for xs in input_sets]
            xs = [p[0] for p in placed]
            t = placed[0][1]
            fn = adapter._callable(variant, tuple(xs[0].shape), tuple(t.shape), dtype, device, mode, backward)
            start = time.perf_counter()
            first = fn(xs[0], t)
            sync_tf(first)
            compile_seconds = time.perf_counter() - start
    n = len(xs)
    dev = tf_device_name(device)

    def step(i: int) -> Any:
        with tf.device(dev):
            return fn(xs[i % n], t)

    def to_numpy(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
        loss = np.asarray(out[0].numpy(), dtype=np.float64)
        grad = np.asarray(out[1].numpy(), dtype=np.float64) if len(out) > 1 and out[1] is not None else None
        return loss, grad

    return Timed(
        step=step,
        sync=sync_tf,
        to_numpy=to_numpy,
        compile_seconds=compile_seconds if mode == "compiled" else 0.0,
        ran=tf_ran(device, mode, dtype, first_call_seconds=compile_seconds),
    )


def focalspec_tf() -> Adapter:
    return FocalspecTFAdapter()
