"""Runs Keras 3 focal losses on one backend: in-process (TensorFlow) or as a worker subprocess.

Keras fixes its backend when it is first imported, so the jax and torch backends run in a
child process started with ``KERAS_BACKEND`` set (``python -m focalspec.adapters._keras_worker``).
Protocol on stdin/stdout, one message each way per request: a 4-byte big-endian header
length, the JSON header, an 8-byte payload length, and an ``.npz`` payload (float64 arrays).
The first message from the worker is a hello: ``{"ok": true, ...info}`` or
``{"ok": false, "error": "..."}``.  Gradients come from the backend's own autodiff
(``tf.GradientTape``, ``jax.value_and_grad``, ``torch.autograd``) of the sum of the loss.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, BinaryIO

import numpy as np

BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
DISTRIBUTIONS = {"tensorflow": ("tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tensorflow-macos")}
KERAS_REDUCTION = {"none": None, "sum": "sum", "mean": "sum_over_batch_size"}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def package_version(name: str) -> str | None:
    """Installed version of a backend without importing it (TensorFlow ships as several
    distributions: tensorflow, tensorflow-cpu, tf-nightly ...); the module's own when loaded."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    for dist in (name, *DISTRIBUTIONS.get(name, ())):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


# ----------------------------------------------------------------------------- framing


def send(stream: BinaryIO, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    head = json.dumps(header).encode()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    payload = buf.getvalue()
    stream.write(struct.pack(">I", len(head)) + head + struct.pack(">Q", len(payload)) + payload)
    stream.flush()


def decode(head: bytes, payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(head.decode()), arrays


def _read(stream: BinaryIO, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv(stream: BinaryIO) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    raw = _read(stream, 4)
    if raw is None:
        return None
    head = _read(stream, struct.unpack(">I", raw)[0])
    raw = _read(stream, 8)
    if head is None or raw is None:
        return None
    payload = _read(stream, struct.unpack(">Q", raw)[0])
    return None if payload is None else decode(head, payload)


# ----------------------------------------------------------------------------- the runner


class KerasRunner:
    """Keras focal losses on the backend Keras was imported with, cached per request shape.

    A request (``spec``) holds: kind ('binary' | 'categorical'), kwargs (of the Keras loss
    class), reduction (the Variant's), dtype, device ('cpu' | 'cuda'), mode ('eager' |
    'compiled'), want_grad, and cls (the number of values per Keras sample: 1 for binary,
    C for categorical; inputs are reshaped to (-1, cls) inside the framework).
    """

    def __init__(self) -> None:
        import keras

        self.keras = keras
        self.backend: str = keras.backend.backend()
        self._cache: dict[str, Callable[..., Any]] = {}
        if self.backend == "jax":
            import jax

            jax.config.update("jax_default_matmul_precision", "highest")
        elif self.backend == "torch":
            import torch

            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        elif self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_tensor_float_32_execution(False)

    # -------------------------------------------------------------- facts

    def devices(self) -> list[str]:
        if self.backend == "jax":
            import jax

            return ["cpu", "cuda"] if any(d.platform == "gpu" for d in jax.devices()) else ["cpu"]
        if self.backend == "torch":
            import torch

            return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
        import tensorflow as tf

        return ["cpu", "cuda"] if tf.config.list_physical_devices("GPU") else ["cpu"]

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "framework_version": package_version(BACKEND_PACKAGES[self.backend]) or "unknown",
            "keras_version": self.keras.__version__,
            "devices": self.devices(),
        }

    def ran(self, spec: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "framework": self.backend,
            "version": package_version(BACKEND_PACKAGES[self.backend]),
            "keras": self.keras.__version__,
            "device": spec["device"],
            "mode": spec["mode"],
            "dtype": spec["dtype"],
        }
        if self.backend == "jax":
            import jax

            info["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
            info["device"] = str(self._jax_device(spec["device"]))
        elif self.backend == "torch":
            import torch

            info["allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        else:
            import tensorflow as tf

            info["tensor_float_32"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
            info["jit_compile"] = spec["mode"] == "compiled"
        return info

    # -------------------------------------------------------------- building

    def _loss(self, spec: dict[str, Any]) -> Any:
        losses = self.keras.losses
        cls = losses.BinaryFocalCrossentropy if spec["kind"] == "binary" else losses.CategoricalFocalCrossentropy
        return cls(**spec["kwargs"], reduction=KERAS_REDUCTION[spec["reduction"]], dtype=spec["dtype"])

    def _jax_device(self, device: str) -> Any:
        import jax

        return jax.devices("gpu" if device == "cuda" else "cpu")[0]

    def keras_device(self, device: str) -> str:
        return "gpu:0" if device == "cuda" else "cpu:0"

    def function(self, spec: dict[str, Any], shape: tuple[int, ...]) -> Callable[[Any, Any], tuple[Any, Any]]:
        """fn(x, t) -> (loss, grad of sum(loss) or None) on framework tensors, cached."""
        key = json.dumps([spec["kind"], spec["kwargs"], spec["reduction"], spec["dtype"], spec["device"],
                          spec["mode"], spec["want_grad"], spec["cls"], list(shape)], sort_keys=True)
        if key not in self._cache:
            self._cache[key] = getattr(self, f"_build_{self.backend}")(spec, shape)
        return self._cache[key]

    def _call(self, loss_obj: Any, x: Any, t: Any, spec: dict[str, Any], shape: tuple[int, ...]) -> Any:
        ops = self.keras.ops
        k = int(spec["cls"])
        out = loss_obj(ops.reshape(t, (-1, k)), ops.reshape(x, (-1, k)))
        if spec["reduction"] == "none" and tuple(out.shape) != (0,):
            out = ops.reshape(out, shape[:-1] if spec["kind"] == "categorical" else shape)
        return out

    def _build_tensorflow(self, spec: dict[str, Any], shape: tuple[int, ...]) -> Callable[..., Any]:
        import tensorflow as tf

        loss_obj = self._loss(spec)

        def fn(x: Any, t: Any) -> tuple[Any, Any]:
            if not spec["want_grad"]:
                return self._call(loss_obj, x, t, spec, shape), None
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = self._call(loss_obj, x, t, spec, shape)
                total = tf.reduce_sum(out)
            return out, tape.gradient(total, x)

        return tf.function(fn, jit_compile=True) if spec["mode"] == "compiled" else fn

    def _build_jax(self, spec: dict[str, Any], shape: tuple[int, ...]) -> Callable[..., Any]:
        import jax
        import jax.numpy as jnp

        loss_obj = self._loss(spec)

        def forward(x: Any, t: Any) -> tuple[Any, Any]:
            out = self._call(loss_obj, x, t, spec, shape)
            return jnp.sum(out), out

        if spec["want_grad"]:
            vg = jax.value_and_grad(forward, has_aux=True)

            def fn(x: Any, t: Any) -> tuple[Any, Any]:
                (_, out), grad = vg(x, t)
                return out, grad
        else:

            def fn(x: Any, t: Any) -> tuple[Any, Any]:
                return forward(x, t)[1], None

        return jax.jit(fn) if spec["mode"] == "compiled" else fn

    def _build_torch(self, spec: dict[str, Any], shape: tuple[int, ...]) -> Callable[..., Any]:
        if spec["mode"] != "eager":
            raise ValueError("the torch backend is run in eager mode only")
        loss_obj = self._loss(spec)

        def fn(x: Any, t: Any) -> tuple[Any, Any]:
            leaf = x.detach().requires_grad_(bool(spec["want_grad"]))
            out = self._call(loss_obj, leaf, t, spec, shape)
            if not spec["want_grad"]:
                return out.detach(), None
            out.sum().backward()
            return out.detach(), leaf.grad

        return fn

    # -------------------------------------------------------------- running

    def place(self, arr: np.ndarray, dtype: str, device: str | None) -> Any:
        """A float64 array of dtype-exact values as a framework tensor of ``dtype`` on ``device``
        (None: the current device scope; TensorFlow only)."""
        arr = np.array(arr, dtype=np.float64, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if self.backend == "jax":
            import jax
            import jax.numpy as jnp

            # converted in numpy: XLA's casts flush subnormals on CPU
            return jax.device_put(np.asarray(arr).astype(jnp.dtype(dtype)), self._jax_device(device or "cpu"))
        if self.backend == "torch":
            import torch

            return torch.from_numpy(arr).to(device=device or "cpu", dtype=getattr(torch, dtype))
        import tensorflow as tf

        exact = np.asarray(arr).astype(getattr(tf, dtype).as_numpy_dtype)  # TF's cast flushes subnormals
        if device is None:
            return tf.constant(exact)
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            return tf.constant(exact)

    def to_numpy(self, value: Any) -> np.ndarray:
        if self.backend == "torch":
            return value.detach().to("cpu").double().numpy()
        if self.backend == "tensorflow":
            import tensorflow as tf

            # widened in TF (exact): a 0-d bfloat16 EagerTensor's __array__ does not produce an array
            return np.asarray(tf.cast(value, tf.float64).numpy(), dtype=np.float64)
        return np.asarray(np.asarray(value), dtype=np.float64)

    def run(self, spec: dict[str, Any], x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with self.keras.device(self.keras_device(spec["device"])):
            xt = self.place(x, spec["dtype"], spec["device"])
            tt = self.place(t, spec["dtype"], spec["device"])
            out, grad = self.function(spec, tuple(x.shape))(xt, tt)
            loss = self.to_numpy(out)
            g = None if grad is None else self.to_numpy(grad)
        if spec["want_grad"] and g is None:
            raise RuntimeError("the backend returned no gradient for the inputs")
        return loss, g


def main() -> int:
    """Worker loop: hello, then one response per request until stdin closes."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    inp = sys.stdin.buffer
    start = time.perf_counter()
    try:
        runner = KerasRunner()
        hello: dict[str, Any] = {"ok": True, **runner.info(), "start_seconds": time.perf_counter() - start}
    except Exception as exc:  # report why, then exit: the adapter shows it as unavailable
        send(out, {"ok": False, "error": one_line(exc)}, {})
        return 1
    send(out, hello, {})
    while True:
        msg = recv(inp)
        if msg is None:
            return 0
        header, arrays = msg
        if header.get("op") == "quit":
            return 0
        try:
            loss, grad = runner.run(header, arrays["x"], arrays["t"])
            result = {"loss": loss} if grad is None else {"loss": loss, "grad": grad}
            send(out, {"ok": True, "ran": runner.ran(header)}, result)
        except Exception as exc:
            send(out, {"ok": False, "error": one_line(exc)}, {})


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
