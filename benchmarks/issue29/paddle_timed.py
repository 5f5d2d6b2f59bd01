"""The own Paddle kernel as it was before the speed work of 2026-12-06, timed in the same run
as today's (both adapters now have a native timing path, ``_PaddleAdapter.timed``)::

    PYTHONPATH=benchmarks/issue29 focalspec bench --adapter focalspec-paddle paddle paddle_timed:adapters ...
"""

from __future__ import annotations

from typing import Any

from old_adapters import old_kernel

from focalspec.adapters.base import Adapter, own_impl_kwargs
from focalspec.adapters.own_paddle import FocalspecPaddle
from focalspec.spec.variant import Variant

BEFORE = "66558df"  # focalspec.kernels.paddle_loss before the speed work of 2026-12-06


class FocalspecPaddleBefore(FocalspecPaddle):
    """The own kernel at BEFORE (``git show`` of this checkout)."""

    name = f"focalspec-paddle-{BEFORE}"
    implementation = f"focalspec.kernels.paddle_loss@{BEFORE}"

    def _loss(self, variant: Variant, x: Any, t: Any) -> Any:
        return old_kernel("paddle_loss", BEFORE).sigmoid_focal_loss(x, t, **own_impl_kwargs(variant))


def adapters() -> list[Adapter]:
    return [FocalspecPaddleBefore()]
