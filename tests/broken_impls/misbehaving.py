"""Callables that compute ``careful``'s right numbers but misbehave as code: they crash the
process, hang, eat memory, change their arguments, vary between calls or return the wrong
kind of thing.  The process-level ones do it only on inputs of more than ``SMALL`` elements,
so the gate must keep their passes on the small cases.
"""

from __future__ import annotations

import ctypes
import itertools
import time

import torch

from broken_impls.focal import careful

Tensor = torch.Tensor
SMALL = 64
_calls = itertools.count()
_leaf = torch.ones((), dtype=torch.float64, requires_grad=True)


def _large(x: Tensor) -> bool:
    return x.numel() > SMALL


def segfaults_on_large(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """A native crash, as a broken C++/CUDA extension gives: reads address 0."""
    if _large(inputs):
        ctypes.string_at(0)
    return careful(inputs, targets, alpha, gamma, reduction)


def spins_on_large(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """A Python loop that never ends."""
    while _large(inputs):
        pass
    return careful(inputs, targets, alpha, gamma, reduction)


def sleeps_in_c_on_large(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Stuck in native code (libc sleep(3600)), where no Python signal handler runs."""
    if _large(inputs):
        ctypes.CDLL(None).sleep(3600)
    return careful(inputs, targets, alpha, gamma, reduction)


def hoards_memory_on_large(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Touches 3 GiB, 64 MiB at a time, and holds it for a while (a workspace gone wrong)."""
    if _large(inputs):
        hoard = []
        for _ in range(48):
            hoard.append(torch.ones(8 * 1024 * 1024, dtype=torch.float64))
            time.sleep(0.01)
        time.sleep(2.0)
        del hoard
    return careful(inputs, targets, alpha, gamma, reduction)


def mutates_inputs(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Right values, but clamps the caller's logits in place afterwards."""
    out = careful(inputs, targets, alpha, gamma, reduction)
    with torch.no_grad():
        inputs.clamp_(-1.0, 1.0)
    return out


def nondeterministic(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Every other call is one ulp-ish off (as an unordered atomic reduction can be)."""
    out = careful(inputs, targets, alpha, gamma, reduction)
    return out * (1 + 4 * torch.finfo(out.dtype).eps) if next(_calls) % 2 else out


def returns_python_float(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor | float:
    """Reduced losses come back as a Python float (``.item()``)."""
    out = careful(inputs, targets, alpha, gamma, reduction)
    return out.item() if reduction != "none" and not out.requires_grad else out


def leaks_a_graph(
    inputs: Tensor, targets: Tensor, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "none"
) -> Tensor:
    """Multiplies by a module-level leaf that requires grad: every loss drags a graph along."""
    return careful(inputs, targets, alpha, gamma, reduction) * _leaf.to(inputs.dtype)
