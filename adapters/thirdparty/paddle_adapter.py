"""Paddle's own ``paddle.nn.functional.sigmoid_focal_loss`` through the shared Paddle base (see
``own_paddle.py`` for how paddle is run and what its API computes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.own_paddle import _paddle, _PaddleAdapter
from focalspec.spec.variant import Variant


class PaddleSigmoid(_PaddleAdapter):
    """``paddle.nn.functional.sigmoid_focal_loss``, called unmodified."""

    name = "paddle"
    implementation = "paddle.nn.functional.sigmoid_focal_loss"
    convention = "canonical; alpha always applied; 'normalized' = sum with normalizer = max(1, #positives)"

    capabilities = Capabilities(
        "paddle sigmoid_focal_loss",
        soft_targets=("canonical",),
        reductions=("none", "sum", "mean", "normalized"),
        alpha_off=False,
        convention="paddle.nn.functional.sigmoid_focal_loss",
    )

    def _loss(self, variant: Variant, x: Any, t: Any) -> Any:
        paddle = _paddle()
        f = paddle.nn.functional.sigmoid_focal_loss
        kw = {"alpha": float(variant.alpha), "gamma": float(variant.gamma)}  # type: ignore[arg-type]
        shape = list(x.shape)
        if len(shape) < 2:  # 0-D and 1-D inputs raise in paddle 3.3.1 (F-PADDLE-1): pass them as (1, n)
            x, t = x.reshape([1, -1]), t.reshape([1, -1])
        if variant.reduction == "normalized":
            npos = max(1.0, float(np.sum(t.numpy() == 1)))
            return f(x, t, normalizer=paddle.to_tensor([npos], dtype=x.dtype), reduction="sum", **kw)
        out = f(x, t, reduction=variant.reduction, **kw)
        return out.reshape(shape) if variant.reduction == "none" else out


def adapters() -> list[Adapter]:
    return [PaddleSigmoid()]
