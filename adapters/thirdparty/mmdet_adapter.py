"""mmdetection's pure-PyTorch ``py_sigmoid_focal_loss`` (its CUDA path is mmcv's kernel).

``mmdet/models/losses/focal_loss.py`` imports ``mmcv.ops`` at module level, and ``import mmdet``
asserts ``2.0.0rc4 <= mmcv < 2.2.0``, so neither imports where mmcv's compiled ops are missing
(every CPU machine: PyPI has mmcv 2.2.0 as an sdist only; mmcv-lite 2.2.0 is outside mmdet's
range and ships ``mmcv/ops`` without the compiled ``_ext`` that ``mmcv/ops/focal_loss.py`` loads).  The
function itself is plain PyTorch: this adapter reads the installed files
(``pip install --no-deps mmdet``), takes ``py_sigmoid_focal_loss`` and the
``weight_reduce_loss``/``reduce_loss`` it calls out of them *unmodified* (by their source
text, located with importlib.metadata) and compiles them with torch and F in scope.

Read at 3.3.0: ``pt = (1-sigmoid(x))*t + sigmoid(x)*(1-t)`` (that is 1 - p_t, formed by
subtraction), ``(alpha*t + (1-alpha)*(1-t)) * pt**gamma * BCE``: canonical, alpha always applied
(no off switch).  Reductions 'none'/'mean'/'sum'; with ``avg_factor`` 'mean' is
``sum / (avg_factor + FLT_EPSILON)``, how the detection heads normalise by the number of
positives: the adapter's 'normalized' passes ``avg_factor = max(1, #positives)``.
"""

from __future__ import annotations

import ast
import importlib.metadata
from functools import cache
from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.adapters.capabilities import Capabilities
from focalspec.adapters.thirdparty.torch_helpers import _torch
from focalspec.adapters.torch_base import TorchAdapter
from focalspec.spec.variant import Variant

FOCAL = "mmdet/models/losses/focal_loss.py"
UTILS = "mmdet/models/losses/utils.py"


def _functions(path: str, names: tuple[str, ...]) -> str:
    """The source of the top-level functions ``names`` of the installed mmdet file ``path``."""
    file = importlib.metadata.distribution("mmdet").locate_file(path)
    text = file.read_text()  # type: ignore[union-attr]
    found = {n.name: ast.get_source_segment(text, n) for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)}
    missing = [n for n in names if not found.get(n)]
    if missing:
        raise ImportError(f"{path} has no {', '.join(missing)}")
    return "\n\n".join(str(found[n]) for n in names)


@cache
def py_sigmoid_focal_loss() -> Any:
    """mmdet's ``py_sigmoid_focal_loss``, compiled from the installed source."""
    torch = _torch()
    scope: dict[str, Any] = {"torch": torch, "F": torch.nn.functional, "Tensor": torch.Tensor}
    scope.update(Optional=Any, Callable=Any)
    code = _functions(UTILS, ("reduce_loss", "weight_reduce_loss")) + "\n\n"
    code += _functions(FOCAL, ("py_sigmoid_focal_loss",))
    exec(compile(code, f"<mmdet {FOCAL}>", "exec"), scope)
    return scope["py_sigmoid_focal_loss"]


class Mmdet(TorchAdapter):
    """``mmdet.models.losses.focal_loss.py_sigmoid_focal_loss`` (loaded without mmcv.ops)."""

    name = "mmdet"
    implementation = "mmdet.models.losses.focal_loss.py_sigmoid_focal_loss"
    package = "mmdet"
    module = "mmdet"  # not imported: see _probe
    convention = "canonical; alpha always applied; 'normalized' = sum / (avg_factor + FLT_EPSILON)"

    def _probe(self) -> str | None:
        try:
            _torch()
        except Exception as exc:
            return f"torch is not installed here ({type(exc).__name__}: {exc})"
        try:
            py_sigmoid_focal_loss()
        except importlib.metadata.PackageNotFoundError:
            return "mmdet is not installed here (pip install --no-deps mmdet==3.3.0)"
        except Exception as exc:
            return f"cannot load mmdet's py_sigmoid_focal_loss from its source ({type(exc).__name__}: {exc})"
        return None

    capabilities = Capabilities(
        "mmdet py_sigmoid_focal_loss",
        soft_targets=("canonical",),
        reductions=("none", "sum", "mean", "normalized"),
        alpha_off=False,
        convention="mmdet.models.losses.focal_loss.py_sigmoid_focal_loss",
    )

    def _loss(self, variant: Variant, x: Any, t: Any, n_classes: int | None) -> Any:
        fn = py_sigmoid_focal_loss()
        alpha = float(variant.alpha)  # type: ignore[arg-type]
        n = x.numel()
        if variant.reduction == "normalized":
            avg = float(max(1, int((t == 1).sum())))
            return fn(x.reshape(n, 1), t.reshape(n, 1), gamma=variant.gamma, alpha=alpha, avg_factor=avg)
        out = fn(x.reshape(n, 1), t.reshape(n, 1), gamma=variant.gamma, alpha=alpha, reduction=variant.reduction)
        return out.reshape(x.shape) if variant.reduction == "none" else out


def adapters() -> list[Adapter]:
    return [Mmdet()]
