"""The two Paddle adapters with a native timing path, for ``focalspec bench`` (issue 29).

``adapters/paddle_adapters.py`` has no ``prepare_timed`` yet (the bench listed both as 'no native
timing path'); until it does, these subclasses add one, computing exactly what the adapters'
``run`` computes (the same ``_loss``, the gradient of sum(loss) by ``paddle.grad``), with the input
sets placed once::

    PYTHONPATH=benchmarks/issue29 focalspec bench --adapter paddle_timed:adapters ...

Paddle's eager ops return when the result is computed on the CPU, so ``sync`` has nothing to wait
for; ``to_numpy`` reads the loss (and gradient) of the last repetition for the correctness check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from old_adapters import old_kernel

from focalspec.adapters.base import Adapter, Timed
from focalspec.adapters.paddle_adapters import FocalspecPaddle, PaddleSigmoid, paddle_module
from focalspec.spec.variant import Variant


def paddle_timed(
    adapter: Any, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, *rest: Any
) -> Timed:
    """Inputs placed once as paddle tensors of ``dtype``; one step = loss (+ paddle.grad of its sum)."""
    dtype, device, mode, backward = rest  # as Adapter.prepare_timed
    adapter.require_supported(variant, dtype, device, mode, input_sets)
    paddle = paddle_module()
    xs = []
    for s in input_sets:
        x = paddle.to_tensor(np.asarray(s, dtype=np.float64)).astype(dtype)
        x.stop_gradient = not backward
        xs.append(x)
    t = paddle.to_tensor(np.asarray(targets, dtype=np.float64)).astype(dtype)

    def step(i: int) -> Any:
        x = xs[i % len(xs)]
        loss = adapter._loss(variant, x, t)
        if not backward:
            return loss, None
        (g,) = paddle.grad(paddle.sum(loss), [x])
        return loss, g

    def to_numpy(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
        loss, g = out
        return loss.astype("float64").numpy(), None if g is None else g.astype("float64").numpy()

    return Timed(step=step, sync=lambda out: None, to_numpy=to_numpy, ran={"device_name": "cpu"})


class TimedFocalspecPaddle(FocalspecPaddle):
    def prepare_timed(self, variant, input_sets, targets, dtype, device="cpu", mode="eager", backward=False):  # type: ignore[no-untyped-def]
        return paddle_timed(self, variant, input_sets, targets, dtype, device, mode, backward)


class TimedPaddleSigmoid(PaddleSigmoid):
    def prepare_timed(self, variant, input_sets, targets, dtype, device="cpu", mode="eager", backward=False):  # type: ignore[no-untyped-def]
        return paddle_timed(self, variant, input_sets, targets, dtype, device, mode, backward)


BEFORE = "66558df"  # focalspec.kernels.paddle_loss before the speed work of 2026-12-06


class TimedFocalspecPaddleBefore(TimedFocalspecPaddle):
    """The own kernel as it was at BEFORE, timed in the same run (``git show`` of this checkout)."""

    name = f"focalspec-paddle-{BEFORE}"
    implementation = f"focalspec.kernels.paddle_loss@{BEFORE}"

    def _loss(self, variant: Variant, x: Any, t: Any) -> Any:
        from focalspec.adapters.base import own_impl_kwargs

        return old_kernel("paddle_loss", BEFORE).sigmoid_focal_loss(x, t, **own_impl_kwargs(variant))


def adapters() -> list[Adapter]:
    return [TimedFocalspecPaddle(), TimedFocalspecPaddleBefore(), TimedPaddleSigmoid()]
