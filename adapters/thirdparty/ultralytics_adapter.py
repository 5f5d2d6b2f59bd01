"""ultralytics' ``FocalLoss`` (YOLO training).

``ultralytics/utils/loss.py`` (read at 8.4.190): ``BCE * (1.0 - p_t)**gamma`` with
``p_t = t*sigmoid(x) + (1-t)*(1-sigmoid(x))`` (the canonical form, 1 - p_t formed by
subtraction), alpha applied only when ``(alpha > 0).any()`` (alpha = 0 switches it off; it is
stored as ``torch.tensor(alpha)``, float32, then cast to the input dtype), and
``loss.mean(1).sum()``: no 'none' (the adapter's 'none' calls it on each element alone,
``per_element``, vmapped).  Laid out as (n, 1) that is the spec's 'sum', as (1, n)
its 'mean'.  Its default gamma is 1.5.  ``import ultralytics`` needs cv2
(opencv-python-headless); the rest of its dependencies are not needed for the loss.
"""

from __future__ import annotations

import os
from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import per_element
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


class Ultralytics(TorchAdapter):
    """``ultralytics.utils.loss.FocalLoss``."""

    name = "ultralytics"
    implementation = "ultralytics.utils.loss.FocalLoss"
    package = "ultralytics"
    module = "ultralytics.utils.loss"
    convention = "canonical; alpha off by alpha <= 0; loss.mean(1).sum() ('none': per element); default gamma 1.5"

    def _probe(self) -> str | None:
        # ultralytics prints a settings banner and writes a settings file on first import
        os.environ.setdefault("YOLO_VERBOSE", "False")
        return super()._probe()

    capabilities = Capabilities(
        "ultralytics FocalLoss", soft_targets=("canonical",), convention="ultralytics.utils.loss.FocalLoss"
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from ultralytics.utils.loss import FocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = 0.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        loss_fn = FocalLoss(gamma=variant.gamma, alpha=alpha)
        if variant.reduction == "none":
            return per_element(loss_fn, x, t)
        n = x.numel()
        shape = (n, 1) if variant.reduction == "sum" else (1, n)
        return loss_fn(x.reshape(shape), t.reshape(shape))


def adapters() -> list[Adapter]:
    return [Ultralytics()]
