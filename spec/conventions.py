"""The named conventions of real implementations (SPEC.md §9), as data.

Each entry says how an implementation spells the spec's parameters, read from its source
(evidence: spec/research/implementations.md).  Adapters name the entry they claim in
``Adapter.convention`` and map a requested ``Variant`` onto what the code computes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Convention:
    """How one implementation spells the spec's parameters."""

    implementation: str
    input_kind: str  # "logits", "probs", or "probs or logits"
    alpha_off: str  # how class balancing is switched off
    alpha_semantics: str
    soft_target: str  # a Variant.soft_target value, or a description when none applies
    clipping: str
    mean_divides_by: str
    labels: str
    notes: str = ""


# torchvision's conventions, which fvcore's sigmoid_focal_loss shares except its default alpha of -1
# (spec/research/implementations.md §2)
TORCHVISION = Convention(
    "torchvision.ops.sigmoid_focal_loss",
    "logits",
    "alpha < 0 (-1)",
    "alpha pos / 1-alpha neg",
    "canonical",
    "none",
    "all elements",
    "one-hot floats",
)

CONVENTIONS: dict[str, Convention] = {
    c.implementation: c
    for c in [
        Convention(
            "focalspec",
            "logits or probs",
            "alpha=None",
            "alpha pos / 1-alpha neg; softmax: scalar or vector",
            "any (declared)",
            "none unless clip_eps",
            "all elements (rows for softmax)",
            "floats / int",
        ),
        TORCHVISION,
        replace(TORCHVISION, implementation="fvcore.nn.sigmoid_focal_loss", alpha_off="alpha < 0 (default -1)"),
        Convention(
            "fvcore.nn.sigmoid_focal_loss_star",
            "logits",
            "alpha < 0",
            "alpha pos / 1-alpha neg",
            "FL* = -logsigmoid(gamma*s*x)/gamma (a different loss)",
            "none",
            "all elements",
            "one-hot floats",
            "not a variant of this spec's focal loss",
        ),
        Convention(
            "sam3.train.loss.sigmoid_focal_loss",
            "logits",
            "none (alpha always applied)",
            "alpha pos / 1-alpha neg",
            "canonical (factor formed as 1 - p_t)",
            "none",
            "no mean (element-wise, or a sum)",
            "float targets",
            "Triton kernels; float32 math and float32 output for every input dtype",
        ),
        Convention(
            "optax.sigmoid_focal_loss",
            "logits",
            "alpha=None",
            "alpha pos / 1-alpha neg",
            "canonical",
            "none",
            "no reduction",
            "floats",
            "(1-p_t)^gamma evaluated in log space since 0.2.5",
        ),
        Convention(
            "keras.losses.BinaryFocalCrossentropy",
            "probs, or logits -> sigmoid",
            "apply_class_balancing=False (default)",
            "alpha pos / 1-alpha neg",
            "canonical",
            "clip to [1e-7, 1-1e-7]; from_logits: TF backend recovers the logits (exact BCE), jax/torch clip",
            "mean over last axis, then sum / batch size",
            "floats; label_smoothing t(1-l)+l/2",
        ),
        Convention(
            "keras.losses.CategoricalFocalCrossentropy",
            "probs (renormalised), or logits -> softmax",
            "cannot: alpha (0.25) multiplies every class",
            "scalar for every class",
            "per component",
            "clip to [1e-7, 1-1e-7]",
            "sum over classes, then sum / batch size",
            "one-hot or soft; label_smoothing t(1-l)+l/C",
        ),
        Convention(
            "kornia.losses.focal_loss",
            "logits",
            "alpha=None",
            "[1-alpha, alpha, alpha, ...]",
            "one-hot only",
            "none",
            "all N*C*spatial entries",
            "int labels",
        ),
        Convention(
            "kornia.losses.binary_focal_loss_with_logits",
            "logits",
            "alpha=None",
            "alpha pos / 1-alpha neg",
            "two_term",
            "none",
            "all elements",
            "floats",
        ),
        Convention(
            "monai.losses.FocalLoss",
            "logits",
            "alpha=None",
            "alpha pos / 1-alpha neg",
            "margin",
            "none",
            "all elements",
            "one-hot or to_onehot_y",
        ),
        Convention(
            "monai.losses.FocalLoss(use_softmax=True)",
            "logits",
            "alpha=None",
            "[1-alpha, alpha, ...]; dropped when include_background=False",
            "per component",
            "none",
            "all elements",
            "one-hot or to_onehot_y",
        ),
        Convention(
            "segmentation_models_pytorch.losses.FocalLoss",
            "logits",
            "alpha=None",
            "alpha pos / 1-alpha neg",
            "geometric",
            "none",
            "all non-ignored elements; multiclass: sum of per-class means",
            "ignore_index",
        ),
        Convention(
            "mmcv.ops.sigmoid_focal_loss",
            "logits",
            "cannot",
            "alpha for the label class, 1-alpha others",
            "hard only",
            "log(max(p, FLT_MIN))",
            "sum / N rows",
            "int labels; label == C means background",
            "CUDA kernels",
        ),
        Convention(
            "mmcv.ops.softmax_focal_loss",
            "logits",
            "cannot",
            "scalar alpha",
            "hard only",
            "FLT_MIN",
            "sum / N rows",
            "int labels",
            "CUDA kernels",
        ),
        Convention(
            "transformers.loss.loss_for_object_detection.sigmoid_focal_loss",
            "logits",
            "alpha < 0",
            "alpha pos / 1-alpha neg",
            "canonical",
            "none",
            "loss.mean(1).sum() / num_boxes (no elementwise output)",
            "one-hot floats",
            "torchvision's formula; (1 - p_t) formed by subtraction",
        ),
        Convention(
            "ultralytics.utils.loss.FocalLoss",
            "logits",
            "alpha <= 0 (applied only when (alpha > 0).any())",
            "alpha pos / 1-alpha neg",
            "canonical",
            "none",
            "loss.mean(1).sum() (no elementwise output)",
            "one-hot floats",
            "default gamma 1.5; alpha stored as torch.tensor(alpha) (float32), cast to the input dtype",
        ),
        Convention(
            "mmdet.models.losses.focal_loss.py_sigmoid_focal_loss",
            "logits",
            "cannot (alpha_t always applied)",
            "alpha pos / 1-alpha neg",
            "canonical",
            "none",
            "all elements; with avg_factor: sum / (avg_factor + FLT_EPSILON)",
            "one-hot floats",
            "pure-PyTorch path (the CUDA path is mmcv.ops.sigmoid_focal_loss)",
        ),
        Convention(
            "paddle.nn.functional.sigmoid_focal_loss",
            "logits",
            "cannot (alpha_t always applied)",
            "alpha pos / 1-alpha neg",
            "canonical",
            "none",
            "all elements; normalizer divides every element first",
            "one-hot floats",
            "float32/float64 only; 0-D and 1-D inputs raise in 3.3.1",
        ),
        Convention(
            "official.vision.losses.focal_loss.FocalLoss",
            "logits",
            "cannot (where(y == 1, alpha, 1 - alpha) always applied)",
            "alpha pos / 1-alpha neg",
            "hard only (a soft target counts as negative)",
            "none",
            "tf_keras reduction (SUM_OVER_BATCH_SIZE: all elements)",
            "0/1 floats",
            "casts y_true/y_pred to float32",
        ),
        Convention(
            "focal_loss.BinaryFocalLoss",
            "probs or logits",
            "pos_weight=None",
            "pos_weight on the positive term only",
            "two_term-like",
            "probs: max(p, 1e-7)",
            "Keras reduction",
            "labels cast to bool without label smoothing",
        ),
    ]
}


def get_convention(implementation: str) -> Convention:
    """The convention of an implementation; KeyError naming the known ones otherwise."""
    try:
        return CONVENTIONS[implementation]
    except KeyError:
        raise KeyError(f"no convention recorded for {implementation!r}; known: {', '.join(CONVENTIONS)}") from None
