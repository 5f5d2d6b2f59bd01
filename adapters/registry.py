"""Where adapters are found: the built-in list and the ``focalspec.adapters`` entry points.

A third party ships an adapter by declaring, in its own package,
``[project.entry-points."focalspec.adapters"] myimpl = "mypkg.focal:MyAdapter"`` (a class
or a zero-argument factory returning an ``Adapter``).  Loading never raises: an adapter
whose module cannot be imported is listed as unavailable with the reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from focalspec.adapters.base import Adapter

ENTRY_POINT_GROUP = "focalspec.adapters"

# "module:attribute" of every built-in adapter; each module imports its framework lazily.
BUILTIN: list[str] = [
    "focalspec.adapters.torch_adapters:own_torch",
    "focalspec.adapters.torch_adapters:torchvision_adapter",
    "focalspec.adapters.jax_adapters:own_jax",
    "focalspec.adapters.jax_adapters:optax_adapter",
    "focalspec.adapters.thirdparty.fvcore_adapter:adapters",
    "focalspec.adapters.thirdparty.kornia_adapter:adapters",
    "focalspec.adapters.thirdparty.monai_adapter:adapters",
    "focalspec.adapters.thirdparty.smp_adapter:adapters",
    "focalspec.adapters.thirdparty.mmcv_adapter:adapters",
    "focalspec.adapters.thirdparty.focal_loss_adapter:adapters",
    "focalspec.adapters.thirdparty.transformers_adapter:adapters",
    "focalspec.adapters.thirdparty.ultralytics_adapter:adapters",
    "focalspec.adapters.thirdparty.mmdet_adapter:adapters",
    "focalspec.adapters.paddle_adapters:adapters",
    "focalspec.adapters.thirdparty.tfmodels_adapter:adapters",
    "focalspec.adapters.tf_adapters:focalspec_tf",
    "focalspec.adapters.keras_adapters:keras_adapters",
    "focalspec.adapters.triton_adapters:own_triton",
    "focalspec.adapters.pallas_adapters:own_pallas",
    "focalspec.adapters.thirdparty.sam3_adapter:adapters",
]


class UnavailableAdapter(Adapter):
    """Stands in for an adapter that could not even be loaded."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.implementation = name
        self._reason = reason

    def unavailable_reason(self) -> str | None:
        return self._reason

    def framework_version(self) -> str | None:
        return None

    def devices(self) -> tuple[str, ...]:
        return ()

    def supports(self, variant, dtype, device, mode):  # type: ignore[no-untyped-def]
        return self._reason

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(self._reason)


def _load(spec: str, name: str | None = None) -> list[Adapter]:
    try:
        module_name, _, attr = spec.partition(":")
        obj: Callable[[], Adapter | list[Adapter]] = getattr(importlib.import_module(module_name), attr)
        made = obj()
        return list(made) if isinstance(made, list | tuple) else [made]
    except Exception as exc:  # a broken third-party adapter must not stop the others
        return [UnavailableAdapter(name or spec, f"cannot load {spec}: {type(exc).__name__}: {exc}")]


def all_adapters(include_entry_points: bool = True) -> list[Adapter]:
    """Every adapter known here, built-in first, in a stable order."""
    found: list[Adapter] = []
    for spec in BUILTIN:
        found.extend(_load(spec))
    if include_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            found.extend(_load(ep.value, ep.name))
    return found


def third_party_adapters() -> list[Adapter]:
    """The built-in adapters of third-party libraries: those that name the package under test
    (``package``, whose version the findings are pinned to).  A new library's module in
    ``BUILTIN`` is picked up here (and so by the project's tests) as it is."""
    return [a for a in all_adapters(include_entry_points=False) if a.package]


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; a ``KeyError`` naming the known ones otherwise."""
    adapters = {a.name: a for a in all_adapters()}
    if name not in adapters:
        raise KeyError(f"no adapter named {name!r}; known: {', '.join(sorted(adapters))}")
    return adapters[name]
