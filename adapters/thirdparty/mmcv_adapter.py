"""mmcv's compiled focal-loss ops (``mmcv.ops``; CUDA kernels only)."""

from __future__ import annotations

import importlib
from typing import Any

from focalspec.adapters.base import Adapter, one_line
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import (
    _binary_targets,
    _torch,
    class_indices,
)
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant

MMCV_NO_OPS = (
    "mmcv.ops is not importable ({err}); PyPI has mmcv 2.2.0 as source only (no wheel for torch {torch}), "
    "its focal-loss ops have CUDA/MLU/NPU kernels only (no CPU kernel in mmcv/ops/csrc/pytorch/cpu), "
    "so a CPU source build would not provide them either"
)


class MmcvBase(TorchAdapter):
    """mmcv's compiled focal-loss ops (CUDA kernels; no CPU kernel exists upstream)."""

    package = "mmcv"
    module = "mmcv.ops"
    cuda_only = True
    dtypes = ("float64", "float32", "float16")  # AT_DISPATCH_FLOATING_TYPES_AND_HALF

    def _probe(self) -> str | None:
        try:
            torch = _torch()
        except Exception as exc:
            return f"torch is not installed here ({one_line(exc)})"
        try:
            importlib.import_module(self.module)
        except Exception as exc:
            return MMCV_NO_OPS.format(err=one_line(exc), torch=torch.__version__)
        if not torch.cuda.is_available():
            return "no CUDA device (mmcv's focal-loss ops have no CPU kernel)"
        return None


class MmcvSigmoid(MmcvBase):
    """``mmcv.ops.sigmoid_focal_loss``: logits (N, C) and one label per row (label C = all
    negative); alpha for the label's class, 1 - alpha for the others, always on.  The adapter
    lays the elements out as (n, 1) with label 0 (positive) or 1 (negative), which expresses
    any hard-target array and makes mmcv's 'mean' (sum / N rows) the plain mean."""

    name = "mmcv-sigmoid"
    implementation = "mmcv.ops.sigmoid_focal_loss"
    convention = "canonical on hard labels; alpha always applied; 'mean' = sum / rows; log(max(p, FLT_MIN))"

    capabilities = Capabilities(
        "mmcv sigmoid_focal_loss", alpha_off=False, convention="mmcv.ops.sigmoid_focal_loss",
        hard_targets_on=("logits",),
        hard_targets_note="mmcv sigmoid_focal_loss takes one integer label per row: hard 0/1 targets only",
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from mmcv.ops import sigmoid_focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        torch = _torch()
        _binary_targets(t, "mmcv sigmoid_focal_loss (one integer label per row)")
        labels = torch.where(t.reshape(-1) == 1, 0, 1).to(torch.int64)  # label 1 == num_classes: negative
        out = sigmoid_focal_loss(
            x.reshape(-1, 1).contiguous(), labels, float(variant.gamma), float(variant.alpha), None, variant.reduction
        )
        return out.reshape(x.shape) if variant.reduction == "none" else out


class MmcvSoftmax(MmcvBase):
    """``mmcv.ops.softmax_focal_loss``: -alpha (1-p_y)^g log max(p_y, FLT_MIN) per row, alpha on
    every class ('mean' = sum / rows, the spec's softmax mean).  alpha=None is passed as 1.0
    (an exact no-op); a per-class alpha as alpha=1.0 with ``weight`` (read as weight[label])."""

    name = "mmcv-softmax"
    implementation = "mmcv.ops.softmax_focal_loss"
    convention = "softmax on labels; alpha multiplies every class; per-class alpha via weight[label]"

    capabilities = Capabilities(
        "mmcv softmax_focal_loss", activations=("softmax",), convention="mmcv.ops.softmax_focal_loss", labels_only=True
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from mmcv.ops import softmax_focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        torch = _torch()
        assert n_classes is not None
        labels = t if t.dtype == torch.int64 else None
        if labels is None:
            labels = torch.from_numpy(class_indices(t.cpu().numpy(), n_classes, self.name)).to(x.device)
        weight = None
        alpha = 1.0 if variant.alpha is None else variant.alpha
        if isinstance(alpha, tuple):
            weight = torch.tensor(alpha, dtype=x.dtype, device=x.device)
            alpha = 1.0
        rows = x.shape[:-1]
        out = softmax_focal_loss(
            x.reshape(-1, n_classes).contiguous(),
            labels.reshape(-1),
            float(variant.gamma),
            float(alpha),
            weight,
            variant.reduction,
        )
        return out.reshape(rows) if variant.reduction == "none" else out


def adapters() -> list[Adapter]:
    """The registry's factory: every adapter of this library (unavailable ones say why)."""
    return [MmcvSigmoid(), MmcvSoftmax()]
