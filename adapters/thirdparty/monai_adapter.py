"""MONAI's ``monai.losses.FocalLoss``: sigmoid and softmax."""

from __future__ import annotations

from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import (
    CLASS_MAP_MEAN,
    _torch,
    background_alpha,
)
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


def _monai_focal(**kwargs: Any) -> Any:
    from monai.losses import FocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return FocalLoss(**kwargs)


class MonaiSigmoid(TorchAdapter):
    """``monai.losses.FocalLoss`` (sigmoid): BCE x exp(gamma logsigmoid(-x(2t-1))) -- the
    margin form, equal to canonical for hard targets.  Inputs are laid out as (N, 1, 1) so
    that MONAI's 'sum' (a sum of per-channel spatial means) is the plain sum.  It casts
    ``input.float()``: a float64 request is computed in float32 (a defect, not a convention)."""

    name = "monai-sigmoid"
    implementation = "monai.losses.FocalLoss"
    package = "monai"
    module = "monai.losses"
    convention = "margin soft targets: (1-p_t) = sigmoid(-x(2t-1)); computes in float32 (input.float())"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return variant.with_(soft_target="margin") if variant.activation == "sigmoid" else variant

    capabilities = Capabilities("MONAI FocalLoss (sigmoid)", convention="monai.losses.FocalLoss")

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        loss_fn = _monai_focal(gamma=variant.gamma, alpha=variant.alpha, reduction=variant.reduction)
        out = loss_fn(x.reshape(-1, 1, 1), t.reshape(-1, 1, 1))
        return out.reshape(x.shape) if variant.reduction == "none" else out


class MonaiSoftmax(TorchAdapter):
    """``monai.losses.FocalLoss(use_softmax=True)``: per component -(1-p_c)^g t_c log p_c,
    summed over classes by the adapter (in torch) for 'none'; a scalar alpha weights class 0
    by 1 - alpha and the others by alpha; a sequence alpha (MONAI >= 1.5) is per class.
    Labels go through MONAI's own ``to_onehot_y``; distributions are passed as they are.
    'mean' divides by N*C: not offered.  Computes in float32 (``input.float()``)."""

    name = "monai-softmax"
    implementation = "monai.losses.FocalLoss(use_softmax=True)"
    package = "monai"
    module = "monai.losses"
    convention = "softmax; scalar alpha -> (1-alpha, alpha, ...); 'mean' divides by N*C; computes in float32"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return background_alpha(variant, n_classes, self.name)

    capabilities = Capabilities(
        "MONAI FocalLoss(use_softmax=True)",
        activations=("softmax",),
        reductions=("none", "sum"),
        reduction_notes={"mean": CLASS_MAP_MEAN.format(who="MONAI FocalLoss(use_softmax=True)")},
        convention="monai.losses.FocalLoss(use_softmax=True)",
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        torch = _torch()
        assert n_classes is not None
        alpha = list(variant.alpha) if isinstance(variant.alpha, tuple) else variant.alpha
        rows = x.shape[:-1]
        pred = x.reshape(-1, n_classes, 1)
        if t.dtype == torch.int64:
            loss_fn = _monai_focal(
                gamma=variant.gamma, alpha=alpha, reduction=variant.reduction, use_softmax=True, to_onehot_y=True
            )
            out = loss_fn(pred, t.reshape(-1, 1, 1))
        else:
            loss_fn = _monai_focal(gamma=variant.gamma, alpha=alpha, reduction=variant.reduction, use_softmax=True)
            out = loss_fn(pred, t.reshape(-1, n_classes, 1))
        if variant.reduction == "none":
            return out.sum(dim=1).reshape(rows)
        return out


def adapters() -> list[Adapter]:
    """The registry's factory: every adapter of this library (unavailable ones say why)."""
    return [MonaiSigmoid(), MonaiSoftmax()]
