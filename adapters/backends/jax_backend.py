"""JAX, once: configured on first use for honest measurements (``jax_enable_x64``: float64 arrays
otherwise silently become float32; ``jax_default_matmul_precision='highest'``: no TF32/bf16 passes
inside a float32 claim), dtypes, devices, the persistent compile cache and the callable's backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.backends import CallBackend, call_for_probe, describe_exc, observed, returned_dtype
from focalspec.adapters.base import AdapterError, cache_folder

_CONFIGURED: dict[str, Any] = {}


def jax_module() -> Any:
    """The jax module, configured once (x64 on, float32 matmuls at full precision)."""
    import jax

    if not _CONFIGURED:
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", "highest")
        _CONFIGURED.update(
            jax_enable_x64=bool(jax.config.jax_enable_x64),
            jax_default_matmul_precision=str(jax.config.jax_default_matmul_precision),
        )
    return jax


def np_dtype(dtype: str) -> Any:
    if dtype in ("bfloat16",):
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype).type


def jax_devices() -> tuple[str, ...]:
    """("cpu",) or ("cpu", "cuda"): a jaxlib without a GPU backend raises RuntimeError for "gpu"."""
    try:
        has_gpu = bool(jax_module().devices("gpu"))
    except RuntimeError:
        has_gpu = False
    return ("cpu", "cuda") if has_gpu else ("cpu",)


def persist_xla_compiles(jax: Any) -> None:
    """JAX's eager mode compiles each primitive once per new shape (~18 ms apiece on 2 cores; the
    gate on optax's loss made 2,360 such compiles, most of its 95 s).  XLA's persistent compilation
    cache, in focalspec's cache folder, lets a later run load them instead: the same executables
    (the key is the lowered module, the compile options and the backend's version).  A cache
    folder the user configured (``JAX_COMPILATION_CACHE_DIR``) is left as it is; remove
    ``~/.cache/focalspec/jax-xla`` to reclaim the space."""
    if jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", cache_folder("jax-xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the per-primitive compiles too
    # Left unbounded (JAX's default): its size-capped mode needs an access-time file beside every entry
    # and fails every write once one is missing.  The cases' shapes are fixed, so a callable adds its
    # ~10-20 MB once and later runs reuse them.


class JaxCallBackend(CallBackend):
    framework = "jax"

    def __init__(self) -> None:
        jax = jax_module()  # x64 on: float64 inputs stay float64; 'highest': no TF32/bf16 passes
        persist_xla_compiles(jax)
        self.jax = jax
        self._compiled: dict[Any, Callable[..., Any]] = {}

    def warm_up_compiler(self) -> None:
        jax, jnp = self.jax, self.jax.numpy
        jax.block_until_ready(jax.jit(jax.value_and_grad(lambda a: jnp.sum(a * a)))(jnp.ones(2, jnp.float32)))

    def devices(self) -> tuple[str, ...]:
        return jax_devices()

    def _arrays(self, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, softmax: bool) -> Any:
        jax = self.jax
        dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        npdt = np_dtype(dtype)
        x = jax.device_put(np.asarray(inputs, dtype=np.float64).astype(npdt), dev)
        t_np = np.asarray(targets, dtype=np.int64) if softmax else np.asarray(targets, dtype=np.float64).astype(npdt)
        return x, jax.device_put(t_np, dev), dev

    def probe(self, call, inputs, targets, dtype, device, softmax):  # type: ignore[no-untyped-def]
        x, t, _ = self._arrays(inputs, targets, dtype, device, softmax)
        out = call_for_probe(call, x, t)
        obs = observed(out, self.jax.Array, "jax.Array", {}, {})  # jax arrays are immutable
        if isinstance(out, self.jax.Array):
            obs |= {"dtype": str(out.dtype), "value": np.asarray(out).astype(np.float64)}
        return obs

    def evaluate(self, call, key, inputs, targets, dtype, device, mode, want_grad, softmax):  # type: ignore[no-untyped-def]
        jax = self.jax
        jnp = jax.numpy
        x, t, dev = self._arrays(inputs, targets, dtype, device, softmax)

        def value_and_grad(xx: Any, tt: Any) -> Any:
            if not want_grad:
                return call(xx, tt), None
            loss, vjp = jax.vjp(lambda a: call(a, tt), xx)
            (g,) = vjp(jnp.ones_like(loss))
            return loss, g

        if mode == "compiled":
            ck = (key, want_grad)
            if ck not in self._compiled:
                self._compiled[ck] = jax.jit(value_and_grad)
            fn = self._compiled[ck]
        else:
            fn = value_and_grad
        try:
            loss, g = fn(x, t)
            loss = jax.block_until_ready(loss)
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(describe_exc(exc)) from exc
        if not isinstance(loss, jax.Array):
            raise AdapterError(f"the callable returned {type(loss).__name__}, not a jax.Array")
        note = returned_dtype(loss.dtype, x.dtype)
        grad = None
        if want_grad:
            note = note or returned_dtype(g.dtype, x.dtype, "the gradient")
            grad = np.asarray(g).astype(np.float64)
        ran = {
            "framework": "jax",
            "version": jax.__version__,
            "device": str(dev.device_kind),
            "mode": mode,
            "flags": {"jax_enable_x64": True, "matmul_precision": "highest"}
            | ({"jit": True} if mode == "compiled" else {}),
        } | note
        return np.asarray(loss).astype(np.float64), grad, ran
