"""optax's ``optax.losses.sigmoid_focal_loss`` through the shared JAX base (jit for 'compiled', x64 on)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from focalspec.adapters.base import Adapter, failure
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.own_jax import _jax, _JaxAdapter
from focalspec.spec.variant import Variant


class OptaxAdapter(_JaxAdapter):
    """``optax.losses.sigmoid_focal_loss``: sigmoid on logits, canonical soft targets, scalar
    alpha or None, no reduction of its own."""

    name = "optax"
    implementation = "optax.sigmoid_focal_loss"
    convention = "optax.sigmoid_focal_loss"

    def unavailable_reason(self) -> str | None:
        return super().unavailable_reason() or failure(
            lambda: importlib.import_module("optax"), "optax is not usable: {err}"
        )

    capabilities = Capabilities(
        "optax.sigmoid_focal_loss",
        soft_targets=("canonical",),
        reductions=("none",),
        reduction_notes=dict.fromkeys(
            ("mean", "sum", "normalized"), "optax.sigmoid_focal_loss returns the elementwise loss only (no reduction)"
        ),
        convention="optax.sigmoid_focal_loss",
    )

    def _loss_fn(self, variant: Variant) -> Callable[[Any, Any], Any]:
        import optax

        fn = optax.losses.sigmoid_focal_loss
        return lambda x, t: fn(x, t, alpha=variant.alpha, gamma=variant.gamma)

    def framework_version(self) -> str | None:
        try:
            import optax

            return f"jax {_jax().__version__}, optax {optax.__version__}"
        except Exception:
            return None


def optax_adapter() -> Adapter:
    """Factory for the registry (``focalspec.adapters.thirdparty.optax_adapter:optax_adapter``)."""
    return OptaxAdapter()
