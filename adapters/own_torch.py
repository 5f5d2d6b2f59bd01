"""The adapter of focalspec's own PyTorch implementation (``focalspec.kernels.torch_loss``): every variant
of the spec, eager and compiled.  torchvision, run the same way, subclasses it
(``thirdparty/torchvision_adapter.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from focalspec.adapters.base import CLIP_UPPER_REASON, own_impl_kwargs
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


def own_torch() -> FocalspecTorchAdapter:
    return FocalspecTorchAdapter()
