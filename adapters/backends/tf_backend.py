"""TensorFlow, once: imported on first use (the import costs 5 s) with TensorFloat-32 off (a float32
claim with 10-bit matmuls would be false), exact placement (converted in numpy: TF's own cast
flushes subnormals), devices, run facts, and the callable's backend (compiled mode is
``tf.function(jit_compile=True)``, XLA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends import (
    CallBackend,
    call_for_probe,
    describe_exc,
    not_installed,
    observed,
    returned_dtype,
)
from focalspec.adapters.base import AdapterError

_TF: Any = None


def tf_module() -> Any:
    """TensorFlow, imported once, with TF32 off and its C++ log chatter quietened."""
    global _TF
    if _TF is None:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
        _TF = tf
    return _TF


def tf_missing() -> str | None:
    """Why TensorFlow cannot be used here, or None."""
    return not_installed("tensorflow", "tensorflow")


def tf_devices() -> tuple[str, ...]:
    tf = tf_module()
    return ("cpu", "cuda") if tf.config.list_physical_devices("GPU") else ("cpu",)


def tf_device_name(device: str) -> str:
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def tf_dtype(dtype: str) -> Any:
    return getattr(tf_module(), dtype)


def tf_exact(values: Any, dtype: str) -> Any:
    """A TF tensor holding exactly these dtype-exact values.  Converted in numpy: TF's own
    float64 -> float32 cast flushes subnormals to zero on CPU, so a subnormal test input
    would reach the implementation as 0 and its error be charged to the implementation."""
    return tf_module().constant(np.asarray(values, dtype=np.float64).astype(tf_dtype(dtype).as_numpy_dtype))


def tf_ran(device: str, mode: str, dtype: str, **extra: Any) -> dict[str, Any]:
    tf = tf_module()
    info: dict[str, Any] = {
        "framework": "tensorflow",
        "version": tf.__version__,
        "device": _device_description(device),
        "mode": mode,
        "dtype": dtype,
        "jit_compile": mode == "compiled",
        "tensor_float_32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
    }
    info.update(extra)
    return info


def _device_description(device: str) -> str:
    tf = tf_module()
    if device == "cuda":
        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        return f"GPU:0 {details.get('device_name', '')}".strip()
    import platform

    return f"CPU ({platform.processor() or platform.machine()})"


def sync_tf(out: Any) -> None:
    """Block until ``out`` is computed (eager TF dispatches GPU work asynchronously)."""
    tf = tf_module()
    sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
    if sync is not None:
        sync()
        return
    for item in tf.nest.flatten(out):
        if item is not None:
            item.numpy()


class TfCallBackend(CallBackend):
    framework = "tensorflow"

    def __init__(self) -> None:
        tf = tf_module()  # TF32 off
        self.tf = tf
        self._compiled: dict[Any, Callable[..., Any]] = {}
        self.dtypes = {"float64": tf.float64, "float32": tf.float32, "bfloat16": tf.bfloat16, "float16": tf.float16}

    def devices(self) -> tuple[str, ...]:
        return tf_devices()

    def warm_up_compiler(self) -> None:
        tf = self.tf

        def value_and_grad(a: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(a)
                total = tf.reduce_sum(a * a)
            return total, tape.gradient(total, a)

        tf.function(value_and_grad, jit_compile=True)(tf.ones(2, tf.float32))

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        tf = self.tf
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            x = tf_exact(inputs, dtype)
            t = tf.constant(np.asarray(targets, dtype=np.int64)) if softmax else tf_exact(targets, dtype)
            out = call_for_probe(call, x, t)
        obs = observed(out, tf.Tensor, "tf.Tensor", {}, {})  # tf tensors are immutable
        if isinstance(out, tf.Tensor):
            obs |= {"dtype": out.dtype.name, "value": tf.cast(out, tf.float64).numpy()}
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        tf = self.tf
        tdt = self.dtypes[dtype]
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            x = tf_exact(inputs, dtype)
            t = tf.constant(np.asarray(targets, dtype=np.int64)) if softmax else tf_exact(targets, dtype)

            def value_and_grad(xx: Any, tt: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(xx)
                    loss = call(xx, tt)
                    if not want_grad or not isinstance(loss, tf.Tensor):
                        return loss, None
                    total = tf.reduce_sum(loss)  # on the tape: a sum taken after it would have no gradient
                return loss, tape.gradient(total, xx)

            if mode == "compiled":
                ck = (key, want_grad)
                if ck not in self._compiled:
                    self._compiled[ck] = tf.function(value_and_grad, jit_compile=True)
                fn = self._compiled[ck]
            else:
                fn = value_and_grad
            try:
                loss, g = fn(x, t)
            except Exception as exc:
                raise AdapterError(describe_exc(exc)) from exc
        if not isinstance(loss, tf.Tensor):
            raise AdapterError(f"the callable returned {type(loss).__name__}, not a tf.Tensor")
        note = returned_dtype(loss.dtype.name, tdt.name)
        grad = None
        if want_grad:
            if g is None:
                raise AdapterError("the returned loss does not depend differentiably on the inputs (gradient None)")
            note = note or returned_dtype(g.dtype.name, tdt.name, "the gradient")
            grad = tf.cast(g, tf.float64).numpy()
        ran = {
            "framework": "tensorflow",
            "version": tf.__version__,
            "device": "GPU:0" if device == "cuda" else "CPU:0",
            "mode": mode,
            "flags": {"tensor_float_32": False} | ({"tf.function": "jit_compile"} if mode == "compiled" else {}),
        } | note
        return tf.cast(loss, tf.float64).numpy(), grad, ran
