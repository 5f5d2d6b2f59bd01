"""PaddlePaddle: focalspec's own Paddle implementation and ``paddle.nn.functional.sigmoid_focal_loss``.

Paddle is imported on first use and set to the CPU (a GPU build would say ``gpu``); gradients
are ``paddle.grad`` of ``sum(loss)``.  The framework API (read at paddlepaddle 3.3.1,
python/paddle/nn/functional/loss.py): ``sigmoid_cross_entropy_with_logits * alpha_t *
(1 - p_t)**gamma`` with ``p_t = p*t + (1-p)*(1-t)`` (1 - p_t by subtraction), alpha always
applied (no off switch), float32/float64 only, reductions none/sum/mean and an optional
``normalizer`` that divides every element first: the spec's 'normalized' is ``reduction='sum'``
with ``normalizer = max(1, #positives)`` (how PaddleDetection's RetinaNet head calls it).
0-D and 1-D inputs raise ``ValueError: ... shape[0] = -1`` in 3.3.1 (``full(paddle.shape(logit))``
in its dynamic-mode branch; finding F-PADDLE-1): the adapter passes them as (1, n).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends.paddle_backend import paddle_module
from focalspec.adapters.base import (
    CLIP_UPPER_REASON,
    Adapter,
    Output,
    Timed,
    failure,
    framework_errors,
    version_of,
)
from focalspec.spec.variant import Variant

_paddle = paddle_module


class _PaddleAdapter(Adapter):
    """Placement (float64 -> dtype is exact), the gradient of sum(loss), one-line errors."""

    framework = "paddle"
    package = "paddlepaddle"
    dtypes = ("float64", "float32")
    modes = ("eager",)

    def unavailable_reason(self) -> str | None:
        return failure(_paddle, "paddle is not usable here ({err}; pip install paddlepaddle)")

    def framework_version(self) -> str | None:
        return version_of(_paddle)

    def devices(self) -> tuple[str, ...]:
        return () if self.unavailable_reason() else ("cpu",)

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        """Both compute the spec's variants as asked (no convention to declare)."""
        return variant

    device_note = "this adapter runs paddle on the CPU"
    name_errors = True

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if variant.clip_upper is not None:
            return CLIP_UPPER_REASON
        return self.request_reason(dtype, device, mode) or self.variant_reason(variant)

    def _loss(self, variant: Variant, x: Any, t: Any) -> Any:
        raise NotImplementedError

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        paddle = _paddle()
        with framework_errors(f"{self.name}: "):
            x = paddle.to_tensor(np.asarray(inputs, dtype=np.float64)).astype(dtype)
            x.stop_gradient = not want_grad
            tn = np.asarray(targets)
            if variant.activation == "softmax" and tn.dtype.kind in "iu":
                t = paddle.to_tensor(tn.astype(np.int64))
            else:
                t = paddle.to_tensor(np.asarray(tn, dtype=np.float64)).astype(dtype)
            loss = self._loss(variant, x, t)
            grad = None
            if want_grad:
                (g,) = paddle.grad(paddle.sum(loss), [x], allow_unused=True)
                grad = np.zeros(x.shape) if g is None else g.astype("float64").numpy()
            out_dtype = str(loss.dtype).removeprefix("paddle.")
            loss_np = loss.astype("float64").numpy()
        ran = {
            "framework": "paddle",
            "framework_version": self.framework_version(),
            "package": self.package,
            "package_version": self.package_version(),
            "implementation": self.implementation,
            "device": "cpu",
            "mode": "eager",
            "dtype": dtype,
            "output_dtype": out_dtype,
        }
        return Output(loss=np.asarray(loss_np, dtype=np.float64), grad=grad, ran=ran)


    def timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str, mode: str,
        backward: bool,
    ) -> Timed:  # fmt: skip
        """Inputs placed once as paddle tensors of ``dtype``; one step = the loss (+ ``paddle.grad`` of its sum),
        exactly what ``evaluate`` computes. Paddle's CPU ops return when done, so ``sync`` waits for nothing."""
        paddle = _paddle()
        xs = []
        for s in input_sets:
            x = paddle.to_tensor(np.asarray(s, dtype=np.float64)).astype(dtype)
            x.stop_gradient = not backward
            xs.append(x)
        t = paddle.to_tensor(np.asarray(targets, dtype=np.float64)).astype(dtype)

        def step(i: int) -> Any:
            x = xs[i % len(xs)]
            loss = self._loss(variant, x, t)
            if not backward:
                return loss, None
            (g,) = paddle.grad(paddle.sum(loss), [x])
            return loss, g

        def to_numpy(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
            loss, g = out
            return loss.astype("float64").numpy(), None if g is None else g.astype("float64").numpy()

        return Timed(step=step, sync=lambda out: None, to_numpy=to_numpy, ran={"device_name": "cpu"})

class FocalspecPaddle(_PaddleAdapter):
    """focalspec's own Paddle implementation (``focalspec.kernels.paddle_loss``)."""

    name = "focalspec-paddle"
    implementation = "focalspec.kernels.paddle_loss"
    convention = "focalspec"

    def variant_reason(self, v: Variant) -> str | None:
        if v.clip_eps is not None:
            return "focalspec.kernels.paddle_loss has no probability clipping"
        if v.activation == "sigmoid" and v.soft_target != "canonical":
            return (f"focalspec.kernels.paddle_loss implements the canonical soft-target form only, "
                    f"not {v.soft_target!r}")
        if v.activation == "softmax" and (v.input_kind != "logits" or v.renormalize):
            return "focalspec.kernels.paddle_loss's softmax takes logits only"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any) -> Any:
        from focalspec.adapters.base import own_impl_kwargs
        from focalspec.kernels import paddle_loss as impl

        fn: Callable[..., Any] = impl.sigmoid_focal_loss if variant.activation == "sigmoid" else impl.softmax_focal_loss
        kw = own_impl_kwargs(variant)
        if isinstance(kw.get("alpha"), tuple):
            kw["alpha"] = list(kw["alpha"])
        return fn(x, t, **kw)


def own_paddle() -> Adapter:
    return FocalspecPaddle()
