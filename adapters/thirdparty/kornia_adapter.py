"""kornia's focal losses (``kornia.losses``): the binary and the multiclass one."""

from __future__ import annotations

from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import (
    CLASS_MAP_MEAN,
    _torch,
    alpha_vector_scalar,
    background_alpha,
    class_indices,
)
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


class KorniaBinary(TorchAdapter):
    """``kornia.losses.binary_focal_loss_with_logits``: the two-term form
    ``alpha t sig(-x)^g (-log sig(x)) + (1-alpha)(1-t) sig(x)^g (-log sig(-x))`` in log
    space; alpha=None weights both terms by 1.  Identical to canonical for hard targets."""

    name = "kornia-binary"
    implementation = "kornia.losses.binary_focal_loss_with_logits"
    package = "kornia"
    module = "kornia.losses"
    convention = "two_term soft targets; alpha None -> weights (1, 1); pred needs (B, C, *)"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return variant.with_(soft_target="two_term") if variant.activation == "sigmoid" else variant

    capabilities = Capabilities(
        "kornia binary_focal_loss_with_logits", convention="kornia.losses.binary_focal_loss_with_logits"
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from kornia.losses import binary_focal_loss_with_logits  # type: ignore[import-not-found,import-untyped,unused-ignore]

        shape = x.shape
        # kornia checks pred is (B, C, *): lay the elements out as one row of channels
        out = binary_focal_loss_with_logits(
            x.reshape(1, -1),
            t.reshape(1, -1),
            alpha=None if variant.alpha is None else float(variant.alpha),  # type: ignore[arg-type]
            gamma=variant.gamma,
            reduction=variant.reduction,
        )
        return out.reshape(shape) if variant.reduction == "none" else out


class KorniaMulticlass(TorchAdapter):
    """``kornia.losses.focal_loss``: softmax focal loss on integer labels; a scalar alpha gives
    class 0 the weight 1 - alpha and every other class alpha (declared as that vector).
    'none' returns a (B, C, *) map whose non-target slices are exactly 0: the adapter sums it
    over C in torch (exact), to get the spec's per-row loss.  'mean' divides by B*C*..., not
    by the number of rows: not offered."""

    name = "kornia-multiclass"
    implementation = "kornia.losses.focal_loss"
    package = "kornia"
    module = "kornia.losses"
    convention = "softmax, integer labels; scalar alpha -> (1-alpha, alpha, ..., alpha); 'mean' divides by N*C"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return background_alpha(variant, n_classes, self.name)

    capabilities = Capabilities(
        "kornia focal_loss",
        activations=("softmax",),
        reductions=("none", "sum"),
        reduction_notes={"mean": CLASS_MAP_MEAN.format(who="kornia focal_loss")},
        convention="kornia.losses.focal_loss",
        labels_only=True,
    )

    def extra_reason(self, variant: Variant) -> str | None:
        if isinstance(variant.alpha, tuple) and alpha_vector_scalar(variant.alpha) is None:
            return "kornia's alpha is the vector (1-a, a, ..., a); another per-class alpha cannot be expressed"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from kornia.losses import focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        torch = _torch()
        assert n_classes is not None
        labels = t if t.dtype == torch.int64 else None
        if labels is None:
            labels = torch.from_numpy(class_indices(t.cpu().numpy(), n_classes, self.name)).to(x.device)
        alpha = variant.alpha
        if isinstance(alpha, tuple):
            alpha = alpha_vector_scalar(alpha)
        pred = x.reshape(1, n_classes) if x.ndim == 1 else x.movedim(-1, 1)
        lab = labels.reshape(1) if x.ndim == 1 else labels
        out = focal_loss(pred, lab, alpha=alpha, gamma=variant.gamma, reduction=variant.reduction)
        if variant.reduction == "none":
            out = out.sum(dim=1)  # one non-zero slice per row: the sum is exact
            return out.reshape(()) if x.ndim == 1 else out
        return out


def adapters() -> list[Adapter]:
    """The registry's factory: every adapter of this library (unavailable ones say why)."""
    return [KorniaBinary(), KorniaMulticlass()]
