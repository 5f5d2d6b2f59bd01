"""Hugging Face transformers' ``sigmoid_focal_loss`` (DETR-family training).

``transformers/loss/loss_for_object_detection.py`` (read at 5.24.0) is torchvision's body:
``prob = sigmoid(x)``, ``p_t = prob*t + (1-prob)*(1-t)``, ``BCE * (1 - p_t)**gamma``, alpha
applied when ``alpha >= 0`` (so alpha < 0 switches it off), then ``loss.mean(1).sum() / num_boxes``:
there is no 'none': the adapter's 'none' calls it on each element alone
(``per_element``, vmapped, ``num_boxes=1``).  Laid out as (n, 1), ``mean(1)`` is the identity, so ``num_boxes=1`` is
the spec's 'sum', ``num_boxes=n`` its 'mean' and ``num_boxes=max(1, #positives)`` its
'normalized' (DETR passes the number of target boxes, clamped to 1).
"""

from __future__ import annotations

from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import per_element
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


class Transformers(TorchAdapter):
    """``transformers.loss.loss_for_object_detection.sigmoid_focal_loss``."""

    name = "transformers"
    implementation = "transformers.loss.loss_for_object_detection.sigmoid_focal_loss"
    package = "transformers"
    module = "transformers.loss.loss_for_object_detection"
    convention = "torchvision's formula; alpha off by alpha < 0; loss.mean(1).sum() / num_boxes ('none': per element)"

    capabilities = Capabilities(
        "transformers sigmoid_focal_loss",
        soft_targets=("canonical",),
        reductions=("none", "sum", "mean", "normalized"),
        convention="transformers.loss.loss_for_object_detection.sigmoid_focal_loss",
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from transformers.loss.loss_for_object_detection import sigmoid_focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = -1.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        if variant.reduction == "none":
            return per_element(lambda xi, ti: sigmoid_focal_loss(xi, ti, 1, alpha=alpha, gamma=variant.gamma), x, t)
        n = x.numel()
        num_boxes = {"sum": 1, "mean": n, "normalized": max(1, int((t == 1).sum()))}[variant.reduction]
        return sigmoid_focal_loss(x.reshape(n, 1), t.reshape(n, 1), num_boxes, alpha=alpha, gamma=variant.gamma)


def adapters() -> list[Adapter]:
    return [Transformers()]
