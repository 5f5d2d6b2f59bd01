"""SAM3's Triton sigmoid focal loss kernels (PyPI ``sam3`` 0.1.4, ``sam3/train/loss/sigmoid_focal_loss.py``).

Both entry points, called unmodified: ``triton_sigmoid_focal_loss`` (element-wise, adapter
``sam3-triton``) and ``triton_sigmoid_focal_loss_reduce`` (sum, adapter ``sam3-triton-sum``).
Convention, read from the source: logits; canonical soft targets
(p_t = p t + (1 - p)(1 - t), the factor formed as ``1 - p_t``); alpha always applied
(alpha t + (1 - alpha)(1 - t), no switch to turn it off); no clipping, no label smoothing;
the inputs are cast to float32 and the loss is float32 whatever the input dtype, so float32
is the only dtype claimed.  The BCE is max(x, 0) - x t + log(1 + exp(-|x|)), max(x, 0) as
``clamp(x, 0, 1e9)``; the backward pass evaluates ``pow(1 - p_t, gamma - 1)``.

The module is loaded by file path, so SAM3's model dependencies are never imported (install
with ``pip install --no-deps sam3==0.1.4``).  Its kernels are ``@triton.jit`` at import, so on
CPU they run interpreted only when ``TRITON_INTERPRET=1`` is set before Python starts.  Under
the interpreter, the ``libdevice.pow`` SAM3 calls (an extern the interpreter cannot run) is
numpy's float32 ``power`` -- the CUDA run uses libdevice's ``__nv_powf``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from focalspec.adapters.base import Adapter, one_line
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.own_triton import INTERPRET, TritonAdapter, interpret_everywhere, triton_missing
from focalspec.spec.variant import Variant

LOSS_FILE = os.path.join("train", "loss", "sigmoid_focal_loss.py")
_MODULE: list[ModuleType] = []


def _interpreter_pow() -> Any:
    """A stand-in for ``libdevice`` holding ``pow`` as numpy's power (interpreter only)."""
    import numpy as np
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    class InterpreterLibdevice:
        @staticmethod
        def pow(a: Any, b: Any) -> Any:
            da = a.handle.data
            db = b.handle.data if isinstance(b, tl.tensor) else np.asarray(b, dtype=da.dtype)
            with np.errstate(all="ignore"):
                out = np.power(da, db.astype(da.dtype)).astype(da.dtype)
            return tl.tensor(TensorHandle(out, a.dtype.scalar), a.type)

    return InterpreterLibdevice()


def load_sam3_loss() -> ModuleType:
    """SAM3's loss module, imported by path (without ``sam3/__init__`` and its model deps)."""
    if _MODULE:
        return _MODULE[0]
    spec = importlib.util.find_spec("sam3")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("sam3 is not installed (pip install --no-deps sam3==0.1.4)")
    path = os.path.join(next(iter(spec.submodule_search_locations)), LOSS_FILE)
    file_spec = importlib.util.spec_from_file_location("focalspec_sam3_sigmoid_focal_loss", path)
    if file_spec is None or file_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    if interpret_everywhere():
        module.libdevice = _interpreter_pow()  # type: ignore[attr-defined]
    _MODULE.append(module)
    return module


def sam3_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("sam3")
    except Exception:
        return None


class Sam3Adapter(TritonAdapter):
    """One SAM3 entry point (element-wise, or sum-reduced)."""

    convention = "sam3.train.loss.sigmoid_focal_loss"
    dtypes = ("float32",)

    def __init__(self, reduced: bool) -> None:
        super().__init__()
        self.reduced = reduced
        self.name = "sam3-triton-sum" if reduced else "sam3-triton"
        entry = "triton_sigmoid_focal_loss_reduce" if reduced else "triton_sigmoid_focal_loss"
        self.implementation = f"sam3.train.loss.sigmoid_focal_loss.{entry}"
        self._entry = entry
        self.capabilities = Capabilities(
            "SAM3's Triton kernel",
            soft_targets=("canonical",),
            reductions=("sum",) if reduced else ("none",),
            alpha_off=False,
            convention="sam3.train.loss.sigmoid_focal_loss",
        )

    def _probe(self) -> str | None:
        reason = triton_missing()
        if reason:
            return reason
        if importlib.util.find_spec("sam3") is None:
            return "sam3 is not installed (pip install --no-deps sam3==0.1.4)"
        import torch

        if not interpret_everywhere() and not torch.cuda.is_available():
            return "SAM3's kernels are @triton.jit at import: on CPU set TRITON_INTERPRET=1 before Python starts"
        try:
            load_sam3_loss()
        except Exception as exc:
            return f"SAM3's loss module cannot be loaded: {one_line(exc)}"
        return None

    def framework_version(self) -> str | None:
        base = super().framework_version()
        return None if base is None else f"{base}, sam3 {sam3_version()}"

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if device == "cpu" and not interpret_everywhere():
            return "SAM3's kernels run on CPU only under TRITON_INTERPRET=1 (set before Python starts)"
        return super().supports(variant, dtype, device, mode)

    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        fn = getattr(load_sam3_loss(), self._entry)
        alpha, gamma = float(variant.alpha), float(variant.gamma)  # type: ignore[arg-type]
        return lambda x, t: fn(x, t, alpha, gamma)

    def launch_mode(self) -> str:
        return INTERPRET if interpret_everywhere() else "cuda"

    def ran_extra(self) -> dict[str, Any]:
        extra = super().ran_extra()
        extra["sam3_version"] = sam3_version()
        if interpret_everywhere():
            extra["libdevice_pow"] = "numpy float32 power (interpreter stand-in for __nv_powf)"
        return extra


def adapters() -> list[Adapter]:
    """Both SAM3 entry points (the ``BUILTIN`` factory)."""
    return [Sam3Adapter(reduced=False), Sam3Adapter(reduced=True)]
