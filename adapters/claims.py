"""What an adapter claims for a case: the variant it declares and whether it runs this data.

Asked by the suite when it builds its parameters, by the sweeps and by the shrinker when it
calls an implementation again on one element; a broken claim is a skip with its reason, never
a crash of the run.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from focalspec.adapters.base import Adapter
from focalspec.spec.variant import SpecError, Variant


def resolve_variant(adapter: Adapter, v: Variant, dtype: str, inputs: np.ndarray | None = None) -> Variant:
    """The variant the adapter claims for a case variant: its optional ``declared_variant(variant,
    [dtype=...], [n_classes=...])`` (the identity when it has none).  SpecError: no claim."""
    declared = getattr(adapter, "declared_variant", None)
    if declared is None:
        return v
    try:
        names = set(inspect.signature(declared).parameters)
    except (TypeError, ValueError):
        names = set()
    kw: dict[str, Any] = {}
    if "dtype" in names:
        kw["dtype"] = dtype
    if "n_classes" in names:
        softmax = v.activation == "softmax" and inputs is not None and np.ndim(inputs) >= 1
        kw["n_classes"] = int(np.shape(inputs)[-1]) if softmax else None
    try:
        out = declared(v, **kw)
    except SpecError:
        raise
    except Exception as exc:  # a broken declaration is a skip with its reason, not a crash
        raise SpecError(f"{adapter.name}.declared_variant raised {type(exc).__name__}: {exc}") from exc
    if out is None:
        raise SpecError(f"{adapter.name} declares no variant for this case")
    return out


def supports(
    adapter: Adapter, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str, device: str, mode: str
) -> str | None:
    """None, or why this adapter cannot run this variant/data (a skip reason)."""
    try:
        scope = getattr(adapter, "clip_scope_reason", None)
        reason = (scope(v) if scope is not None else None) or adapter.supports(v, dtype, device, mode)
        if reason:
            return reason
        data = getattr(adapter, "supports_data", None)
        return data(v, x, t) if data is not None else None
    except Exception as exc:  # a broken supports() is a skip with its reason, not a crash
        return f"{adapter.name}.supports raised {type(exc).__name__}: {exc}"
