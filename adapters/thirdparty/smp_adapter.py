"""segmentation_models_pytorch's ``FocalLoss(mode='binary')``."""

from __future__ import annotations

from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import (
    _binary_targets,
)
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


class Smp(TorchAdapter):
    """``segmentation_models_pytorch.losses.FocalLoss(mode="binary")``: ``pt = exp(-BCE)``,
    ``(1 - pt)^gamma * BCE`` -- the geometric soft-target form.  On probabilities
    (``from_logits=False``) it clamps to [eps, 1-eps] (eps=1e-7 by default) and converts back
    to logits with log(p/(1-p)): declared as the clip convention, hard targets only."""

    name = "smp"
    implementation = "segmentation_models_pytorch.losses.FocalLoss"
    package = "segmentation-models-pytorch"
    module = "segmentation_models_pytorch.losses"
    convention = "geometric soft targets: 1-p_t = 1-exp(-BCE); probs clamped to [1e-7, 1-1e-7]"
    DEFAULT_EPS = 1e-7

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        if variant.activation != "sigmoid":
            return variant
        if variant.input_kind == "probs":
            return variant.with_(clip_eps=variant.clip_eps or self.DEFAULT_EPS)
        return variant.with_(soft_target="geometric")

    capabilities = Capabilities(
        "smp FocalLoss",
        input_kinds=("logits", "probs"),
        clip_inputs=("probs",),
        convention="segmentation_models_pytorch.losses.FocalLoss",
        hard_targets_on=("probs",),
        hard_targets_note="smp on probabilities (declared: clip convention) takes hard 0/1 targets only",
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from segmentation_models_pytorch.losses import FocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        probs = variant.input_kind == "probs"
        if probs:  # the geometric form after clipping is no spec variant: hard targets only
            _binary_targets(t, "smp on probabilities (declared: clip convention)")
        loss_fn = FocalLoss(
            mode="binary",
            alpha=None if variant.alpha is None else float(variant.alpha),  # type: ignore[arg-type]
            gamma=variant.gamma,
            reduction=variant.reduction,
            from_logits=not probs,
            eps=variant.clip_eps or self.DEFAULT_EPS,
        )
        out = loss_fn(x, t)
        return out.reshape(x.shape) if variant.reduction == "none" else out


def adapters() -> list[Adapter]:
    """The registry's factory: every adapter of this library (unavailable ones say why)."""
    return [Smp()]
