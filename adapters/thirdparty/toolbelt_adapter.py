"""pytorch-toolbelt's ``pytorch_toolbelt.losses.functional.focal_loss_with_logits``."""

from __future__ import annotations

from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant


class Toolbelt(TorchAdapter):
    """``focal_loss_with_logits(output, target, gamma, alpha, reduction)`` (read at 0.8.0): torchvision's
    canonical form (``BCE * (1 - p_t)^gamma * alpha_t``, ``p_t = p t + (1 - p)(1 - t)``, alpha=None
    off) after ``output.float()``: it computes in float32 whatever the input dtype, so float32 is the
    dtype it declares.  Its ``normalized=True`` divides by the sum of the focal terms, not the spec's
    number of positives: only none/sum/mean are asked."""

    name = "toolbelt"
    implementation = "pytorch_toolbelt.losses.functional.focal_loss_with_logits"
    package = "pytorch-toolbelt"
    module = "pytorch_toolbelt.losses.functional"
    convention = "canonical (torchvision's form); alpha=None off; float32 math for every input dtype"
    dtypes = ("float32",)
    # no entry of spec/conventions.py names it yet (a named convention is the spec's entry for this very function)
    capabilities = Capabilities("pytorch-toolbelt focal_loss_with_logits", soft_targets=("canonical",))

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from pytorch_toolbelt.losses.functional import focal_loss_with_logits  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = None if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        return focal_loss_with_logits(x, t, gamma=variant.gamma, alpha=alpha, reduction=variant.reduction)


def adapters() -> list[Adapter]:
    """The registry's factory: every adapter of this library (unavailable ones say why)."""
    return [Toolbelt()]
