"""focalspec's own adapters running the kernels as they were at f0cf84a (before issue 29).

Used to time before and after in one ``focalspec bench`` run, so that the ratio does not
depend on how busy a shared machine was between two runs::

    PYTHONPATH=benchmarks/issue29 focalspec bench --adapter focalspec-torch old_adapters:OldTorch torchvision ...

The old kernel source is read with ``git show f0cf84a:kernels/<name>.py`` from this checkout.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from focalspec.adapters.base import own_impl_kwargs
from focalspec.adapters.own_jax import OwnJaxAdapter
from focalspec.adapters.own_tf import FocalspecTFAdapter, tf_module
from focalspec.adapters.own_torch import FocalspecTorchAdapter
from focalspec.spec.variant import Variant

REVISION = "f0cf84a"
ROOT = Path(__file__).resolve().parents[2]


def old_kernel(name: str, revision: str = REVISION) -> types.ModuleType:
    """kernels/<name>.py at ``revision``, imported once as ``old_<name>_kernel`` (at REVISION)."""
    key = f"old_{name}_kernel" if revision == REVISION else f"{name}_{revision}"
    if key not in sys.modules:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:kernels/{name}.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        module = types.ModuleType(key)
        module.__file__ = f"{revision}:kernels/{name}.py"
        sys.modules[key] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    return sys.modules[key]


def _fn(name: str, variant: Variant, revision: str = REVISION) -> Callable[[Any, Any], Any]:
    m = old_kernel(name, revision)
    fn = m.sigmoid_focal_loss if variant.activation == "sigmoid" else m.softmax_focal_loss
    kw = own_impl_kwargs(variant)
    return lambda x, t: fn(x, t, **kw)


class OldTorch(FocalspecTorchAdapter):
    name = f"focalspec-torch-{REVISION}"
    implementation = f"focalspec.kernels.torch_loss@{REVISION}"

    def make_loss(self, variant: Variant) -> Callable[[Any, Any], Any]:
        return _fn("torch", variant)


class OldJax(OwnJaxAdapter):
    kernel_file, revision = "jax", REVISION
    name = f"focalspec-jax-{REVISION}"
    implementation = f"focalspec.kernels.jax_loss@{REVISION}"

    def _loss_fn(self, variant: Variant) -> Callable[[Any, Any], Any]:
        return _fn(self.kernel_file, variant, self.revision)


class OldTf(FocalspecTFAdapter):
    kernel_file, revision = "tf", REVISION
    name = f"focalspec-tf-{REVISION}"
    implementation = f"focalspec.kernels.tf_loss@{REVISION}"

    def _function(self, variant: Variant, want_grad: bool) -> Callable[..., Any]:
        tf = tf_module()
        loss_fn = _fn(self.kernel_file, variant, self.revision)

        def fn(x: Any, t: Any) -> tuple[Any, ...]:
            if not want_grad:
                return (loss_fn(x, t),)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_fn(x, t)
                total = tf.reduce_sum(loss)
            return loss, tape.gradient(total, x)

        return fn
