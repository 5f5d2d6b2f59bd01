"""PaddlePaddle, once: imported on first use and set to the CPU (a GPU build would say ``gpu``), and
the callable's backend (eager only; gradients are ``paddle.grad`` of the summed loss)."""

from __future__ import annotations

from typing import Any

import numpy as np

from focalspec.adapters.backends import CallBackend, probe_mutable, returned_dtype, tensor_loss
from focalspec.adapters.base import AdapterError

_PADDLE: list[Any] = []


def paddle_module() -> Any:
    """paddle, imported once, on the CPU."""
    if not _PADDLE:
        import paddle  # type: ignore[import-not-found,import-untyped,unused-ignore]

        paddle.set_device("cpu")
        _PADDLE.append(paddle)
    return _PADDLE[0]


class PaddleCallBackend(CallBackend):
    """PaddlePaddle on the CPU, eager only (float64/float32: what paddle's CPU kernels offer);
    the gradient is ``paddle.grad`` of the summed loss."""

    framework = "paddle"

    def __init__(self) -> None:
        self.paddle = paddle_module()

    def devices(self) -> tuple[str, ...]:
        return ("cpu",)

    def _tensors(self, inputs: np.ndarray, targets: np.ndarray, dtype: str, softmax: bool, grad: bool) -> Any:
        paddle = self.paddle
        if dtype not in ("float64", "float32"):
            raise AdapterError(f"paddle on the CPU is tested in float64 and float32, not {dtype}")
        x = paddle.to_tensor(np.asarray(inputs, dtype=np.float64)).astype(dtype)
        x.stop_gradient = not grad
        if softmax:
            t = paddle.to_tensor(np.asarray(targets, dtype=np.int64))
        else:
            t = paddle.to_tensor(np.asarray(targets, dtype=np.float64)).astype(dtype)
        return x, t

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        paddle = self.paddle
        x, t = self._tensors(inputs, targets, dtype, softmax, grad=False)

        def snapshot() -> dict[str, np.ndarray]:
            return {k: v.astype("float64").numpy().copy() for k, v in (("inputs", x), ("targets", t))}

        out, obs = probe_mutable(call, x, t, snapshot, paddle.Tensor, "paddle.Tensor")
        if isinstance(out, paddle.Tensor):
            obs |= {
                "dtype": str(out.dtype).removeprefix("paddle."),
                "grad_attached": not bool(out.stop_gradient),
                "value": out.astype("float64").numpy(),
            }
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        paddle = self.paddle
        if mode != "eager":
            raise AdapterError("paddle callables are tested in eager mode only")
        x, t = self._tensors(inputs, targets, dtype, softmax, grad=want_grad)
        loss = tensor_loss(lambda: call(x, t), paddle.Tensor, "paddle.Tensor")
        note = returned_dtype(str(loss.dtype).removeprefix("paddle."), dtype)
        grad = None
        if want_grad:
            if loss.stop_gradient:
                raise AdapterError("the returned loss does not depend differentiably on the inputs (stop_gradient)")
            (g,) = paddle.grad(paddle.sum(loss), [x], allow_unused=True)
            grad = np.zeros(x.shape) if g is None else g.astype("float64").numpy()
        ran = {"framework": "paddle", "version": str(paddle.__version__), "device": "cpu", "mode": "eager"} | note
        return loss.astype("float64").numpy(), grad, ran
