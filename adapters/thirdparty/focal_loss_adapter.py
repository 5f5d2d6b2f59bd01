"""Adapters for the PyPI package ``focal-loss`` (artemmavrin/focal-loss, TensorFlow/Keras).

``BinaryFocalLoss`` and ``SparseCategoricalFocalLoss`` are called as the Keras losses they
are, with the requested dtype given to the Loss (Keras 3 casts ``y_pred`` to the loss's
dtype), and the gradient of sum(loss) is taken with ``tf.GradientTape``.  Conventions, read
from the source (spec/research/implementations.md section 9):

* no alpha: ``pos_weight`` scales the positive term only (negatives keep weight 1), so the
  spec's alpha / 1-alpha balancing cannot be expressed -- alpha=None only;
* without label smoothing the labels are cast to bool for the modulating factor, i.e. the
  documented domain is hard 0/1 labels; with label smoothing both terms are weighted by
  the smoothed label -- the two-term form;
* the probability paths clamp p and 1-p separately at 1e-7 (binary) or clip, renormalise
  the CE through the softmax, and leave the modulating factor unclipped (sparse): neither
  is the spec's clip convention, so only logits are offered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focalspec.adapters.backends.tf_backend import tf_exact
from focalspec.adapters.base import Adapter, AdapterError
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.tf_base import KERAS_REDUCTION, FocalLossTF, _tf
from focalspec.adapters.thirdparty.torch_helpers import class_indices
from focalspec.spec.variant import Variant


class FocalLossBinary(FocalLossTF):
    """``focal_loss.BinaryFocalLoss(gamma, from_logits=True)``.  Hard targets: canonical.
    With label smoothing (smoothed t = t(1-ls) + ls/2, as Keras) the loss is the two-term
    form of the smoothed label."""

    name = "focal-loss-binary"
    implementation = "focal_loss.BinaryFocalLoss"
    convention = "no alpha (pos_weight on positives only); hard labels (cast to bool); smoothing -> two_term"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        if variant.activation == "sigmoid" and variant.label_smoothing:
            return variant.with_(soft_target="two_term")
        return variant

    capabilities = Capabilities(
        "focal-loss BinaryFocalLoss",
        label_smoothing=True,
        alpha_on=False,
        alpha_note="pos_weight scales positives only, negatives keep weight 1",
        input_notes={
            "probs": "focal-loss on probabilities clamps p and 1-p separately at 1e-7 (max(p, eps), max(1-p, eps)): "
            "not the spec's clip to [eps, 1-eps]"
        },
        convention="focal_loss.BinaryFocalLoss",
        hard_targets_on=("logits", "probs"),
        hard_targets_note="focal-loss-binary: without label smoothing focal-loss casts labels to bool "
        "(documented: binary 0/1 labels)",
    )

    def supports_data(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray) -> str | None:
        """Soft targets are taken as they are once label smoothing is on (no bool cast then)."""
        return None if variant.label_smoothing else super().supports_data(variant, inputs, targets)

    def _loss(self, variant: Variant, x: Any, targets: np.ndarray, dtype: str) -> Any:
        from focal_loss import BinaryFocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        t = np.asarray(targets, dtype=np.float64)
        if not variant.label_smoothing and not np.all((t == 0) | (t == 1)):
            raise AdapterError(
                f"{self.name}: without label smoothing focal-loss casts labels to bool (documented: binary 0/1 labels)"
            )
        loss_fn = BinaryFocalLoss(
            gamma=variant.gamma,
            from_logits=True,
            label_smoothing=variant.label_smoothing or None,
            reduction=KERAS_REDUCTION[variant.reduction],
            dtype=dtype,
        )
        return loss_fn(tf_exact(t, dtype), x)


class FocalLossSparse(FocalLossTF):
    """``focal_loss.SparseCategoricalFocalLoss(gamma, class_weight, from_logits=True)``:
    (1 - p_y)^gamma * CE on integer labels; ``class_weight[y]`` multiplies the row, which
    expresses the spec's softmax alpha (a scalar as C equal weights, a vector as it is)."""

    name = "focal-loss-sparse"
    implementation = "focal_loss.SparseCategoricalFocalLoss"
    convention = "softmax on integer labels; alpha via class_weight[y]; no label smoothing"

    capabilities = Capabilities(
        "focal-loss SparseCategoricalFocalLoss",
        activations=("softmax",),
        input_notes={
            "probs": "focal-loss on probabilities takes the CE of log(clip(p, 1e-7, 1-1e-7)) renormalised by the "
            "softmax but the modulating factor of the raw p: no spec variant"
        },
        labels_only=True,
    )

    def _loss(self, variant: Variant, x: Any, targets: np.ndarray, dtype: str) -> Any:
        from focal_loss import SparseCategoricalFocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        tf = _tf()
        if x.shape.rank == 0:
            raise AdapterError(f"{self.name}: softmax inputs need a class axis")
        n_classes = int(x.shape[-1])
        labels = class_indices(targets, n_classes, self.name)
        weights = variant.alpha_for_classes(n_classes)
        loss_fn = SparseCategoricalFocalLoss(
            gamma=variant.gamma,
            class_weight=None if weights is None else list(weights),
            from_logits=True,
            reduction=KERAS_REDUCTION[variant.reduction],
            dtype=dtype,
        )
        rows = tuple(x.shape[:-1])
        out = loss_fn(tf.constant(labels.reshape(-1)), tf.reshape(x, (-1, n_classes)))
        return tf.reshape(out, rows) if variant.reduction == "none" else out


def adapters() -> list[Adapter]:
    """The registry's factory: focal-loss's binary and sparse categorical losses."""
    return [FocalLossBinary(), FocalLossSparse()]
