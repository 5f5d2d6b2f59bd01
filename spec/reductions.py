"""Libraries' own reductions, declared by name, as exact weights on the per-element losses.

The variant's reductions (SPEC §7: none, sum, mean, normalized) act on all elements at once.
Libraries reduce in stages and print the result: Keras averages a binary focal loss over the
last axis first (one loss per sample), multiplies by the sample weights, and then applies its
own reduction -- ``sum_over_batch_size`` (its default) divides the sum by the number of
samples, ``sum`` does not divide, ``mean_with_sample_weight`` divides by the sum of the
weights.  Every such reduction is linear, so it is a coefficient per element:
``value = sum_i c_i L_i`` and ``d value / d x_i = c_i d L_i / d x_i``, computed here in the
caller's arithmetic (mpmath at a precision, or intervals for a proof) from exact decimals.

Keras' ``class_weight`` (``Model.fit``) becomes a sample weight, ``class_weight[label]`` of
each sample's label; it is accepted where that label is one number (a softmax class index,
or a sigmoid sample of one element).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.spec.variant import SpecError

# name -> (divide the sample sum by, mean over the last axis of sigmoid losses first, help)
LIBRARY_REDUCTIONS: dict[str, tuple[str, str]] = {
    "keras-mean": ("samples", "Keras' default (sum_over_batch_size): mean over the last axis, then sum / #samples"),
    "keras-sum": ("one", "Keras reduction='sum': the sum of the per-sample (last-axis mean) losses"),
    "keras-weighted-mean": ("weights", "Keras 'mean_with_sample_weight': the weighted sum / the sum of the weights"),
    "keras-none": ("none", "Keras reduction=None: one (weighted) loss per sample, the mean over the last axis"),
}


@dataclass(frozen=True)
class LibraryReduction:
    """A named staged reduction with optional sample weights (one per sample) and class
    weights (one per class); weights are exact decimal strings."""

    name: str
    sample_weight: tuple[str, ...] | None = None
    class_weight: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.name not in LIBRARY_REDUCTIONS:
            raise SpecError(f"unknown library reduction {self.name!r}; expected one of {', '.join(LIBRARY_REDUCTIONS)}")
        if self.name == "keras-weighted-mean" and self.sample_weight is None and self.class_weight is None:
            raise SpecError("keras-weighted-mean needs --sample-weight or --class-weight")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name}
        if self.sample_weight is not None:
            d["sample_weight"] = list(self.sample_weight)
        if self.class_weight is not None:
            d["class_weight"] = list(self.class_weight)
        return d

    def describe(self) -> str:
        return LIBRARY_REDUCTIONS[self.name][1]

    def coefficients(self, ctx: Any, loss_shape: tuple[int, ...], softmax: bool, targets: Any) -> np.ndarray:
        """c_i for each per-element loss (object array of ctx numbers, shape ``loss_shape``).

        sigmoid: samples are the rows of the last axis (a 1-D input is one sample); softmax:
        each row's loss is one sample already."""
        if softmax:
            n_samples, per_sample = int(np.prod(loss_shape)), 1
        else:
            per_sample = loss_shape[-1] if loss_shape else 1
            n_samples = int(np.prod(loss_shape[:-1])) if len(loss_shape) > 1 else 1
        weights = [ctx.one] * n_samples
        if self.sample_weight is not None:
            if len(self.sample_weight) != n_samples:
                raise SpecError(f"--sample-weight has {len(self.sample_weight)} entries for {n_samples} sample(s)")
            weights = [ctx.mpf(w) for w in self.sample_weight]
        if self.class_weight is not None:
            labels = _labels(targets, softmax, n_samples)
            for i, k in enumerate(labels):
                if not 0 <= k < len(self.class_weight):
                    raise SpecError(f"--class-weight has no entry for class {k}")
                weights[i] = weights[i] * ctx.mpf(self.class_weight[k])
        kind = LIBRARY_REDUCTIONS[self.name][0]
        if kind == "samples":
            divisor = ctx.mpf(n_samples)
        elif kind == "weights":  # (kind "none" divides by nothing either: one value per sample)
            divisor = ctx.fsum(weights)
            if divisor == 0:
                raise SpecError("the sample weights sum to 0")
        else:
            divisor = ctx.one
        out = np.empty(int(np.prod(loss_shape)) if loss_shape else 1, dtype=object)
        for i in range(out.size):
            out[i] = weights[i // per_sample] / (divisor * per_sample)
        return out.reshape(loss_shape)


def _labels(targets: Any, softmax: bool, n_samples: int) -> list[int]:
    t = np.asarray(targets, dtype=object)
    if softmax:
        if t.ndim and t.shape[-1:] != () and t.size != n_samples:
            raise SpecError("--class-weight needs class-index targets with --softmax")
        flat = t.ravel().tolist() if t.ndim else [t.item()]
    else:
        if t.size != n_samples:
            raise SpecError("--class-weight needs one hard target per sample (rows of one element)")
        flat = t.ravel().tolist() if t.ndim else [t.item()]
    out = []
    for v in flat:
        if not softmax and float(v) not in (0.0, 1.0):
            raise SpecError(f"--class-weight needs hard 0/1 targets, got {v!r}")
        out.append(int(float(v)))
    return out


def apply(reduction: LibraryReduction, ctx: Any, losses: np.ndarray, grad: np.ndarray, scale: np.ndarray,
          softmax: bool, targets: Any) -> tuple[Any, np.ndarray, np.ndarray]:  # fmt: skip
    """(value, gradient of the value, its scale) from per-element losses and their own gradients."""
    c = reduction.coefficients(ctx, losses.shape, softmax, targets)
    if LIBRARY_REDUCTIONS[reduction.name][0] == "none":  # per sample: sum the sample's weighted elements
        rows = losses.reshape(-1, 1) if softmax or losses.ndim == 0 else losses.reshape(-1, losses.shape[-1])
        cs = c.reshape(rows.shape)
        value: Any = np.empty(rows.shape[0], dtype=object)
        for i in range(rows.shape[0]):
            value[i] = ctx.fsum(cs[i, j] * rows[i, j] for j in range(rows.shape[1]))
        value = value.reshape(losses.shape if softmax else losses.shape[:-1] if losses.ndim else ())
    else:
        value = ctx.fsum(c[idx] * losses[idx] for idx in np.ndindex(*losses.shape)) if losses.size else ctx.zero
    g = np.empty(grad.shape, dtype=object)
    s = np.empty(scale.shape, dtype=object)
    for idx in np.ndindex(*grad.shape):
        k = c[idx[: losses.ndim]] if losses.ndim else c[()]
        g[idx], s[idx] = k * grad[idx], abs(k) * scale[idx]
    return value, g, s


__all__ = ["LIBRARY_REDUCTIONS", "LibraryReduction", "apply"]
