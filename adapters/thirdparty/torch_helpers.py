"""Helpers the third-party PyTorch adapters share (fvcore, kornia, MONAI, segmentation_models_pytorch,
mmcv, transformers, ultralytics, mmdet: one module each beside this one; their base is
``adapters/torch_base.TorchAdapter``, as for every PyTorch adapter).

Each adapter calls the library's own public function or module, unmodified, and says two
things about it, both read from its source (spec/research/implementations.md quotes it):

* ``declared_variant(variant)`` -- the Variant the implementation actually computes when
  asked for ``variant`` (smp's soft targets follow the geometric form, MONAI's the margin
  form, kornia's binary loss the two-term form, kornia/MONAI softmax weight class 0 by
  ``1 - alpha``).  Checking an implementation against its declared variant separates a
  documented convention from a defect.
* ``capabilities`` -- what it accepts; every request outside them is a reason, never a run.

fvcore's ``sigmoid_focal_loss_star`` (FL*) is not a focal loss of the spec at all; its
adapter says so for every variant and evaluates FL* only when called directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends.torch_backend import torch_module
from focalspec.adapters.base import AdapterError
from focalspec.spec.variant import SpecError, Variant

# torch from the backend, imported once with every reduced-precision float32 path off: a third-party
# loss's float32 claim is measured as strictly as focalspec's own
_torch = torch_module


def class_indices(targets: np.ndarray, n_classes: int, who: str) -> np.ndarray:
    """Softmax targets as int64 class indices: indices pass through, exactly one-hot rows are
    converted; any other distribution is an error (these implementations take labels only)."""
    t = np.asarray(targets)
    if t.dtype.kind in "iu":
        return t.astype(np.int64)
    if t.ndim >= 1 and t.shape[-1] == n_classes and np.all((t == 0) | (t == 1)) and np.all(t.sum(-1) == 1):
        return np.argmax(t, axis=-1).astype(np.int64)
    raise AdapterError(f"{who} takes integer class labels only; soft target distributions cannot be passed")


def alpha_vector_scalar(alpha: tuple[float, ...]) -> float | None:
    """a when ``alpha`` is exactly (1 - a, a, ..., a) -- the only per-class vector that the
    scalar alpha of kornia/MONAI softmax produces -- else None."""
    if len(alpha) < 2:
        return None
    a = float(alpha[1])
    if all(float(v) == a for v in alpha[1:]) and float(alpha[0]) == 1 - a:
        return a
    return None


def background_alpha(variant: Variant, n_classes: int | None, who: str) -> Variant:
    """The declared softmax variant of kornia/MONAI: a scalar alpha weights class 0 (background)
    by 1 - alpha and every other class by alpha."""
    if variant.alpha is None or isinstance(variant.alpha, tuple):
        return variant
    if n_classes is None:
        raise SpecError(f"{who}: the declared alpha vector (1 - alpha, alpha, ...) depends on the number of classes")
    a = float(variant.alpha)
    return variant.with_(alpha=(1 - a,) + (a,) * (n_classes - 1))


# the refusal of 'mean' by a softmax loss that returns a (N, C, *) per-component map (kornia, MONAI)
CLASS_MAP_MEAN = "{who}'s 'mean' divides by every element of the (N, C, *) loss map (N*C), not by the number of rows"


def per_element(fn: Callable[[Any, Any], Any], x: Any, t: Any) -> Any:
    """The elementwise loss of an implementation that only returns a reduced value: ``fn`` is
    called (vmapped) on every element alone, as a (1, 1) array, where its own reduction
    (a mean over one element, a sum of one) is the identity.  Shape of ``x``."""
    torch = _torch()
    flat = torch.func.vmap(lambda xi, ti: fn(xi.reshape(1, 1), ti.reshape(1, 1)))(x.reshape(-1), t.reshape(-1))
    return flat.reshape(x.shape)


def _binary_targets(t: Any, who: str) -> None:
    torch = _torch()
    if not bool(torch.all((t == 0) | (t == 1))):
        raise AdapterError(f"{who} takes hard 0/1 targets only")
