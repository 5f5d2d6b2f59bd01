"""fvcore (``fvcore.nn.sigmoid_focal_loss`` and FL*, ``sigmoid_focal_loss_star``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from focalspec.adapters.base import Adapter, AdapterError, Output
from focalspec.adapters.capabilities import SIGMOID_REDUCTIONS, Capabilities
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import SpecError, Variant


class Fvcore(TorchAdapter):
    """``fvcore.nn.sigmoid_focal_loss``: torchvision's body with ``alpha=-1`` (off) by
    default; alpha < 0 disables balancing.  It starts with ``inputs = inputs.float()``, so a
    float64 request is computed in float32 (a defect the suite reports, not a convention)."""

    name = "fvcore"
    implementation = "fvcore.nn.sigmoid_focal_loss"
    package = "fvcore"
    module = "fvcore.nn"
    convention = "canonical; alpha < 0 (default -1) disables alpha; computes in float32 (inputs.float())"

    capabilities = Capabilities(
        "fvcore sigmoid_focal_loss", soft_targets=("canonical",), convention="fvcore.nn.sigmoid_focal_loss"
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from fvcore.nn import sigmoid_focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = -1.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        return sigmoid_focal_loss(x, t, alpha=alpha, gamma=variant.gamma, reduction=variant.reduction)


FL_STAR_REASON = (
    "FL* = -logsigmoid(gamma*x*(2t-1))/gamma (RetinaNet appendix) is a different loss, not a focal-loss variant "
    "of the spec: it has no (1-p_t)^gamma factor and no gamma=0 limit"
)


class FvcoreStar(TorchAdapter):
    """``fvcore.nn.sigmoid_focal_loss_star`` (FL*).  Not the spec's focal loss: ``supports``
    refuses every variant (so the conformance suite skips it with that reason), while
    ``run_star`` evaluates FL* for its own closed-form check (tests/test_thirdparty.py)."""

    name = "fvcore-star"
    implementation = "fvcore.nn.sigmoid_focal_loss_star"
    package = "fvcore"
    module = "fvcore.nn"
    env = ""  # refuses every variant: no conformance run lists it
    convention = "not a spec focal loss: FL* = -logsigmoid(gamma x (2t-1)) / gamma, alpha_t as canonical"

    def variant_reason(self, variant: Variant) -> str | None:
        return FL_STAR_REASON

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        raise SpecError(f"fvcore-star: {FL_STAR_REASON}")

    def run_star(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        gamma: float,
        alpha: float | None,
        dtype: str,
        reduction: str = "none",
        want_grad: bool = True,
    ) -> Output:
        """Evaluate FL* itself (gamma > 0; alpha None disables, as alpha=-1 does in fvcore)."""
        reason = self.unavailable_reason()
        if reason:
            raise AdapterError(f"{self.name}: {reason}")
        if dtype not in self.dtypes:
            raise AdapterError(f"{self.name} does not run in {dtype}")
        if reduction not in SIGMOID_REDUCTIONS:
            raise AdapterError(f"{self.name} has no reduction {reduction!r}")
        # gamma = 0 is legal for the Variant; FL* divides by it (reported by the adapter as inf/nan, not hidden)
        variant = Variant(gamma=gamma, alpha=alpha, reduction=reduction)  # type: ignore[arg-type]
        return self.evaluate(variant, inputs, targets, dtype, "cpu", "eager", want_grad)

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from fvcore.nn import sigmoid_focal_loss_star  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = -1.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        return sigmoid_focal_loss_star(x, t, alpha=alpha, gamma=variant.gamma, reduction=variant.reduction)


def adapters() -> list[Adapter]:
    """The registry's factory: every adapter of this library (unavailable ones say why)."""
    return [Fvcore(), FvcoreStar()]
