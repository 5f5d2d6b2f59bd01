"""The bench's inputs and the float64 reference they are graded against.

K dtype-exact logit sets of a detection head (N anchors x C classes, mostly confident
negatives), rotated by the timing loop so that repetitions do not measure the cache, and
the byte counts a pass must move at least (what GB/s and the roofline fraction count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.benchmarks import roofline
from focalspec.reference.rounding import get_format
from focalspec.spec.variant import Variant

N_CLASSES = 80  # COCO: detection heads score N anchors x 80 classes
POSITIVE_ANCHOR_FRACTION = 0.02  # ~2% of anchors matched to an object, one class each
LOGIT_LOC, LOGIT_SCALE = -3.0, 2.0  # a trained head: mostly confident negatives, some near 0
MAX_SETS = 64  # input sets rotated at most
HOST_ROTATION_BYTES = 2 * 2**30  # float64 host copies of the rotated sets, at most


@dataclass
class InputBatch:
    """K dtype-exact float64 logit sets of shape (N, C) and one shared hard-target array."""

    sets: list[np.ndarray]
    targets: np.ndarray
    dtype: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.targets.shape  # type: ignore[return-value]

    @property
    def n(self) -> int:
        return int(self.targets.size)


def shape_for(size: int, n_classes: int = N_CLASSES) -> tuple[int, int]:
    """(N anchors, C classes) with N * C as close to ``size`` as whole anchors allow."""
    return max(1, round(size / n_classes)), n_classes


def rotation_count(n: int, dtype: str, llc_bytes: int) -> int:
    """Input sets to rotate: enough that one pass over them exceeds twice the last-level cache,
    when the float64 host copies stay affordable; at least 1, at most MAX_SETS."""
    device_bytes = n * get_format(dtype).numpy_type(0).itemsize
    k = math.ceil(2 * llc_bytes / max(1, device_bytes))
    k = min(k, MAX_SETS, max(1, HOST_ROTATION_BYTES // max(1, 8 * n)))
    return max(1, k)


def make_inputs(size: int, dtype: str, k: int, seed: int, n_classes: int = N_CLASSES) -> InputBatch:
    """Random logits (never zeros) rounded to ``dtype``, and one-hot targets on ~2% of anchors."""
    rng = np.random.default_rng([seed, size, k])
    shape = shape_for(size, n_classes)
    np_type = get_format(dtype).numpy_type
    sets = []
    for _ in range(k):
        z = rng.standard_normal(shape, dtype=np.float32)
        z *= LOGIT_SCALE
        z += LOGIT_LOC
        sets.append(z.astype(np_type).astype(np.float64))
    targets = np.zeros(shape, dtype=np.float64)
    n_pos = max(1, round(shape[0] * POSITIVE_ANCHOR_FRACTION))
    anchors = rng.choice(shape[0], size=n_pos, replace=False)
    targets[anchors, rng.integers(0, n_classes, size=n_pos)] = 1.0
    return InputBatch(sets, targets, dtype)


def min_bytes(n: int, dtype: str, pass_: str) -> int:
    """Fewest bytes a pass must move: read logits and targets (both in ``dtype``, as passed
    to every adapter) once; forward+backward also writes the gradient once."""
    item = int(get_format(dtype).numpy_type(0).itemsize)
    return n * item * (3 if pass_ == "forward_backward" else 2)


def moved_bytes(n: int, dtype: str, pass_: str, reduction: str) -> int:
    """``min_bytes``, plus writing the loss array where the reduction is 'none'."""
    item = int(get_format(dtype).numpy_type(0).itemsize)
    return min_bytes(n, dtype, pass_) + (n * item if reduction == "none" else 0)


# ----------------------------------------------------------------------------- the reference


class References:
    """float64 reference per (variant, input set), for the batch in hand only."""

    def __init__(self) -> None:
        self.batch: InputBatch | None = None
        self.cache: dict[tuple[Variant, int], Any] = {}

    def get(self, batch: InputBatch, variant: Variant, index: int = 0) -> Any:
        if batch is not self.batch:
            self.batch, self.cache = batch, {}
        if (variant, index) not in self.cache:
            self.cache[(variant, index)] = reference(variant, batch.sets[index], batch.targets)
        return self.cache[(variant, index)]


REFERENCE_CHUNK = 2**20  # elements per piece of a large reference evaluation


def reference(variant: Variant, x: np.ndarray, t: np.ndarray) -> Any:
    """``reference.float64.evaluate`` of a 'sum' or 'mean' variant; above 4 chunks in row pieces
    on every core (numpy releases the GIL), so that 2^28 elements cost seconds and a few
    GiB instead of minutes and tens of GiB.  Each piece is the reference's own unreduced
    evaluation; the reduction is the reference's: sum, or sum / n with the gradient / n."""
    from concurrent.futures import ThreadPoolExecutor

    from focalspec.reference.float64 import NpResult, evaluate

    if x.size <= 4 * REFERENCE_CHUNK or variant.reduction not in ("sum", "mean"):
        return evaluate(variant, x, t)
    elementwise = variant.with_(reduction="none")
    losses, grad, scale = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    rows = max(1, REFERENCE_CHUNK // x.shape[-1])
    starts = range(0, x.shape[0], rows)

    def piece(a: int) -> float:
        r = evaluate(elementwise, x[a : a + rows], t[a : a + rows])
        losses[a : a + rows], grad[a : a + rows], scale[a : a + rows] = r.losses, r.grad, r.grad_scale
        return float(np.sum(r.losses))

    with ThreadPoolExecutor(roofline.cpu_count()) as pool:
        total = math.fsum(pool.map(piece, starts))
    if variant.reduction == "sum":
        return NpResult(losses, total, grad, scale)
    return NpResult(losses, total / x.size, grad / x.size, scale / x.size)
