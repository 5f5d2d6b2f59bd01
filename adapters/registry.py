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

# ("module:attribute" of a factory, the tox environment that tests its adapters) of every built-in
# adapter; each module imports its framework lazily.  Adding a library: one module under
# adapters/thirdparty/ and one line here (its requirement goes to that environment's installs).
BUILTIN: list[tuple[str, str]] = [
    ("focalspec.adapters.own_torch:own_torch", "torch"),
    ("focalspec.adapters.thirdparty.torchvision_adapter:torchvision_adapter", "thirdparty"),
    ("focalspec.adapters.own_jax:own_jax", "jax"),
    ("focalspec.adapters.thirdparty.optax_adapter:optax_adapter", "jax"),
    ("focalspec.adapters.thirdparty.fvcore_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.kornia_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.monai_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.smp_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.mmcv_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.transformers_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.ultralytics_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.mmdet_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.thirdparty.toolbelt_adapter:adapters", "thirdparty"),
    ("focalspec.adapters.own_paddle:own_paddle", "paddle"),
    ("focalspec.adapters.thirdparty.paddle_adapter:adapters", "paddle"),
    ("focalspec.adapters.own_tf:focalspec_tf", "tensorflow"),
    ("focalspec.adapters.thirdparty.keras_adapter:keras_adapters", "tensorflow"),
    ("focalspec.adapters.thirdparty.focal_loss_adapter:adapters", "tensorflow"),
    ("focalspec.adapters.thirdparty.tfmodels_adapter:adapters", "tensorflow"),
    ("focalspec.adapters.own_triton:own_triton", "kernels"),
    ("focalspec.adapters.own_pallas:own_pallas", "kernels"),
    ("focalspec.adapters.thirdparty.sam3_adapter:adapters", "thirdparty"),
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


def _load(spec: str, name: str | None = None, env: str = "") -> list[Adapter]:
    try:
        module_name, _, attr = spec.partition(":")
        obj: Callable[[], Adapter | list[Adapter]] = getattr(importlib.import_module(module_name), attr)
        made = obj()
        found = list(made) if isinstance(made, list | tuple) else [made]
    except Exception as exc:  # a broken third-party adapter must not stop the others
        found = [UnavailableAdapter(name or spec, f"cannot load {spec}: {type(exc).__name__}: {exc}")]
    for adapter in found:
        if adapter.env is None:  # the registry line's environment, unless the adapter says otherwise
            adapter.env = env
    return found


def all_adapters(include_entry_points: bool = True) -> list[Adapter]:
    """Every adapter known here, built-in first, in a stable order."""
    found: list[Adapter] = []
    for spec, env in BUILTIN:
        found.extend(_load(spec, env=env))
    if include_entry_points:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            found.extend(_load(ep.value, ep.name))
    return found


def third_party_adapters() -> list[Adapter]:
    """The built-in adapters of third-party libraries: those that name the package under test
    (``package``, whose version the findings are pinned to).  A new library's module in
    ``BUILTIN`` is picked up here (and so by the project's tests) as it is."""
    return [a for a in all_adapters(include_entry_points=False) if a.package]


def adapters_of_env(env: str) -> list[Adapter]:
    """The built-in adapters whose conformance run is the tox environment ``env``, in registry order
    (tox.ini's ``--focal-adapters`` lists: ``focalspec adapters --env ENV``)."""
    return [a for a in all_adapters(include_entry_points=False) if a.env == env]


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; a ``KeyError`` naming the known ones otherwise."""
    adapters = {a.name: a for a in all_adapters()}
    if name not in adapters:
        raise KeyError(f"no adapter named {name!r}; known: {', '.join(sorted(adapters))}")
    return adapters[name]
