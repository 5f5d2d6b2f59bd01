"""The base of the TensorFlow/Keras third-party adapters (focal-loss, tf-models-official): availability,
exact placement, the gradient of sum(loss) by ``tf.GradientTape``, one-line errors."""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

import numpy as np

from focalspec.adapters.backends.tf_backend import tf_exact, tf_module
from focalspec.adapters.base import Adapter, Output, failure, framework_errors, version_of
from focalspec.spec.variant import Variant

KERAS_REDUCTION = {"none": "none", "sum": "sum", "mean": "sum_over_batch_size"}


_tf = tf_module  # TensorFlow from the backend: imported once, TensorFloat-32 off


class FocalLossTF(Adapter):
    """Common machinery of the two ``focal-loss`` adapters."""

    framework = "tensorflow"
    package = "focal-loss"
    module = "focal_loss"
    dtypes: tuple[str, ...] = ("float64", "float32")
    modes = ("eager",)
    name_errors = True

    def __init__(self) -> None:
        self._unavailable: str | bool | None = False

    def unavailable_reason(self) -> str | None:
        if self._unavailable is False:
            why = f"{self.package} is not usable here ({self.module}: {{err}})"
            self._unavailable = failure(lambda: (_tf(), importlib.import_module(self.module)), why)
        return self._unavailable  # type: ignore[return-value]

    def framework_version(self) -> str | None:
        return version_of(_tf)

    def devices(self) -> tuple[str, ...]:
        if self.unavailable_reason():
            return ()
        return ("cpu", "cuda") if _tf().config.list_physical_devices("GPU") else ("cpu",)

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        """The variant computed when asked for ``variant`` (see the module docstring)."""
        return variant

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        return self.request_reason(dtype, device, mode) or self.variant_reason(variant)

    def _loss(self, variant: Variant, x: Any, targets: np.ndarray, dtype: str) -> Any:
        raise NotImplementedError

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        tf = _tf()
        with framework_errors(f"{self.name}: "):
            with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
                x = tf_exact(inputs, dtype)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = self._loss(variant, x, np.asarray(targets), dtype)
                    total = tf.reduce_sum(loss)
                grad = tape.gradient(total, x) if want_grad else None
                if want_grad and grad is None:
                    grad = tf.zeros_like(x)
                loss_np = np.asarray(tf.cast(loss, tf.float64).numpy(), dtype=np.float64)
                grad_np = None if grad is None else np.asarray(tf.cast(grad, tf.float64).numpy(), dtype=np.float64)
                out_dtype = loss.dtype.name
        ran = {
            "framework": "tensorflow",
            "framework_version": self.framework_version(),
            "package": self.package,
            "package_version": self.package_version(),
            "implementation": self.implementation,
            "device": device,
            "mode": "eager",
            "dtype": dtype,
            "output_dtype": out_dtype,
        }
        return Output(loss=loss_np, grad=grad_np, ran=ran)
