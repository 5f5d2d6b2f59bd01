"""torchvision's ``torchvision.ops.sigmoid_focal_loss``: it claims what that function can express -- sigmoid on
logits, canonical soft targets, alpha as a float or switched off (alpha < 0, here -1), reductions none/sum/mean --
and runs as focalspec's own torch adapter does (eager and compiled), so the two compare one to one."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from focalspec.adapters.backends.torch_backend import torch_module
from focalspec.adapters.base import one_line
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.own_torch import FocalspecTorchAdapter
from focalspec.spec.variant import Variant


class TorchvisionAdapter(FocalspecTorchAdapter):
    """``torchvision.ops.sigmoid_focal_loss``, called unmodified -- and run as focalspec's own is
    (eager and compiled, a stated clip bound refused), so that the two compare one to one."""

    name = "torchvision"
    implementation = "torchvision.ops.sigmoid_focal_loss"
    convention = "torchvision.ops.sigmoid_focal_loss"

    capabilities = Capabilities("torchvision", soft_targets=("canonical",), convention=implementation)

    def _probe(self) -> str | None:
        if super()._probe():
            return super()._probe()
        if importlib.util.find_spec("torchvision") is None:
            return "torchvision is not installed in this environment (pip install torchvision)"
        try:
            import torchvision.ops  # noqa: F401  (a torch/torchvision version mismatch fails here)
        except Exception as exc:
            return f"torchvision cannot be imported: {one_line(exc)}"
        return None

    def framework_version(self) -> str | None:
        if self.unavailable_reason():
            return None
        import torchvision

        return f"torch {torch_module().__version__}, torchvision {torchvision.__version__}"

    def ran_extra(self) -> dict[str, Any]:
        import torchvision

        return {"torchvision_version": torchvision.__version__}

    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        from torchvision.ops import sigmoid_focal_loss

        alpha = -1.0 if variant.alpha is None else float(variant.alpha)
        gamma, reduction = variant.gamma, variant.reduction

        def loss(x: Any, t: Any) -> Any:
            return sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)

        return loss


def torchvision_adapter() -> TorchvisionAdapter:
    return TorchvisionAdapter()
