"""Adapters for the third-party PyTorch focal losses people use: fvcore, kornia, MONAI,
segmentation_models_pytorch and mmcv.

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

from focalspec.adapters.base import DEVICES, Adapter, AdapterError, Output, framework_errors, one_line
from focalspec.spec.variant import SpecError, Variant

TORCH_DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")
SIGMOID_REDUCTIONS: tuple[str, ...] = ("none", "sum", "mean")


def _torch() -> Any:
    import torch  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return torch


def _torch_dtype(dtype: str) -> Any:
    torch = _torch()
    return {
        "float64": torch.float64,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[dtype]


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

    def variant_reason(self, variant: Variant) -> str | None:
        """None when ``variant`` maps onto the implementation's arguments, else why not."""
        raise NotImplementedError

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


def _sigmoid_reason(variant: Variant, who: str, reductions: tuple[str, ...] = SIGMOID_REDUCTIONS) -> str | None:
    if variant.activation != "sigmoid":
        return f"{who} is a sigmoid (binary) focal loss; softmax is not offered"
    if variant.clip_eps is not None:
        return f"{who} has no probability-clipping convention"
    if variant.label_smoothing:
        return f"{who} has no label smoothing"
    if variant.reduction not in reductions:
        return f"{who} has no reduction {variant.reduction!r} (offers {', '.join(reductions)})"
    return None


def _class_map_reason(variant: Variant, who: str, sibling: str) -> str | None:
    """Softmax losses that return a (N, C, *) per-component map (kornia, MONAI): logits only,
    no clipping or smoothing, and a 'mean' over N*C components rather than over rows."""
    if variant.activation != "softmax":
        return f"{who} is a softmax loss ({sibling} is the sigmoid one)"
    if variant.input_kind != "logits":
        return f"{who} takes logits only"
    if variant.clip_eps is not None or variant.label_smoothing:
        return f"{who} has neither clipping nor label smoothing"
    if variant.reduction == "mean":
        return f"{who}'s 'mean' divides by every element of the (N, C, *) loss map (N*C), not by the number of rows"
    if variant.reduction not in ("none", "sum"):
        return f"{who} has no reduction {variant.reduction!r}"
    return None


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


# ============================================================================ fvcore


class Fvcore(ThirdPartyTorch):
    """``fvcore.nn.sigmoid_focal_loss``: torchvision's body with ``alpha=-1`` (off) by
    default; alpha < 0 disables balancing.  It starts with ``inputs = inputs.float()``, so a
    float64 request is computed in float32 (a defect the suite reports, not a convention)."""

    name = "fvcore"
    implementation = "fvcore.nn.sigmoid_focal_loss"
    package = "fvcore"
    module = "fvcore.nn"
    convention = "canonical; alpha < 0 (default -1) disables alpha; computes in float32 (inputs.float())"

    def variant_reason(self, variant: Variant) -> str | None:
        reason = _sigmoid_reason(variant, "fvcore sigmoid_focal_loss")
        if reason:
            return reason
        if variant.input_kind != "logits":
            return "fvcore sigmoid_focal_loss takes logits only"
        if variant.soft_target != "canonical":
            return "fvcore computes the canonical soft-target form only"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from fvcore.nn import sigmoid_focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = -1.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        return sigmoid_focal_loss(x, t, alpha=alpha, gamma=variant.gamma, reduction=variant.reduction)


FL_STAR_REASON = (
    "FL* = -logsigmoid(gamma*x*(2t-1))/gamma (RetinaNet appendix) is a different loss, not a focal-loss variant "
    "of the spec: it has no (1-p_t)^gamma factor and no gamma=0 limit"
)


class FvcoreStar(ThirdPartyTorch):
    """``fvcore.nn.sigmoid_focal_loss_star`` (FL*).  Not the spec's focal loss: ``supports``
    refuses every variant (so the conformance suite skips it with that reason), while
    ``run_star`` evaluates FL* for its own closed-form check (tests/test_thirdparty.py)."""

    name = "fvcore-star"
    implementation = "fvcore.nn.sigmoid_focal_loss_star"
    package = "fvcore"
    module = "fvcore.nn"
    convention = "not a spec focal loss: FL* = -logsigmoid(gamma x (2t-1)) / gamma, alpha_t as canonical"

    def variant_reason(self, variant: Variant) -> str | None:
        return FL_STAR_REASON

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        raise SpecError(f"fvcore-star: {FL_STAR_REASON}")

    def run_star(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        gamma: float,
        alpha: float | None,
        dtype: str,
        reduction: str = "none",
        want_grad: bool = True,
    ) -> Output:
        """Evaluate FL* itself (gamma > 0; alpha None disables, as alpha=-1 does in fvcore)."""
        reason = self.unavailable_reason()
        if reason:
            raise AdapterError(f"{self.name}: {reason}")
        if dtype not in self.dtypes:
            raise AdapterError(f"{self.name} does not run in {dtype}")
        if reduction not in SIGMOID_REDUCTIONS:
            raise AdapterError(f"{self.name} has no reduction {reduction!r}")
        # gamma = 0 is legal for the Variant; FL* divides by it (reported by the adapter as inf/nan, not hidden)
        variant = Variant(gamma=gamma, alpha=alpha, reduction=reduction)  # type: ignore[arg-type]
        return self._run(variant, inputs, targets, dtype, "cpu", want_grad)

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from fvcore.nn import sigmoid_focal_loss_star  # type: ignore[import-not-found,import-untyped,unused-ignore]

        alpha = -1.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
        return sigmoid_focal_loss_star(x, t, alpha=alpha, gamma=variant.gamma, reduction=variant.reduction)


# ============================================================================ kornia


class KorniaBinary(ThirdPartyTorch):
    """``kornia.losses.binary_focal_loss_with_logits``: the two-term form
    ``alpha t sig(-x)^g (-log sig(x)) + (1-alpha)(1-t) sig(x)^g (-log sig(-x))`` in log
    space; alpha=None weights both terms by 1.  Identical to canonical for hard targets."""

    name = "kornia-binary"
    implementation = "kornia.losses.binary_focal_loss_with_logits"
    package = "kornia"
    module = "kornia.losses"
    convention = "two_term soft targets; alpha None -> weights (1, 1); pred needs (B, C, *)"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return variant.with_(soft_target="two_term") if variant.activation == "sigmoid" else variant

    def variant_reason(self, variant: Variant) -> str | None:
        reason = _sigmoid_reason(variant, "kornia binary_focal_loss_with_logits")
        if reason:
            return reason
        if variant.input_kind != "logits":
            return "kornia binary_focal_loss_with_logits takes logits only"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from kornia.losses import binary_focal_loss_with_logits  # type: ignore[import-not-found,import-untyped,unused-ignore]

        shape = x.shape
        # kornia checks pred is (B, C, *): lay the elements out as one row of channels
        out = binary_focal_loss_with_logits(
            x.reshape(1, -1),
            t.reshape(1, -1),
            alpha=None if variant.alpha is None else float(variant.alpha),  # type: ignore[arg-type]
            gamma=variant.gamma,
            reduction=variant.reduction,
        )
        return out.reshape(shape) if variant.reduction == "none" else out


class KorniaMulticlass(ThirdPartyTorch):
    """``kornia.losses.focal_loss``: softmax focal loss on integer labels; a scalar alpha gives
    class 0 the weight 1 - alpha and every other class alpha (declared as that vector).
    'none' returns a (B, C, *) map whose non-target slices are exactly 0: the adapter sums it
    over C in torch (exact), to get the spec's per-row loss.  'mean' divides by B*C*..., not
    by the number of rows: not offered."""

    name = "kornia-multiclass"
    implementation = "kornia.losses.focal_loss"
    package = "kornia"
    module = "kornia.losses"
    convention = "softmax, integer labels; scalar alpha -> (1-alpha, alpha, ..., alpha); 'mean' divides by N*C"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return background_alpha(variant, n_classes, self.name)

    def variant_reason(self, variant: Variant) -> str | None:
        reason = _class_map_reason(variant, "kornia focal_loss", "kornia-binary")
        if reason:
            return reason
        if isinstance(variant.alpha, tuple) and alpha_vector_scalar(variant.alpha) is None:
            return "kornia's alpha is the vector (1-a, a, ..., a); another per-class alpha cannot be expressed"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from kornia.losses import focal_loss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        torch = _torch()
        assert n_classes is not None
        labels = t if t.dtype == torch.int64 else None
        if labels is None:
            labels = torch.from_numpy(class_indices(t.cpu().numpy(), n_classes, self.name)).to(x.device)
        alpha = variant.alpha
        if isinstance(alpha, tuple):
            alpha = alpha_vector_scalar(alpha)
        pred = x.reshape(1, n_classes) if x.ndim == 1 else x.movedim(-1, 1)
        lab = labels.reshape(1) if x.ndim == 1 else labels
        out = focal_loss(pred, lab, alpha=alpha, gamma=variant.gamma, reduction=variant.reduction)
        if variant.reduction == "none":
            out = out.sum(dim=1)  # one non-zero slice per row: the sum is exact
            return out.reshape(()) if x.ndim == 1 else out
        return out


# ============================================================================ MONAI


def _monai_focal(**kwargs: Any) -> Any:
    from monai.losses import FocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return FocalLoss(**kwargs)


class MonaiSigmoid(ThirdPartyTorch):
    """``monai.losses.FocalLoss`` (sigmoid): BCE x exp(gamma logsigmoid(-x(2t-1))) -- the
    margin form, equal to canonical for hard targets.  Inputs are laid out as (N, 1, 1) so
    that MONAI's 'sum' (a sum of per-channel spatial means) is the plain sum.  It casts
    ``input.float()``: a float64 request is computed in float32 (a defect, not a convention)."""

    name = "monai-sigmoid"
    implementation = "monai.losses.FocalLoss"
    package = "monai"
    module = "monai.losses"
    convention = "margin soft targets: (1-p_t) = sigmoid(-x(2t-1)); computes in float32 (input.float())"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return variant.with_(soft_target="margin") if variant.activation == "sigmoid" else variant

    def variant_reason(self, variant: Variant) -> str | None:
        reason = _sigmoid_reason(variant, "MONAI FocalLoss (sigmoid)")
        if reason:
            return reason
        if variant.input_kind != "logits":
            return "MONAI FocalLoss takes logits only"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        loss_fn = _monai_focal(gamma=variant.gamma, alpha=variant.alpha, reduction=variant.reduction)
        out = loss_fn(x.reshape(-1, 1, 1), t.reshape(-1, 1, 1))
        return out.reshape(x.shape) if variant.reduction == "none" else out


class MonaiSoftmax(ThirdPartyTorch):
    """``monai.losses.FocalLoss(use_softmax=True)``: per component -(1-p_c)^g t_c log p_c,
    summed over classes by the adapter (in torch) for 'none'; a scalar alpha weights class 0
    by 1 - alpha and the others by alpha; a sequence alpha (MONAI >= 1.5) is per class.
    Labels go through MONAI's own ``to_onehot_y``; distributions are passed as they are.
    'mean' divides by N*C: not offered.  Computes in float32 (``input.float()``)."""

    name = "monai-softmax"
    implementation = "monai.losses.FocalLoss(use_softmax=True)"
    package = "monai"
    module = "monai.losses"
    convention = "softmax; scalar alpha -> (1-alpha, alpha, ...); 'mean' divides by N*C; computes in float32"

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return background_alpha(variant, n_classes, self.name)

    def variant_reason(self, variant: Variant) -> str | None:
        return _class_map_reason(variant, "MONAI FocalLoss(use_softmax=True)", "monai-sigmoid")

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        torch = _torch()
        assert n_classes is not None
        alpha = list(variant.alpha) if isinstance(variant.alpha, tuple) else variant.alpha
        rows = x.shape[:-1]
        pred = x.reshape(-1, n_classes, 1)
        if t.dtype == torch.int64:
            loss_fn = _monai_focal(
                gamma=variant.gamma, alpha=alpha, reduction=variant.reduction, use_softmax=True, to_onehot_y=True
            )
            out = loss_fn(pred, t.reshape(-1, 1, 1))
        else:
            loss_fn = _monai_focal(gamma=variant.gamma, alpha=alpha, reduction=variant.reduction, use_softmax=True)
            out = loss_fn(pred, t.reshape(-1, n_classes, 1))
        if variant.reduction == "none":
            return out.sum(dim=1).reshape(rows)
        return out


# ============================================================================ segmentation_models_pytorch


class Smp(ThirdPartyTorch):
    """``segmentation_models_pytorch.losses.FocalLoss(mode="binary")``: ``pt = exp(-BCE)``,
    ``(1 - pt)^gamma * BCE`` -- the geometric soft-target form.  On probabilities
    (``from_logits=False``) it clamps to [eps, 1-eps] (eps=1e-7 by default) and converts back
    to logits with log(p/(1-p)): declared as the clip convention, hard targets only."""

    name = "smp"
    implementation = "segmentation_models_pytorch.losses.FocalLoss"
    package = "segmentation-models-pytorch"
    module = "segmentation_models_pytorch.losses"
    convention = "geometric soft targets: 1-p_t = 1-exp(-BCE); probs clamped to [1e-7, 1-1e-7]"
    DEFAULT_EPS = 1e-7

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        if variant.activation != "sigmoid":
            return variant
        if variant.input_kind == "probs":
            return variant.with_(clip_eps=variant.clip_eps or self.DEFAULT_EPS)
        return variant.with_(soft_target="geometric")

    def variant_reason(self, variant: Variant) -> str | None:
        if variant.activation != "sigmoid":
            return "smp FocalLoss multiclass mode is one-vs-rest sigmoid (sum of per-class means), not softmax"
        if variant.label_smoothing:
            return "smp FocalLoss has no label smoothing"
        if variant.input_kind == "logits" and variant.clip_eps is not None:
            return "smp clips probabilities only on the from_logits=False path"
        if variant.reduction not in SIGMOID_REDUCTIONS:
            return f"smp FocalLoss has no reduction {variant.reduction!r}"
        return None

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        from segmentation_models_pytorch.losses import FocalLoss  # type: ignore[import-not-found,import-untyped,unused-ignore]

        probs = variant.input_kind == "probs"
        if probs:  # the geometric form after clipping is no spec variant: hard targets only
            _binary_targets(t, "smp on probabilities (declared: clip convention)")
        loss_fn = FocalLoss(
            mode="binary",
            alpha=None if variant.alpha is None else float(variant.alpha),  # type: ignore[arg-type]
            gamma=variant.gamma,
            reduction=variant.reduction,
            from_logits=not probs,
            eps=variant.clip_eps or self.DEFAULT_EPS,
        )
        out = loss_fn(x, t)
        return out.reshape(x.shape) if variant.reduction == "none" else out


# ============================================================================ mmcv

MMCV_NO_OPS = (
    "mmcv.ops is not importable ({err}); PyPI has mmcv 2.2.0 as source only (no wheel for torch {torch}), "
    "its focal-loss ops have CUDA/MLU/NPU kernels only (no CPU kernel in mmcv/ops/csrc/pytorch/cpu), "
    "so a CPU source build would not provide them either"
)


class MmcvBase(ThirdPartyTorch):
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

    def variant_reason(self, variant: Variant) -> str | None:
        reason = _sigmoid_reason(variant, "mmcv sigmoid_focal_loss")
        if reason:
            return reason
        if variant.input_kind != "logits":
            return "mmcv sigmoid_focal_loss takes logits only"
        if variant.alpha is None:
            return (
                "mmcv always applies alpha (alpha for the label's class, 1-alpha otherwise): alpha=None is impossible"
            )
        return None

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

    def variant_reason(self, variant: Variant) -> str | None:
        if variant.activation != "softmax":
            return "mmcv softmax_focal_loss is a softmax loss (mmcv-sigmoid is the sigmoid one)"
        if variant.input_kind != "logits":
            return "mmcv softmax_focal_loss takes logits only"
        if variant.clip_eps is not None or variant.label_smoothing:
            return "mmcv softmax_focal_loss has neither clipping nor label smoothing"
        if variant.reduction not in ("none", "sum", "mean"):
            return f"mmcv softmax_focal_loss has no reduction {variant.reduction!r}"
        return None

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


FACTORIES: tuple[Callable[[], Adapter], ...] = (
    Fvcore,
    FvcoreStar,
    KorniaBinary,
    KorniaMulticlass,
    MonaiSigmoid,
    MonaiSoftmax,
    Smp,
    MmcvSigmoid,
    MmcvSoftmax,
)


def adapters() -> list[Adapter]:
    """Every third-party torch adapter (the ``BUILTIN`` factory); unavailable ones say why."""
    return [factory() for factory in FACTORIES]
