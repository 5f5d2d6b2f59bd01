"""Callables for the gate's declarations and misuse tests (tests/test_gate_declared.py).

Each is ``focal.careful`` seen through one trait of a real library: no alpha argument at all,
only some reductions, a result always in float32, a defect only at negative logits, a signature
without ``reduction`` (optax's), or a call that raises KeyboardInterrupt.
"""

from __future__ import annotations

import torch

from broken_impls.focal import careful

Tensor = torch.Tensor


def no_alpha(inputs: Tensor, targets: Tensor, gamma: float = 2.0, reduction: str = "none") -> Tensor:
    """The unweighted focal loss: there is no alpha to pass (declare --alpha-off absent)."""
    return careful(inputs, targets, None, gamma, reduction)


def none_and_mean(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Offers reductions 'none' and 'mean' only; anything else is refused (declare --reductions none,mean)."""
    if reduction not in ("none", "mean"):
        raise ValueError(f"unsupported reduction {reduction!r}")
    return careful(inputs, targets, alpha, gamma, reduction)


def elementwise(inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0) -> Tensor:
    """optax's signature: no reduction argument, the elementwise loss."""
    return careful(inputs, targets, alpha, gamma, "none")


def always_float32(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Computes in float32 and returns float32 whatever the input dtype."""
    return careful(inputs.float(), targets.float(), alpha, gamma, reduction)


def clamped_below(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Logits clamped from below at -4: a defect at negative inputs only."""
    return careful(inputs.clamp(min=-4.0), targets, alpha, gamma, reduction)


def raises_keyboard_interrupt(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Raises KeyboardInterrupt on every call."""
    raise KeyboardInterrupt


def interrupts_on_large(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Raises KeyboardInterrupt where |x| > 30, careful elsewhere (the first call passes)."""
    if bool((inputs.abs() > 30).any()):
        raise KeyboardInterrupt("large logits")
    return careful(inputs, targets, alpha, gamma, reduction)


def nan_at_infinity(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """careful, but NaN at +-inf logits (the extended tier, not required by default)."""
    x = torch.where(inputs.isinf(), torch.full_like(inputs, float("nan")), inputs)
    return careful(x, targets, alpha, gamma, reduction)


def normalized_only(inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0) -> Tensor:
    """Detection style: no reduction argument, always sum / max(1, #positives) (declare --reductions normalized)."""
    return careful(inputs, targets, alpha, gamma, "normalized")
