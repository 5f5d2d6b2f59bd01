"""Adapters for focalspec's own PyTorch implementation and for torchvision's sigmoid focal loss.

``focalspec-torch`` claims every variant of the spec (it is ``focalspec.kernels.torch_loss``); ``torchvision``
claims what ``torchvision.ops.sigmoid_focal_loss`` can express: sigmoid on logits,
canonical soft targets, alpha as a float or switched off (alpha < 0, here -1), reductions
none/sum/mean.  Everything else is a reason from ``supports``, never a run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from focalspec.adapters.backends.torch_backend import torch_module
from focalspec.adapters.base import CLIP_UPPER_REASON, one_line, own_impl_kwargs
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


class FocalspecTorchAdapter(TorchAdapter):
    """focalspec's own PyTorch implementation (``focalspec.kernels.torch_loss``)."""

    name = "focalspec-torch"
    implementation = "focalspec.kernels.torch_loss"
    convention = "focalspec"
    modes = ("eager", "compiled")
    name_errors = False
    clip_upper_reason = CLIP_UPPER_REASON

    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        from focalspec.kernels import torch_loss as impl_torch

        fn = impl_torch.sigmoid_focal_loss if variant.activation == "sigmoid" else impl_torch.softmax_focal_loss
        kw = own_impl_kwargs(variant)

        def loss(x: Any, t: Any) -> Any:
            return fn(x, t, **kw)

        return loss


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


def own_torch() -> FocalspecTorchAdapter:
    return FocalspecTorchAdapter()


def torchvision_adapter() -> TorchvisionAdapter:
    return TorchvisionAdapter()
