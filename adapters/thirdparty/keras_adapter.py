"""Adapters for Keras 3 ``BinaryFocalCrossentropy`` and ``CategoricalFocalCrossentropy``.

Each adapter declares, as the variants it ``supports``, exactly what Keras computes on its
backend (keras/src/losses/losses.py, keras 3.15.1, read from the installed source):

* binary: ``p_t = y p + (1 - y)(1 - p)``, ``(1 - p_t)**gamma`` times the backend's
  ``binary_crossentropy`` on probabilities, which clips to [1e-7, 1 - 1e-7]
  (``backend.epsilon()``).  With ``from_logits=True`` Keras applies ``ops.sigmoid`` first;
  on jax and torch that probability is clipped too (declared ``clip_eps=1e-7``), but on
  TensorFlow ``ops.sigmoid`` tags its output with ``_keras_logits`` and the backend BCE
  recovers the logits and uses ``tf.nn.sigmoid_cross_entropy_with_logits`` -- unclipped
  (declared ``clip_eps=None``).  Alpha only with ``apply_class_balancing=True`` (Variant
  alpha None <-> False).  The focal factor uses the *unclipped* p: the clip acts inside the
  BCE only (declared ``clip_scope='ce'``, SPEC.md §3).
* categorical: softmax (from_logits) then ``y_pred / sum(y_pred)`` then clip to
  [1e-7, 1 - 1e-7] for both the log and ``(1 - p)**gamma``; alpha multiplies every class and
  cannot be switched off (alpha=1.0 is the equivalent of alpha None, which is unsupported).
  Probability inputs are always renormalised (declared ``renormalize=True``).

Reductions: Keras takes the mean over the last axis per sample, then reduces the samples.
Inputs are reshaped to (N, 1) (binary) or (N, C) (categorical) inside the framework, so
Keras ``reduction=None`` gives the per-element loss, ``'sum'`` the sum and
``'sum_over_batch_size'`` the mean; ``normalized`` has no Keras counterpart.

TensorFlow runs in-process; jax and torch run in a worker subprocess (``_keras_worker``),
one per backend, kept alive across requests.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from focalspec.adapters import _keras_worker as kw
from focalspec.adapters.base import DTYPES, Adapter, AdapterError, Output, Timed, framework_errors
from focalspec.spec.variant import Variant

KERAS_EPSILON = 1e-7
BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")
SHORT = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}
START_TIMEOUT_S = 300.0  # importing jax/torch + keras on a loaded machine
REQUEST_TIMEOUT_S = 300.0


# ----------------------------------------------------------------------------- worker process


class WorkerError(RuntimeError):
    pass


class Worker:
    """One long-lived ``_keras_worker`` subprocess for one Keras backend."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.start_seconds = 0.0
        self.failed: str | None = None  # why it could not start (cached: the import will not heal)
        self._log = tempfile.TemporaryFile()

    def ensure(self) -> dict[str, Any]:
        if self.failed:
            raise WorkerError(self.failed)
        if self.proc is not None and self.proc.poll() is None:
            return self.info
        env = dict(os.environ, KERAS_BACKEND=self.backend, TF_CPP_MIN_LOG_LEVEL="2")
        if self.backend == "jax":
            env["JAX_ENABLE_X64"] = "1"  # else float64 silently computes in float32
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "focalspec.adapters._keras_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        try:
            header, _ = self._receive(START_TIMEOUT_S)
        except WorkerError as exc:
            self.failed = f"keras {self.backend} worker did not start: {exc}"
            self.close()
            raise WorkerError(self.failed) from None
        self.start_seconds = time.perf_counter() - start
        if not header.get("ok"):
            self.failed = f"keras on {self.backend}: {header.get('error')}"
            self.close()
            raise WorkerError(self.failed)
        self.info = header
        return header

    def request(self, spec: dict[str, Any], x: np.ndarray, t: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        self.ensure()
        assert self.proc is not None and self.proc.stdin is not None
        head = json.dumps(spec).encode()
        import io

        buf = io.BytesIO()
        np.savez(buf, x=np.asarray(x, np.float64), t=np.asarray(t, np.float64))
        payload = buf.getvalue()
        try:
            self.proc.stdin.write(struct.pack(">I", len(head)) + head + struct.pack(">Q", len(payload)) + payload)
            self.proc.stdin.flush()
            return self._receive(REQUEST_TIMEOUT_S)
        except (OSError, WorkerError) as exc:
            self.close()  # a dead or hung worker is replaced on the next request
            raise WorkerError(f"keras {self.backend} worker failed: {kw.one_line(exc)}") from None

    def _receive(self, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        raw = self._read(fd, 4, deadline)
        head = self._read(fd, struct.unpack(">I", raw)[0], deadline)
        size = struct.unpack(">Q", self._read(fd, 8, deadline))[0]
        return kw.decode(head, self._read(fd, size, deadline))

    def _read(self, fd: int, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerError(f"no answer within {REQUEST_TIMEOUT_S:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise WorkerError(f"worker exited ({self._last_log_line()})")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _last_log_line(self) -> str:
        try:
            self._log.seek(0)
            lines = [ln for ln in self._log.read().decode(errors="replace").splitlines() if ln.strip()]
            return lines[-1][:300] if lines else "no output"
        except OSError:
            return "no output"

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except Exception:
            proc.kill()  # only our own child, by its handle
            proc.wait(timeout=5)


_WORKERS: dict[str, Worker] = {}


def worker(backend: str) -> Worker:
    if backend not in _WORKERS:
        _WORKERS[backend] = Worker(backend)
    return _WORKERS[backend]


@atexit.register
def _close_workers() -> None:
    for w in _WORKERS.values():
        w.close()


# ----------------------------------------------------------------------------- in-process TF


_INPROCESS: Any = None


def inprocess_runner() -> kw.KerasRunner | None:
    """A runner on the TensorFlow backend in this process, or None when Keras here is (or would
    be) on another backend -- then the TensorFlow adapter uses a worker as well."""
    global _INPROCESS
    if _INPROCESS is None:
        if "keras" not in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
            _INPROCESS = False
        else:
            from focalspec.adapters.own_tf import tf_module

            tf_module()  # TF32 off, quiet logs
            runner = kw.KerasRunner()
            _INPROCESS = runner if runner.backend == "tensorflow" else False
    return _INPROCESS or None


def _local_devices(backend: str) -> tuple[str, ...]:
    """Devices of a backend as seen from this process (the worker sees the same machine)."""
    if backend == "torch":
        import torch

        return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    if backend == "jax":
        import jax

        return ("cpu", "cuda") if any(d.platform == "gpu" for d in jax.devices()) else ("cpu",)
    from focalspec.adapters.own_tf import tf_devices

    return tf_devices()


# ----------------------------------------------------------------------------- adapters


class KerasFocalAdapter(Adapter):
    """Base of the Keras adapters: ``kind`` 'binary' | 'categorical' on one backend."""

    kind: str = ""
    keras_class: str = ""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"keras-{self.kind}-{SHORT[backend]}"
        self.env = "tensorflow" if backend == "tensorflow" else f"keras-{SHORT[backend]}"
        self.implementation = f"keras.losses.{self.keras_class}"
        self.framework = backend
        self.convention = self.declared_convention()
        self.dtypes = DTYPES
        self.modes = ("eager",) if backend == "torch" else ("eager", "compiled")
        self.mode_note = "torch.compile is not exercised" if backend == "torch" else ""

    # ------------------------------------------------------------------ availability

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("keras") is None:
            return "keras is not installed (pip install focalspec[tensorflow])"
        pkg = kw.BACKEND_PACKAGES[self.backend]
        if importlib.util.find_spec(pkg) is None:
            return f"{pkg} is not installed: Keras cannot run on the {self.backend} backend"
        if self.backend in _WORKERS and _WORKERS[self.backend].failed:
            return _WORKERS[self.backend].failed
        return None

    def framework_version(self) -> str | None:
        return kw.package_version(kw.BACKEND_PACKAGES[self.backend])

    def _uses_worker(self) -> bool:
        return self.backend != "tensorflow" or inprocess_runner() is None

    def devices(self) -> tuple[str, ...]:
        if self.unavailable_reason():
            return ()
        if not self._uses_worker():
            runner = inprocess_runner()
            assert runner is not None
            return tuple(runner.devices())
        w = worker(self.backend)
        if w.proc is not None and w.info:
            return tuple(w.info["devices"])
        return _local_devices(self.backend)  # listing adapters must not start a worker

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        return self.request_reason(dtype, device, mode) or self.variant_reason(variant)

    def variant_reason(self, v: Variant) -> str | None:
        """None when Keras computes this variant (its declared convention), else why not."""
        raise NotImplementedError

    def declared_convention(self) -> str:
        """One line for the reports: the variants this adapter declares."""
        raise NotImplementedError

    def keras_kwargs(self, v: Variant) -> dict[str, Any]:
        raise NotImplementedError

    def values_per_sample(self, inputs_shape: tuple[int, ...]) -> int:
        raise NotImplementedError

    def keras_targets(self, v: Variant, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.asarray(targets, dtype=np.float64)

    def _spec(self, v: Variant, shape: tuple[int, ...], dtype: str, device: str, mode: str, grad: bool) -> dict:
        return {
            "kind": self.kind,
            "kwargs": self.keras_kwargs(v),
            "reduction": v.reduction,
            "dtype": dtype,
            "device": device,
            "mode": mode,
            "want_grad": grad,
            "cls": self.values_per_sample(shape),
        }

    # ------------------------------------------------------------------ running

    def evaluate(
        self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Output:  # fmt: skip
        x = np.asarray(inputs, dtype=np.float64)
        if variant.activation == "softmax" and x.ndim == 0:
            raise AdapterError("softmax inputs need a class axis")
        t = self.keras_targets(variant, x, np.asarray(targets))
        spec = self._spec(variant, x.shape, dtype, device, mode, want_grad)
        if not self._uses_worker():
            runner = inprocess_runner()
            assert runner is not None
            with framework_errors():
                loss, grad = runner.run(spec, x, t)
            return Output(loss=loss, grad=grad, ran=runner.ran(spec))
        w = worker(self.backend)
        try:
            header, arrays = w.request(spec, x, t)
        except WorkerError as exc:
            raise AdapterError(str(exc)) from None
        if not header.get("ok"):
            raise AdapterError(str(header.get("error")))
        ran = dict(header.get("ran", {}), worker_start_seconds=round(w.start_seconds, 3))
        return Output(loss=arrays["loss"], grad=arrays.get("grad"), ran=ran)

    # ------------------------------------------------------------------ native timing (TensorFlow only)

    def _place(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str) -> tuple[Any, Any]:
        runner = inprocess_runner()
        assert runner is not None
        x = np.asarray(inputs, dtype=np.float64)
        t = self.keras_targets(variant, x, np.asarray(targets))
        return runner.place(x, dtype, None), runner.place(t, dtype, None)  # under tf_timed's device scope

    def _callable(
        self, variant: Variant, shape: tuple[int, ...], tshape: tuple[int, ...], dtype: str, device: str, mode: str,
        want_grad: bool,
    ) -> Any:
        runner = inprocess_runner()
        assert runner is not None
        fn = runner.function(self._spec(variant, shape, dtype, device, mode, want_grad), shape)
        return lambda x, t: tuple(v for v in fn(x, t) if v is not None)

    def timed(
        self, variant: Variant, input_sets: list[np.ndarray], targets: np.ndarray, dtype: str, device: str, mode: str,
        backward: bool,
    ) -> Timed:  # fmt: skip
        if self._uses_worker():
            raise NotImplementedError(f"{self.name} runs in a worker process: no native timing path")
        from focalspec.adapters.own_tf import tf_timed

        timed = tf_timed(self, variant, input_sets, targets, dtype, device, mode, backward)
        runner = inprocess_runner()
        assert runner is not None
        timed.ran = dict(runner.ran(self._spec(variant, input_sets[0].shape, dtype, device, mode, backward)),
                         first_call_seconds=timed.ran.get("first_call_seconds"))
        return timed


class KerasBinaryAdapter(KerasFocalAdapter):
    kind = "binary"
    keras_class = "BinaryFocalCrossentropy"
    clip_scopes = ("ce",)  # clip(p) inside the BCE only; (1 - p_t)**gamma takes the unclipped p

    def declared_convention(self) -> str:
        logits = "clip_eps=None (logits BCE)" if self.backend == "tensorflow" else "clip_eps=1e-7"
        return (
            f"canonical; alpha via apply_class_balancing; logits: {logits}; probs: clip_eps=1e-7; "
            "the clip acts in the BCE only (clip_scope='ce'); no normalized"
        )

    def declared_clip(self, v: Variant) -> float | None:
        """Keras's clip on this backend: none on TF logits (logits recovered), 1e-7 otherwise."""
        return None if (self.backend == "tensorflow" and v.input_kind == "logits") else KERAS_EPSILON

    def declared_variant(self, variant: Variant) -> Variant:
        """What Keras computes when handed a case's alpha, gamma, input kind and smoothing: the
        same loss with its own clip (none on TF logits), which acts inside the BCE only
        (clip_scope='ce'); an unclipped case is graded against that, never skipped."""
        if variant.activation != "sigmoid":
            return variant
        clip = self.declared_clip(variant)
        if variant.clip_eps is None and variant.clip_upper is None:
            return variant if clip is None else variant.with_(clip_eps=clip, clip_scope="ce")
        return variant.with_(clip_scope="ce") if variant.clip_eps == clip else variant

    def variant_reason(self, v: Variant) -> str | None:
        if v.activation != "sigmoid":
            return "BinaryFocalCrossentropy is a sigmoid focal loss"
        if v.soft_target != "canonical":
            return "Keras forms p_t = y p + (1 - y)(1 - p): canonical soft targets only"
        if v.reduction == "normalized":
            return "Keras has no sum / #positives reduction"
        clip = self.declared_clip(v)
        if v.clip_eps != clip:
            how = (
                "on TensorFlow, from_logits=True recovers the logits (_keras_logits) and uses the unclipped BCE"
                if clip is None
                else f"Keras clips the probability to [1e-7, 1 - 1e-7] in its BCE ({v.input_kind}, {self.backend})"
            )
            return f"{how}: declared clip_eps={clip}, variant has clip_eps={v.clip_eps}"
        return None

    def keras_kwargs(self, v: Variant) -> dict[str, Any]:
        return {
            "apply_class_balancing": v.alpha is not None,
            "alpha": 0.25 if v.alpha is None else float(v.alpha),  # type: ignore[arg-type]
            "gamma": float(v.gamma),
            "from_logits": v.input_kind == "logits",
            "label_smoothing": float(v.label_smoothing),
        }

    def values_per_sample(self, inputs_shape: tuple[int, ...]) -> int:
        return 1


class KerasCategoricalAdapter(KerasFocalAdapter):
    kind = "categorical"
    keras_class = "CategoricalFocalCrossentropy"

    def variant_reason(self, v: Variant) -> str | None:
        if v.activation != "softmax":
            return "CategoricalFocalCrossentropy is a softmax focal loss"
        if v.alpha is None:
            return "Keras CategoricalFocalCrossentropy always multiplies by alpha (alpha=1.0 is the equivalent)"
        if v.clip_eps != KERAS_EPSILON:
            return f"Keras clips probabilities to [1e-7, 1 - 1e-7]: declared clip_eps=1e-07, variant has {v.clip_eps}"
        if v.input_kind == "probs" and not v.renormalize:
            return "Keras divides probability rows by their sum: declared renormalize=True"
        return None

    def declared_convention(self) -> str:
        return "alpha on every class (never None); clip_eps=1e-7; probs: renormalize=True"

    def declared_variant(self, variant: Variant) -> Variant:
        """What Keras computes for a softmax case: its clip at 1e-7, probability rows divided by
        their sum, and alpha=None as alpha=1.0 on every class (the same loss)."""
        if variant.activation != "softmax":
            return variant
        if variant.clip_eps is None and variant.clip_upper is None:
            variant = variant.with_(clip_eps=KERAS_EPSILON)
        if variant.alpha is None:
            variant = variant.with_(alpha=1.0)
        if variant.input_kind == "probs" and not variant.renormalize:
            variant = variant.with_(renormalize=True)
        return variant

    def keras_kwargs(self, v: Variant) -> dict[str, Any]:
        alpha = list(v.alpha) if isinstance(v.alpha, tuple) else float(v.alpha)  # type: ignore[arg-type]
        return {
            "alpha": alpha,
            "gamma": float(v.gamma),
            "from_logits": v.input_kind == "logits",
            "label_smoothing": float(v.label_smoothing),
        }

    def values_per_sample(self, inputs_shape: tuple[int, ...]) -> int:
        return int(inputs_shape[-1])

    def keras_targets(self, v: Variant, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Keras takes (..., C) distributions: class indices become one-hot rows (exact 0/1)."""
        c = inputs.shape[-1]
        if isinstance(v.alpha, tuple) and len(v.alpha) != c:
            raise AdapterError(f"alpha has {len(v.alpha)} entries but the inputs have {c} classes")
        if targets.shape == inputs.shape[:-1] and targets.dtype.kind in "iu":
            if targets.size and (targets.min() < 0 or targets.max() >= c):
                raise AdapterError(f"class index out of range [0, {c})")
            return np.eye(c, dtype=np.float64)[targets.astype(np.int64)]
        if targets.shape != inputs.shape:
            raise AdapterError(f"targets of shape {targets.shape} fit neither {inputs.shape[:-1]} nor {inputs.shape}")
        return targets.astype(np.float64)


def keras_adapters() -> list[Adapter]:
    """Every Keras adapter: binary and categorical on the tensorflow, jax and torch backends."""
    made: list[Adapter] = []
    for backend in BACKENDS:
        made.append(KerasBinaryAdapter(backend))
        made.append(KerasCategoricalAdapter(backend))
    return made
