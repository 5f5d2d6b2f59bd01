"""focalspec's own TF and JAX adapters running the kernels as they were at 66558df (before the
speed work of 2026-12-06), to time before and after in one ``focalspec bench`` run::

    PYTHONPATH=benchmarks/issue29 focalspec bench --adapter focalspec-tf before_adapters:BeforeTf keras-binary-tf ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paddle_timed import BEFORE, kernel_at

from focalspec.adapters.base import own_impl_kwargs
from focalspec.adapters.jax_adapters import OwnJaxAdapter
from focalspec.adapters.tf_adapters import FocalspecTFAdapter, tf_module
from focalspec.spec.variant import Variant

__all__ = ["BeforeJax", "BeforeTf"]


def _fn(name: str, variant: Variant) -> Callable[[Any, Any], Any]:
    m = kernel_at(name)
    fn = m.sigmoid_focal_loss if variant.activation == "sigmoid" else m.softmax_focal_loss
    kw = own_impl_kwargs(variant)
    return lambda x, t: fn(x, t, **kw)


class BeforeJax(OwnJaxAdapter):
    name = f"focalspec-jax-{BEFORE}"
    implementation = f"focalspec.kernels.jax_loss@{BEFORE}"

    def _loss_fn(self, variant: Variant) -> Callable[[Any, Any], Any]:
        return _fn("jax_loss", variant)


class BeforeTf(FocalspecTFAdapter):
    name = f"focalspec-tf-{BEFORE}"
    implementation = f"focalspec.kernels.tf_loss@{BEFORE}"

    def _function(self, variant: Variant, want_grad: bool) -> Callable[..., Any]:
        tf = tf_module()
        loss_fn = _fn("tf_loss", variant)

        def fn(x: Any, t: Any) -> tuple[Any, ...]:
            if not want_grad:
                return (loss_fn(x, t),)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_fn(x, t)
                total = tf.reduce_sum(loss)
            return loss, tape.gradient(total, x)

        return fn
