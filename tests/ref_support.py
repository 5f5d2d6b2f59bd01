"""Rounding helpers the adapter tests share: inputs rounded to a dtype, and mpmath references as
the float64 values ``error_in_u`` compares with (the dtype's own inf where it overflows)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from focalspec.reference.exact import to_mpf_array
from focalspec.reference.rounding import round_array, round_mpf
from focalspec.spec.variant import Variant

# what a plain sigmoid-on-logits, canonical-soft-target loss (torchvision's, optax's ...) cannot be asked
OUTSIDE_PLAIN_SIGMOID = [
    Variant(activation="softmax"),
    Variant(input_kind="probs"),
    Variant(soft_target="geometric"),
    Variant(soft_target="margin"),
    Variant(clip_eps=1e-7),
    Variant(label_smoothing=0.1),
]


def rounded(a: Any, dtype: str) -> np.ndarray:
    """float64 array of the dtype-rounded values (inputs and float targets alike)."""
    return round_array(to_mpf_array(np.asarray(a, dtype=np.float64)), dtype)


def expected(values: np.ndarray, dtype: str) -> np.ndarray:
    """mpf -> float64, except where the dtype overflows (then its rounded inf), as error_in_u wants."""
    out = np.empty(values.shape, dtype=np.float64)
    for idx, v in np.ndenumerate(values):
        r = round_mpf(v, dtype)
        out[idx] = r if math.isinf(r) or math.isnan(r) else float(v)
    return out


def timed_matches_run(adapter: Any, v: Any, sets: list[np.ndarray], t: np.ndarray, mode: str) -> Any:
    """The timed path (``prepare_timed`` with the backward pass) on the second input set gives the
    loss and gradient of a plain ``run``, bit for bit; returns the ``Timed`` for further checks."""
    timed = adapter.prepare_timed(v, sets, t, "float32", mode=mode, backward=True)
    out = timed.step(1)
    timed.sync(out)
    loss, grad = timed.to_numpy(out)
    direct = adapter.run(v, sets[1], t, "float32", mode=mode)
    assert grad is not None and np.array_equal(loss, direct.loss) and np.array_equal(grad, direct.grad)
    return timed
