"""TF Model Garden's RetinaNet ``FocalLoss`` (``official/vision/losses/focal_loss.py``).

tf-models-official 2.20.0 (the newest) pins ``tensorflow~=2.20.0`` and ``tensorflow-text~=2.20.0``:
beside tensorflow-cpu 2.21 pip would install the ``tensorflow`` 2.20.0 distribution as well (two
TensorFlows writing one package).  And ``import official.vision`` pulls in its configs and tasks
(tensorflow-text, tf-slim, pycocotools ...).  The loss itself needs only ``tensorflow`` and
``tf_keras``, so the env installs ``tf-models-official==2.20.0 tf-keras==2.21.0`` with ``--no-deps``
and this adapter loads that one file by its path (located with importlib.metadata), unmodified.

Read at 2.20.0: ``y_true``/``y_pred`` cast to float32 (a float64 request is computed in float32),
``probs_gt = where(y_true == 1, p, 1 - p)``, ``pow(1 - probs_gt, gamma)`` (1 - p_t by subtraction;
its own comment: "With small gamma, the implementation could produce NaN during back prop"), times
``sigmoid_cross_entropy_with_logits``; alpha on ``y_true == 1`` and 1 - alpha on the rest, always
applied.  A soft target is treated as a negative in the factor and the weight: hard targets only.
Reductions are tf_keras's: NONE, SUM, SUM_OVER_BATCH_SIZE (the spec's none/sum/mean).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import cache
from typing import Any

import numpy as np

from focalspec.adapters.base import Adapter, AdapterError, one_line
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.tf_base import FocalLossTF, _tf
from focalspec.spec.variant import Variant

FILE = "official/vision/losses/focal_loss.py"
INSTALL = "pip install --no-deps tf-models-official==2.20.0 tf-keras==2.21.0"


@cache
def focal_loss_module() -> Any:
    """``official/vision/losses/focal_loss.py`` of the installed tf-models-official, by path."""
    path = importlib.metadata.distribution("tf-models-official").locate_file(FILE)
    spec = importlib.util.spec_from_file_location("focalspec_tfmodels_focal_loss", str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TfModelsFocalLoss(FocalLossTF):
    """``official.vision.losses.focal_loss.FocalLoss`` (loaded by path)."""

    name = "tf-models"
    implementation = "official.vision.losses.focal_loss.FocalLoss"
    package = "tf-models-official"
    module = "official"  # not imported: see unavailable_reason
    convention = "canonical on hard targets; alpha always applied; casts to float32"

    def unavailable_reason(self) -> str | None:
        if self._unavailable is False:
            try:
                _tf()
                focal_loss_module()
                self._unavailable = None
            except importlib.metadata.PackageNotFoundError:
                self._unavailable = f"tf-models-official is not installed here ({INSTALL})"
            except Exception as exc:
                self._unavailable = f"cannot load {FILE} of tf-models-official ({one_line(exc)}; {INSTALL})"
        return self._unavailable  # type: ignore[return-value]

    capabilities = Capabilities(
        "TF Model Garden's FocalLoss",
        soft_targets=("canonical",),
        alpha_off=False,
        convention="official.vision.losses.focal_loss.FocalLoss",
        hard_targets_on=("logits",),
        hard_targets_note="TF Model Garden's FocalLoss takes hard 0/1 targets only (a soft one counts as 0)",
    )

    def _loss(self, variant: Variant, x: Any, targets: np.ndarray, dtype: str) -> Any:
        import tf_keras  # type: ignore[import-not-found,import-untyped,unused-ignore]

        tf = _tf()
        t = np.asarray(targets, dtype=np.float64)
        if not np.all((t == 0) | (t == 1)):
            raise AdapterError("TF Model Garden's FocalLoss takes hard 0/1 targets only (a soft one counts as 0)")
        reduction = {
            "none": tf_keras.losses.Reduction.NONE,
            "sum": tf_keras.losses.Reduction.SUM,
            "mean": tf_keras.losses.Reduction.SUM_OVER_BATCH_SIZE,
        }[variant.reduction]
        alpha = float(variant.alpha)  # type: ignore[arg-type]
        loss_fn = focal_loss_module().FocalLoss(alpha=alpha, gamma=variant.gamma, reduction=reduction)
        return loss_fn(tf.constant(t, dtype=x.dtype), x)


def adapters() -> list[Adapter]:
    return [TfModelsFocalLoss()]
