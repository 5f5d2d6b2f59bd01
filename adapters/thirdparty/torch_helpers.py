"""The base of the third-party PyTorch adapters (fvcore, kornia, MONAI, segmentation_models_pytorch,
mmcv, transformers, ultralytics, mmdet: one module each beside this one) and their shared helpers.

Each adapter calls the library's own public function or module, unmodified, and says two
things about it, both read from its source (spec/research/implementations.md quotes it):

* ``declared_variant(variant)`` -- the Variant the implementation actually computes when
  asked for ``variant`` (smp's soft targets follow the geometric form, MONAI's the margin
  form, kornia's binary loss the two-term form, kornia/MONAI softmax weight class 0 by
  ``1 - alpha``).  Checking an implementation against its declared variant separates a
  documented convention from a defect.
* ``supports(...)`` -- a reason for every request the implementation cannot express (a
  reduction it does not have, probability inputs, an alpha it cannot switch off ...).

fvcore's ``sigmoid_focal_loss_star`` (FL*) is not a focal loss of the spec at all; its
adapter says so for every variant and evaluates FL* only when called directly.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends.torch_backend import torch_dtype, torch_module
from focalspec.adapters.base import DEVICES, Adapter, AdapterError, Output, framework_errors, one_line
from focalspec.spec.variant import SpecError, Variant

TORCH_DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")


# torch from the backend, imported once with every reduced-precision float32 path off: a third-party
# loss's float32 claim is measured as strictly as focalspec's own
_torch = torch_module
_torch_dtype = torch_dtype


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


class ThirdPartyTorch(Adapter):
    """Common machinery: availability, exact conversion to torch, autograd of sum(loss),
    one-line errors.  Subclasses set the class attributes and implement ``variant_reason``
    and ``_loss``."""

    framework = "torch"
    package = ""  # the distribution whose version is reported, e.g. "fvcore"
    module = ""  # what must import for the adapter to be usable
    dtypes = TORCH_DTYPES
    modes = ("eager",)
    cuda_only = False

    def __init__(self) -> None:
        self._unavailable: str | bool | None = False  # False: not probed yet

    # ------------------------------------------------------------------ availability

    def unavailable_reason(self) -> str | None:
        if self._unavailable is False:
            self._unavailable = self._probe()
        return self._unavailable  # type: ignore[return-value]

    def _probe(self) -> str | None:
        try:
            _torch()
        except Exception as exc:
            return f"torch is not installed here ({one_line(exc)})"
        try:
            importlib.import_module(self.module)
        except Exception as exc:
            return f"{self.package} is not installed here ({self.module}: {one_line(exc)})"
        return None

    def framework_version(self) -> str | None:
        try:
            return str(_torch().__version__)
        except Exception:
            return None

    def devices(self) -> tuple[str, ...]:
        if self.unavailable_reason():
            return ()
        has_cuda = bool(_torch().cuda.is_available())
        if self.cuda_only:
            return ("cuda",) if has_cuda else ()
        return ("cpu", "cuda") if has_cuda else ("cpu",)

    # ------------------------------------------------------------------ what it can do

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        """The variant this implementation computes when asked for ``variant`` (the identity
        for a conforming implementation).  ``n_classes`` is needed only where the declared
        convention depends on it (softmax alpha of kornia/MONAI)."""
        return variant


    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        reason = self.unavailable_reason()
        if reason:
            return reason
        if dtype not in self.dtypes:
            return f"{self.name} does not run in {dtype} (supported: {', '.join(self.dtypes)})"
        if device not in DEVICES:
            return f"unknown device {device!r}"
        if device not in self.devices():
            return "no CUDA device" if device == "cuda" else f"{self.name} has no {device} implementation"
        if mode not in self.modes:
            return f"{self.name} is tested in eager mode only"
        return self.variant_reason(variant)

    # ------------------------------------------------------------------ running

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        """Call the implementation; ``x`` is the leaf tensor in the requested dtype, ``t`` the
        targets (same dtype for sigmoid, int64 indices or distributions for softmax).  Returns
        a tensor of the spec's loss shape (elementwise / per row) or a scalar."""
        raise NotImplementedError

    def _targets(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dt: Any, dev: Any) -> Any:
        torch = _torch()
        t = np.asarray(targets)
        if variant.activation == "softmax" and t.dtype.kind in "iu":
            return torch.from_numpy(t.astype(np.int64)).to(dev)
        return torch.from_numpy(np.array(t, dtype=np.float64, order="C")).to(device=dev, dtype=dt)

    def run(
        self,
        variant: Variant,
        inputs: np.ndarray,
        targets: np.ndarray,
        dtype: str,
        device: str = "cpu",
        mode: str = "eager",
        want_grad: bool = True,
    ) -> Output:
        reason = self.supports(variant, dtype, device, mode)
        if reason:
            raise AdapterError(f"{self.name}: {reason}")
        return self._run(variant, inputs, targets, dtype, device, want_grad)

    def _run(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, want_grad: bool
    ) -> Output:
        torch = _torch()
        dt, dev = _torch_dtype(dtype), torch.device(device)
        inputs = np.asarray(inputs, dtype=np.float64)
        n_classes = inputs.shape[-1] if variant.activation == "softmax" and inputs.ndim else None
        with framework_errors(f"{self.name}: "):
            # float64 -> dtype is exact: the values are dtype values already
            x = torch.from_numpy(np.array(inputs, order="C")).to(device=dev, dtype=dt).requires_grad_(want_grad)
            t = self._targets(variant, inputs, targets, dt, dev)
            loss = self._loss(variant, x, t, n_classes)
            grad = None
            if want_grad:
                if loss.requires_grad:
                    (g,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
                    grad = torch.zeros_like(x) if g is None else g
                else:
                    grad = torch.zeros_like(x)
            loss_np = loss.detach().to("cpu", torch.float64).numpy().copy()
            grad_np = None if grad is None else grad.detach().to("cpu", torch.float64).numpy().copy()
            out_dtype = str(loss.dtype).removeprefix("torch.")
        ran = {
            "framework": "torch",
            "framework_version": self.framework_version(),
            "package": self.package,
            "package_version": self.package_version(),
            "implementation": self.implementation,
            "device": device if device == "cpu" else torch.cuda.get_device_name(dev),
            "mode": "eager",
            "dtype": dtype,
            "output_dtype": out_dtype,  # fvcore/MONAI hand back float32 whatever the input dtype
        }
        return Output(loss=loss_np, grad=grad_np, ran=ran)

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
