"""The performance harness: throughput of each adapter against the machine's own copy ceiling.

What is timed is the adapter's native path (``Adapter.prepare_timed``): inputs placed on the
device once, in K distinct sets rotated so that repetitions do not measure the cache; a
first call (tracing/compiling) reported apart as ``compile_s``; warm-up; then an adaptive
number of repetitions, each synchronised, summarised by median, IQR and minimum.  Throughput
is given as elements/s and as effective GB/s over the *fewest* bytes the pass must move, and
as a fraction of a large device-to-device copy measured in the same run (``roofline``).

A fast wrong answer is not a result: the output of the last timed repetition is compared
with the float64 reference at the dtype-exact inputs, and a result beyond the tolerance
policy's 'acceptable' grade is marked ``correct: false`` with the reason.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from focalspec.adapters.base import Adapter
from focalspec.benchmarks import roofline
from focalspec.reference.rounding import get_format
from focalspec.spec.tolerance import budget, error_in_u, worst
from focalspec.spec.variant import SOFT_TARGETS, SpecError, Variant

SCHEMA = "focalspec-bench"
SCHEMA_VERSION = 1

PASSES: tuple[str, ...] = ("forward", "forward_backward")
BENCH_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
N_CLASSES = 80  # COCO: detection heads score N anchors x 80 classes
POSITIVE_ANCHOR_FRACTION = 0.02  # ~2% of anchors matched to an object, one class each
LOGIT_LOC, LOGIT_SCALE = -3.0, 2.0  # a trained head: mostly confident negatives, some near 0
CPU_SIZES: tuple[int, ...] = tuple(2**k for k in range(12, 23, 2))
CUDA_SIZES: tuple[int, ...] = tuple(2**k for k in range(12, 29, 2))
QUICK_SIZES: tuple[int, ...] = (2**12, 2**16)
KERAS_CLIP = 1e-7  # the clip_eps a Keras-style implementation declares
MAX_SETS = 64  # input sets rotated at most
HOST_ROTATION_BYTES = 2 * 2**30  # float64 host copies of the rotated sets, at most
# frameworks whose compiled mode costs seconds, not minutes, on a small CPU (used by --quick)
CHEAP_COMPILE: frozenset[str] = frozenset({"jax", "tensorflow", "keras", "numpy"})
# environment variables that change what is measured (threads, devices, precision, allocators);
# an allow-list, because a results file is committed and other variables may hold secrets
ENV_RECORDED: tuple[str, ...] = (
    "OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "KMP_AFFINITY", "KMP_BLOCKTIME", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING", "NVIDIA_TF32_OVERRIDE",
    "XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_ALLOCATOR",
    "JAX_PLATFORMS", "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION", "TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS",
    "TF_GPU_ALLOCATOR", "TF_CPP_MIN_LOG_LEVEL", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "PYTORCH_CUDA_ALLOC_CONF",
    "TORCHINDUCTOR_CACHE_DIR", "KERAS_BACKEND", "FOCALSPEC_GIT_REVISION",
)  # fmt: skip


# ----------------------------------------------------------------------------- configuration


@dataclass
class BenchConfig:
    """What to measure and how long to try; ``None`` means 'every one that applies'."""

    adapters: list[str] | None = None  # registry names or "module:attr" specs
    frameworks: list[str] | None = None
    devices: list[str] | None = None
    dtypes: tuple[str, ...] = BENCH_DTYPES
    modes: tuple[str, ...] = ("eager", "compiled")
    passes: tuple[str, ...] = PASSES
    sizes: tuple[int, ...] | None = None  # element counts; None: CPU_SIZES / CUDA_SIZES
    min_time: float = 0.2  # seconds of timed repetitions at least
    min_reps: int = 5
    max_reps: int = 2000
    warmup_time: float = 0.05
    deadline_s: float | None = None  # start no measurement after this many seconds
    quick: bool = False
    n_classes: int = N_CLASSES
    seed: int = 0
    threads: int | None = None  # CPU threads per framework (None: each framework's default)
    command: str = ""

    @classmethod
    def quick_defaults(cls, **changes: Any) -> BenchConfig:
        """--quick: a minute on a 2-core CPU: own adapters + one shipped, float32, two sizes."""
        base = dict(dtypes=("float32",), sizes=QUICK_SIZES, min_time=0.05, min_reps=3, warmup_time=0.02, quick=True)
        base.update({k: v for k, v in changes.items() if v is not None})
        return cls(**base)  # type: ignore[arg-type]


def parse_sizes(text: str) -> tuple[int, ...]:
    """'2^12,2^16' or '4096,65536' (also 2**12) -> element counts; SpecError on anything else."""
    sizes: list[int] = []
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        try:
            if "^" in item or "**" in item:
                base, exp = item.replace("**", "^").split("^")
                value = int(base) ** int(exp)
            else:
                value = int(float(item)) if "e" in item.lower() else int(item)
        except ValueError:
            raise SpecError(f"cannot read size {item!r}; write 2^20 or 1048576") from None
        if value < 1:
            raise SpecError(f"size {item!r} must be at least 1 element")
        sizes.append(value)
    if not sizes:
        raise SpecError(f"no sizes in {text!r}")
    return tuple(sizes)


# ----------------------------------------------------------------------------- threads


def limit_threads_env(n: int) -> None:
    """Ask every framework for ``n`` CPU threads through the environment; effective only before
    the framework is imported (the CLI calls it first).  On a CPU shared with other work,
    more threads than free cores make OpenMP/Eigen workers wait on each other, and the
    numbers measure that contention instead of the implementation."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    if n == 1:  # XLA:CPU (JAX, TF jit_compile) has a switch for one thread only
        flags = os.environ.get("XLA_FLAGS", "")
        extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()


def apply_thread_limit(n: int) -> None:
    """The same limit for frameworks imported already (torch reads it at any time)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if "tensorflow" in sys.modules:
        try:
            tf = sys.modules["tensorflow"]
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except (RuntimeError, AttributeError):  # initialised already: the environment decided
            pass


# ----------------------------------------------------------------------------- adapters


def is_own(adapter: Adapter) -> bool:
    """focalspec's own implementations (the spec written in each framework), as opposed to
    the shipped third-party ones they are compared with."""
    return adapter.implementation.startswith("focalspec")


def has_timing_path(adapter: Adapter) -> bool:
    return adapter.has_timing_path()


def resolve_adapters(config: BenchConfig, notes: list[str]) -> list[Adapter]:
    """The adapters to measure, in order; unavailable ones become a note, unknown names a SpecError."""
    from focalspec.adapters import registry

    if config.adapters:
        known: dict[str, Adapter] | None = None
        chosen: list[Adapter] = []
        for name in config.adapters:
            if ":" in name:
                chosen.extend(registry._load(name))
                continue
            if known is None:
                known = {a.name: a for a in registry.all_adapters()}
            if name not in known:
                raise SpecError(f"no adapter named {name!r}; known: {', '.join(sorted(known)) or 'none'}")
            chosen.append(known[name])
    else:
        chosen = registry.all_adapters()
    if config.frameworks:
        chosen = [a for a in chosen if a.framework in config.frameworks]
    usable = []
    for a in chosen:
        reason = a.unavailable_reason()
        if reason:
            notes.append(f"{a.name}: unavailable: {reason}")
        else:
            usable.append(a)
    if config.quick and not config.adapters:
        usable = quick_selection(usable)
    return usable


def quick_selection(usable: Sequence[Adapter]) -> list[Adapter]:
    """--quick: the own adapters and, for the ratio each must show, every shipped adapter of
    their frameworks that can be timed on the quick run's setting (float32, CPU, eager);
    with no such peer, one shipped adapter as before, so the run still compares something."""
    own = [a for a in usable if is_own(a)]
    frameworks = {a.framework for a in own}
    shipped = [a for a in usable if not is_own(a)]

    def timeable(a: Adapter) -> bool:
        return has_timing_path(a) and bench_variant(a, "float32", "cpu", "eager")[0] is not None

    peers = [a for a in shipped if a.framework in frameworks and timeable(a)]
    if not peers:
        peers = sorted(shipped, key=lambda a: not timeable(a))[:1]
    return own + peers


def bench_variant(adapter: Adapter, dtype: str, device: str, mode: str) -> tuple[Variant | None, str | None]:
    """The detection setting (sigmoid on logits, gamma 2, alpha 0.25, hard targets) in the first
    form the adapter supports: reduction 'sum' (float16: 'mean', since a sum over the ~2^21
    and more losses of these inputs passes float16's 65504, and inf = inf checks nothing),
    alpha disabled if it must be, and as a last resort reduction 'none' (optax has no other;
    the loss array is then graded element by element).  At hard targets
    every soft-target convention computes the same function, so any one of them will do; an
    implementation that clips probabilities (Keras off TensorFlow) is run as it declares."""
    reductions = ("mean", "sum", "none") if dtype == "float16" else ("sum", "mean", "none")
    first_reason: str | None = None
    for reduction in reductions:
        for alpha in (0.25, None):
            for clip in (None, KERAS_CLIP):
                for soft in SOFT_TARGETS if clip is None else ("canonical",):
                    v = Variant(gamma=2.0, alpha=alpha, soft_target=soft, clip_eps=clip, reduction=reduction)  # type: ignore[arg-type]
                    reason = adapter.supports(v, dtype, device, mode)
                    if reason is None:
                        return v, None
                    first_reason = first_reason or reason
    return None, first_reason or "no supported variant"


# ----------------------------------------------------------------------------- inputs


@dataclass
class InputBatch:
    """K dtype-exact float64 logit sets of shape (N, C) and one shared hard-target array."""

    sets: list[np.ndarray]
    targets: np.ndarray
    dtype: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.targets.shape  # type: ignore[return-value]

    @property
    def n(self) -> int:
        return int(self.targets.size)


def shape_for(size: int, n_classes: int = N_CLASSES) -> tuple[int, int]:
    """(N anchors, C classes) with N * C as close to ``size`` as whole anchors allow."""
    return max(1, round(size / n_classes)), n_classes


def rotation_count(n: int, dtype: str, llc_bytes: int) -> int:
    """Input sets to rotate: enough that one pass over them exceeds twice the last-level cache,
    when the float64 host copies stay affordable; at least 1, at most MAX_SETS."""
    device_bytes = n * get_format(dtype).numpy_type(0).itemsize
    k = math.ceil(2 * llc_bytes / max(1, device_bytes))
    k = min(k, MAX_SETS, max(1, HOST_ROTATION_BYTES // max(1, 8 * n)))
    return max(1, k)


def make_inputs(size: int, dtype: str, k: int, seed: int, n_classes: int = N_CLASSES) -> InputBatch:
    """Random logits (never zeros) rounded to ``dtype``, and one-hot targets on ~2% of anchors."""
    rng = np.random.default_rng([seed, size, k])
    shape = shape_for(size, n_classes)
    np_type = get_format(dtype).numpy_type
    sets = []
    for _ in range(k):
        z = rng.standard_normal(shape, dtype=np.float32)
        z *= LOGIT_SCALE
        z += LOGIT_LOC
        sets.append(z.astype(np_type).astype(np.float64))
    targets = np.zeros(shape, dtype=np.float64)
    n_pos = max(1, round(shape[0] * POSITIVE_ANCHOR_FRACTION))
    anchors = rng.choice(shape[0], size=n_pos, replace=False)
    targets[anchors, rng.integers(0, n_classes, size=n_pos)] = 1.0
    return InputBatch(sets, targets, dtype)


def min_bytes(n: int, dtype: str, pass_: str) -> int:
    """Fewest bytes a pass must move: read logits and targets (both in ``dtype``, as passed
    to every adapter) once; forward+backward also writes the gradient once."""
    item = int(get_format(dtype).numpy_type(0).itemsize)
    return n * item * (3 if pass_ == "forward_backward" else 2)


def moved_bytes(n: int, dtype: str, pass_: str, reduction: str) -> int:
    """``min_bytes``, plus writing the loss array where the reduction is 'none'."""
    item = int(get_format(dtype).numpy_type(0).itemsize)
    return min_bytes(n, dtype, pass_) + (n * item if reduction == "none" else 0)


# ----------------------------------------------------------------------------- correctness


@dataclass
class OutputCheck:
    """Whether a timed output is right (the benchmark times only correct output), and by how much."""

    correct: bool
    max_err_u: float
    reason: str | None


def check_output(loss: Any, grad: Any, ref: Any, dtype: str, variant: Variant, n: int, backward: bool) -> OutputCheck:
    """Grade the timed output against the float64 reference (``reference.float64.NpResult``):
    'acceptable' or better for the reduced loss (budget of an n-element reduction) and for
    every gradient element; NaN/Inf where the reference is finite is always wrong."""
    fmt = get_format(dtype)
    loss = np.asarray(loss, dtype=np.float64)
    if variant.reduction == "none":
        return _check_elementwise(loss, grad, ref, dtype, variant, backward)
    if loss.size != 1:
        return OutputCheck(False, math.inf, f"wrong output: expected a scalar loss, got shape {loss.shape}")
    got = float(loss.reshape(-1)[0])
    exact = float(ref.value)
    with np.errstate(over="ignore"):
        rounded = float(np.asarray(exact).astype(fmt.numpy_type).astype(np.float64))
    if math.isinf(rounded) and math.isfinite(exact):
        exact = rounded  # the dtype's own answer for an overflowing sum is +inf (tolerance.error_in_u)
    err_v = float(error_in_u(np.array([got]), np.array([exact]), np.array([abs(exact)]), dtype)[0])
    ok_v = budget(dtype, variant.gamma, n).acceptable
    if not err_v <= ok_v:
        why = f"wrong loss: {got!r} vs reference {exact!r} ({_u(err_v)} > acceptable {ok_v:g} u)"
        return OutputCheck(False, err_v, why)
    if not backward:
        return OutputCheck(True, err_v, None)
    if grad is None:
        return OutputCheck(False, math.inf, "wrong output: forward+backward returned no gradient")
    g = np.asarray(grad, dtype=np.float64)
    if g.shape != ref.grad.shape:
        return OutputCheck(False, math.inf, f"wrong output: gradient of shape {g.shape}, inputs {ref.grad.shape}")
    err_g, idx = worst(error_in_u(g, ref.grad, ref.grad_scale, dtype))
    ok_g = budget(dtype, variant.gamma, 1).acceptable
    if not err_g <= ok_g:
        at = np.unravel_index(idx, g.shape)
        return OutputCheck(
            False,
            err_g,
            f"wrong gradient at {tuple(int(i) for i in at)}: {g.flat[idx]!r} vs reference {ref.grad.flat[idx]!r} "
            f"({_u(err_g)} > acceptable {ok_g:g} u)",
        )
    return OutputCheck(True, max(err_v, err_g), None)


def _check_elementwise(
    loss: np.ndarray, grad: Any, ref: Any, dtype: str, variant: Variant, backward: bool
) -> OutputCheck:
    """Reduction 'none': every loss element (and gradient element) within 'acceptable'."""
    if loss.shape != ref.losses.shape:
        return OutputCheck(False, math.inf, f"wrong output: loss of shape {loss.shape}, inputs {ref.losses.shape}")
    ok = budget(dtype, variant.gamma, 1).acceptable
    worst_err = 0.0
    parts = [("loss", loss, ref.losses, np.abs(ref.losses))]
    if backward:
        if grad is None:
            return OutputCheck(False, math.inf, "wrong output: forward+backward returned no gradient")
        g = np.asarray(grad, dtype=np.float64)
        if g.shape != ref.grad.shape:
            return OutputCheck(False, math.inf, f"wrong output: gradient of shape {g.shape}, inputs {ref.grad.shape}")
        parts.append(("gradient", g, ref.grad, ref.grad_scale))
    for what, got, exact, scale in parts:
        err, idx = worst(error_in_u(got, exact, scale, dtype))
        worst_err = max(worst_err, err)
        if not err <= ok:
            at = tuple(int(i) for i in np.unravel_index(idx, got.shape))
            return OutputCheck(
                False, err, f"wrong {what} at {at}: {got.flat[idx]!r} vs reference {exact.flat[idx]!r} "
                f"({_u(err)} > acceptable {ok:g} u)",
            )  # fmt: skip
    return OutputCheck(True, worst_err, None)


def _u(err: float) -> str:
    return "non-finite" if not math.isfinite(err) else f"{err:.3g} u"


# ----------------------------------------------------------------------------- timing


@dataclass
class Timing:
    times: list[float]
    compile_s: float
    last_out: Any
    last_set: int

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def iqr(self) -> float:
        q1, q3 = np.percentile(self.times, [25, 75])
        return float(q3 - q1)


def time_timed(timed: Any, k: int, config: BenchConfig) -> Timing:
    """First call (compile) apart, warm-up, then synchronised repetitions over the rotated
    sets until both ``min_time`` and ``min_reps`` are reached, or ``max_reps``.  The set the
    last repetition ran on is returned with its output, for the correctness check."""
    clock = time.perf_counter
    t0 = clock()
    out = timed.step(0)
    timed.sync(out)
    compile_s = float(timed.compile_seconds) + (clock() - t0)
    warm = 0
    start = clock()
    while warm < 2 or (clock() - start < config.warmup_time and warm < max(k, 10)):
        out = timed.step((warm + 1) % k)
        timed.sync(out)
        warm += 1
    times: list[float] = []
    total = 0.0
    while True:
        i = (warm + 1 + len(times)) % k  # continue the rotation
        t0 = clock()
        out = timed.step(i)
        timed.sync(out)
        times.append(clock() - t0)
        total += times[-1]
        enough = len(times) >= config.min_reps and total >= config.min_time
        if enough or len(times) >= config.max_reps:
            return Timing(times, compile_s, out, i)


# ----------------------------------------------------------------------------- the run


class Reporter(Protocol):
    """Progress display: the CLI gives a rich bar or plain lines; tests give nothing."""

    def start(self, total: int) -> None: ...
    def begin(self, label: str) -> None: ...
    def finish(self, result: dict[str, Any]) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def start(self, total: int) -> None:
        pass

    def begin(self, label: str) -> None:
        pass

    def finish(self, result: dict[str, Any]) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Job:
    device: str
    dtype: str
    size: int
    adapter: Adapter
    variant: Variant
    mode: str
    pass_: str

    def label(self) -> str:
        return f"{self.adapter.name} {self.device} {self.dtype} {self.mode} {self.pass_} {self.size:,}"


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_devices(adapters: Sequence[Adapter]) -> list[str]:
    devices = ["cpu"]
    if any("cuda" in a.devices() for a in adapters):
        devices.append("cuda")
    return devices


def build_plan(config: BenchConfig, adapters: Sequence[Adapter], notes: list[str]) -> Plan:
    """Every (device, dtype, size, adapter, mode, pass) to measure, float32 first so that a
    deadline cuts the least important runs; unsupported combinations become notes."""
    plan = Plan(notes=notes)
    devices = config.devices or default_devices(adapters)
    for device in devices:
        runnable = []
        for a in adapters:
            if device not in a.devices():
                notes.append(f"{a.name}: no CUDA device" if device == "cuda" else f"{a.name}: cannot run on {device}")
            else:
                runnable.append(a)
        sizes = config.sizes or (CUDA_SIZES if device == "cuda" else CPU_SIZES)
        for dtype in config.dtypes:
            combos: list[tuple[Adapter, str, Variant]] = []
            for a in runnable:
                if dtype not in a.dtypes:
                    notes.append(f"{a.name}: {dtype} not among its dtypes ({', '.join(a.dtypes)})")
                    continue
                for mode in config.modes:
                    if mode not in a.modes:
                        continue
                    if config.quick and mode == "compiled" and a.framework not in CHEAP_COMPILE:
                        notes.append(f"{a.name}: compiled mode left out of --quick (compiling costs minutes)")
                        continue
                    variant, reason = bench_variant(a, dtype, device, mode)
                    if variant is None:
                        notes.append(f"{a.name}: {device} {dtype} {mode}: {reason}")
                        continue
                    combos.append((a, mode, variant))
            for size in sizes:
                for a, mode, variant in combos:
                    for pass_ in config.passes:
                        plan.jobs.append(Job(device, dtype, size, a, variant, mode, pass_))
    return plan


def new_document(config: BenchConfig) -> dict[str, Any]:
    from focalspec import __version__

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "suite": {"version": __version__, "git_revision": git_revision()},
        "run": {
            "started": _now(),
            "finished": None,
            "host": socket.gethostname(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "command": config.command,
            "cpu_model": roofline.cpu_model(),
            "cpu_count": roofline.cpu_count(),
            "env": {k: os.environ[k] for k in sorted(ENV_RECORDED) if k in os.environ},
        },
        "ceilings": [],
        "results": [],
    }


def git_revision() -> str | None:
    """HEAD of the checkout focalspec runs from (+'-dirty' with tracked changes), else
    $FOCALSPEC_GIT_REVISION (a copy of the tree without .git, as on the GPU machine)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("FOCALSPEC_GIT_REVISION") or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:300]


def _release_memory(device: str) -> None:
    gc.collect()
    if device == "cuda" and "torch" in sys.modules:
        try:
            sys.modules["torch"].cuda.empty_cache()
        except Exception:
            pass


class _References:
    """float64 reference per (variant, input set), for the batch in hand only."""

    def __init__(self) -> None:
        self.batch: InputBatch | None = None
        self.cache: dict[tuple[Variant, int], Any] = {}

    def get(self, batch: InputBatch, variant: Variant, index: int = 0) -> Any:
        if batch is not self.batch:
            self.batch, self.cache = batch, {}
        if (variant, index) not in self.cache:
            self.cache[(variant, index)] = reference(variant, batch.sets[index], batch.targets)
        return self.cache[(variant, index)]


REFERENCE_CHUNK = 2**20  # elements per piece of a large reference evaluation


def reference(variant: Variant, x: np.ndarray, t: np.ndarray) -> Any:
    """``reference.float64.evaluate`` of a 'sum' or 'mean' variant; above 4 chunks in row pieces
    on every core (numpy releases the GIL), so that 2^28 elements cost seconds and a few
    GiB instead of minutes and tens of GiB.  Each piece is the reference's own unreduced
    evaluation; the reduction is the reference's: sum, or sum / n with the gradient / n."""
    from concurrent.futures import ThreadPoolExecutor

    from focalspec.reference.float64 import NpResult, evaluate

    if x.size <= 4 * REFERENCE_CHUNK or variant.reduction not in ("sum", "mean"):
        return evaluate(variant, x, t)
    elementwise = variant.with_(reduction="none")
    losses, grad, scale = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    rows = max(1, REFERENCE_CHUNK // x.shape[-1])
    starts = range(0, x.shape[0], rows)

    def piece(a: int) -> float:
        r = evaluate(elementwise, x[a : a + rows], t[a : a + rows])
        losses[a : a + rows], grad[a : a + rows], scale[a : a + rows] = r.losses, r.grad, r.grad_scale
        return float(np.sum(r.losses))

    with ThreadPoolExecutor(roofline.cpu_count()) as pool:
        total = math.fsum(pool.map(piece, starts))
    if variant.reduction == "sum":
        return NpResult(losses, total, grad, scale)
    return NpResult(losses, total / x.size, grad / x.size, scale / x.size)


def measure_job(
    job: Job, batch: InputBatch, ceiling: dict[str, Any] | None, refs: _References, config: BenchConfig
) -> dict[str, Any]:
    """One result row: time the adapter's native path and grade its last timed output."""
    a = job.adapter
    row = result_row(job, batch, ceiling)
    backward = job.pass_ == "forward_backward"
    timed = None
    try:
        timed = a.prepare_timed(job.variant, batch.sets, batch.targets, job.dtype, job.device, job.mode, backward)
        timing = time_timed(timed, len(batch.sets), config)
        loss, grad = timed.to_numpy(timing.last_out)
        dev_name = timed.ran.get("device_name") if isinstance(timed.ran, dict) else None
    except NotImplementedError as exc:
        row["error"] = "no native timing path (prepare_timed)" if not has_timing_path(a) else _one_line(exc)
        return row
    except Exception as exc:  # the implementation under test failed: record it, go on
        row["error"] = _one_line(exc)
        return row
    finally:
        del timed
    ref = refs.get(batch, job.variant, timing.last_set)
    check = check_output(loss, grad, ref, job.dtype, job.variant, batch.n, backward)
    med = timing.median
    nbytes = moved_bytes(batch.n, job.dtype, job.pass_, job.variant.reduction)
    gbps = nbytes / med / 1e9
    row.update(
        device_name=dev_name or row["device_name"],
        reps=len(timing.times),
        median_s=med,
        iqr_s=timing.iqr,
        min_s=float(min(timing.times)),
        elements_per_s=batch.n / med,
        GBps=gbps,
        roofline_fraction=gbps / ceiling["GBps"] if ceiling and ceiling.get("GBps") else None,
        compile_s=timing.compile_s,
        bytes_per_element=declared_bytes(a, job),
        correct=check.correct,
        max_err_u=_finite(check.max_err_u),
        error=check.reason,
    )
    return row


def declared_bytes(adapter: Adapter, job: Job) -> float | None:
    """Bytes per element the adapter says its pass moves (``bytes_per_element``), beside the
    minimum that GB/s and roofline_fraction count: equal, the fraction is the kernel's own."""
    declare = getattr(adapter, "bytes_per_element", None)
    if declare is None:
        return None
    try:
        return float(declare(job.variant, job.dtype, job.pass_))
    except Exception:
        return None


def result_row(job: Job, batch: InputBatch | None, ceiling: dict[str, Any] | None) -> dict[str, Any]:
    """A row with the job's identity filled in and every measurement empty (an error row)."""
    a = job.adapter
    shape = list(batch.shape) if batch is not None else list(shape_for(job.size))
    try:
        version = a.framework_version()
    except Exception:
        version = None
    return {
        "adapter": a.name,
        "implementation": a.implementation,
        "framework": a.framework,
        "framework_version": version,
        "device": job.device,
        "device_name": (ceiling or {}).get("device_name"),
        "dtype": job.dtype,
        "mode": job.mode,
        "pass": job.pass_,
        "n_elements": int(shape[0] * shape[1]),
        "shape": shape,
        "reps": 0,
        "median_s": None,
        "iqr_s": None,
        "min_s": None,
        "elements_per_s": None,
        "GBps": None,
        "roofline_fraction": None,
        "compile_s": None,
        "bytes_per_element": None,
        "correct": False,
        "max_err_u": None,
        "error": None,
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Atomically (a partial file is never left half-written), strict JSON (no NaN)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def run_bench(
    config: BenchConfig,
    adapters: Sequence[Adapter] | None = None,
    reporter: Reporter | None = None,
    json_path: Path | None = None,
) -> dict[str, Any]:
    """Run the whole plan; the document is rewritten to ``json_path`` after every result
    (so a run cut short still leaves its numbers) and returned at the end."""
    rep = reporter or SilentReporter()
    started = time.perf_counter()
    notes: list[str] = []
    if config.threads:
        limit_threads_env(config.threads)
    chosen = list(adapters) if adapters is not None else resolve_adapters(config, notes)
    plan = build_plan(config, chosen, notes)
    if config.threads:
        apply_thread_limit(config.threads)
    for text in notes:
        rep.note(text)
    if not plan.jobs:
        raise SpecError("nothing to measure: " + ("; ".join(notes) if notes else "no adapters selected"))
    doc = new_document(config)
    ceilings: dict[str, dict[str, Any] | None] = {}
    refs = _References()
    batch: InputBatch | None = None
    batch_key: tuple[str, str, int] | None = None
    rep.start(len(plan.jobs))
    try:
        for job in plan.jobs:
            rep.begin(job.label())
            if job.device not in ceilings:
                ceilings[job.device] = _measure_ceiling(job.device, config, rep)
                if ceilings[job.device]:
                    doc["ceilings"].append(ceilings[job.device])
            ceiling = ceilings[job.device]
            if config.deadline_s is not None and time.perf_counter() - started > config.deadline_s:
                row = result_row(job, None, ceiling)
                row["error"] = f"not run: the {config.deadline_s:g} s deadline had passed"
            else:
                if batch_key != (job.device, job.dtype, job.size):
                    batch, refs = None, _References()
                    _release_memory(job.device)
                    n = shape_for(job.size, config.n_classes)[0] * config.n_classes
                    k = rotation_count(n, job.dtype, _llc(job.device))
                    batch = make_inputs(job.size, job.dtype, k, config.seed, config.n_classes)
                    batch_key = (job.device, job.dtype, job.size)
                assert batch is not None
                row = measure_job(job, batch, ceiling, refs, config)
                if job.size >= 2**24:
                    _release_memory(job.device)
            doc["results"].append(row)
            rep.finish(row)
            if json_path is not None:
                write_json(doc, json_path)
    finally:
        rep.close()
    doc["run"]["finished"] = _now()
    if json_path is not None:
        write_json(doc, json_path)
    return doc


def _llc(device: str) -> int:
    return roofline.cuda_llc_bytes() if device == "cuda" else roofline.cpu_llc_bytes()


def _measure_ceiling(device: str, config: BenchConfig, rep: Reporter) -> dict[str, Any] | None:
    try:
        c = roofline.measure(device, quick=config.quick, threads=config.threads).to_dict()
    except Exception as exc:
        rep.note(f"copy ceiling on {device} not measured: {_one_line(exc)}")
        return None
    rep.note(f"ceiling {device}: {c['GBps']:.1f} GB/s ({c['method']}) on {c['device_name']}")
    return c


# ----------------------------------------------------------------------------- summaries


def _key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (r["device"], r["dtype"], r["pass"], r["mode"])


def largest_size_rows(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each (adapter, device, dtype, mode, pass), the row at the largest size measured."""
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in results:
        k = (r["adapter"], r["device"], r["dtype"], r["mode"], r["pass"])
        if k not in best or r["n_elements"] > best[k]["n_elements"]:
            best[k] = r
    return list(best.values())


def fastest(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per (device, dtype, pass) at the largest size both ran: the fastest correct
    result and how many times the runner-up's time and the slowest's it takes."""
    lines = []
    rows = [r for r in largest_size_rows(results) if r["correct"] and r["median_s"]]
    groups: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["device"], r["dtype"], r["pass"], r["n_elements"]), []).append(r)
    for (device, dtype, pass_, n), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["median_s"])
        top = rs[0]
        text = f"{device} {dtype} {pass_} at {n:,} elements: fastest {top['adapter']} ({top['mode']}), " + (
            f"{top['GBps']:.2f} GB/s"
        )
        if len(rs) > 1:
            nxt, last = rs[1], rs[-1]
            text += f"; {nxt['median_s'] / top['median_s']:.2f}x faster than {nxt['adapter']} ({nxt['mode']})"
            if last is not nxt:
                text += f", {last['median_s'] / top['median_s']:.2f}x faster than {last['adapter']} ({last['mode']})"
        lines.append(text)
    return lines


def _peer_entry(r: dict[str, Any] | None, own: dict[str, Any]) -> dict[str, Any] | None:
    """A peer and its ratios to ``own``: of the medians, and of the fastest repetitions (on a
    CPU shared with other work the minimum is the steadier of the two)."""
    if r is None:
        return None
    mins = r.get("min_s"), own.get("min_s")
    return {
        "adapter": r["adapter"], "mode": r["mode"], "median_s": r["median_s"], "correct": r["correct"],
        "ratio": r["median_s"] / own["median_s"], "min_ratio": mins[0] / mins[1] if all(mins) else None,
    }  # fmt: skip


def peer_ratios(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each timed result of an own implementation against the fastest *peer* of its framework
    in the same run: a shipped implementation (not focalspec's) on the same device, dtype, pass
    and size.  ``ratio`` = peer median / own median, so above 1 the own one is faster.  Four
    peers per row: the fastest correct one and the fastest of any correctness, each in the
    same mode (eager against eager, compiled against compiled) and in any mode; ``min_ratio``
    compares the fastest repetitions instead of the medians."""
    timed = [r for r in results if r["median_s"]]
    peers: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in timed:
        if not str(r["implementation"]).startswith("focalspec"):
            k = (r["framework"], r["device"], r["dtype"], r["pass"], r["n_elements"])
            peers.setdefault(k, []).append(r)
    out = []
    for r in timed:
        if not str(r["implementation"]).startswith("focalspec"):
            continue
        group = peers.get((r["framework"], r["device"], r["dtype"], r["pass"], r["n_elements"]), [])
        same = [p for p in group if p["mode"] == r["mode"]]

        def quickest(rows: list[dict[str, Any]], correct_only: bool) -> dict[str, Any] | None:
            rows = [p for p in rows if p["correct"] or not correct_only]
            return min(rows, key=lambda p: p["median_s"]) if rows else None

        out.append(
            {
                **{k: r[k] for k in ("adapter", "framework", "device", "dtype", "mode", "pass", "n_elements")},
                "median_s": r["median_s"],
                "correct": r["correct"],
                "same_mode_correct": _peer_entry(quickest(same, True), r),
                "same_mode_any": _peer_entry(quickest(same, False), r),
                "any_mode_correct": _peer_entry(quickest(group, True), r),
                "any_mode_any": _peer_entry(quickest(group, False), r),
            }
        )
    out.sort(
        key=lambda e: (e["device"], e["dtype"], e["framework"], e["adapter"], e["mode"], e["pass"], e["n_elements"])
    )
    return out


def _peer_text(p: dict[str, Any] | None, with_mode: bool = False) -> str:
    if p is None:
        return "–"
    name = f"{p['adapter']} {p['mode']}" if with_mode else p["adapter"]
    at_min = "" if p["min_ratio"] is None else f" (min {p['min_ratio']:.2f}x)"
    return f"{p['ratio']:.2f}x{at_min} {name}" + ("" if p["correct"] else " (wrong)")


def ratio_lines(results: Sequence[dict[str, Any]], largest_only: bool = True) -> list[str]:
    """One line per own result: its ratio to the fastest correct peer and the fastest peer of
    any correctness of its framework (same mode; then any mode), above 1 = own faster."""
    rows = largest_size_rows(results) if largest_only else list(results)
    lines = []
    for e in peer_ratios(rows):
        if e["same_mode_any"] is None and e["any_mode_any"] is None:
            lines.append(f"{e['adapter']} {e['mode']} {e['pass']} {e['dtype']} {e['n_elements']:,}: no peer timed")
            continue
        lines.append(
            f"{e['adapter']} {e['mode']} {e['pass']} {e['dtype']} {e['n_elements']:,}: "
            f"{e['median_s'] * 1e3:.3f} ms{'' if e['correct'] else ' (WRONG)'}; "
            f"{e['mode']} peers: fastest correct {_peer_text(e['same_mode_correct'])}, "
            f"fastest {_peer_text(e['same_mode_any'])}; "
            f"any mode: fastest correct {_peer_text(e['any_mode_correct'], True)}, "
            f"fastest {_peer_text(e['any_mode_any'], True)}"
        )
    return lines


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def markdown(doc: dict[str, Any], notes: Sequence[str] = ()) -> str:
    """A short human summary: when, where, what versions, the ceilings, the largest-size
    table, who is fastest, then GB/s at every size.  ``notes`` add lines to the header
    (the CLI gives the machine's load average, which CPU numbers depend on)."""
    run, suite = doc["run"], doc["suite"]
    results = doc["results"]
    versions = sorted({f"{r['framework']} {r['framework_version']}" for r in results if r["framework_version"]})
    out = [
        f"# focalspec bench — {run['started'][:10]}",
        "",
        f"- date: {run['started']} → {run['finished'] or 'unfinished'}",
        f"- suite: focalspec {suite['version']} at {suite['git_revision'] or 'unknown revision'}",
        f"- host: {run['host']}, {run['cpu_model']} ({run['cpu_count']} CPUs), {run['platform']}, "
        f"Python {run['python']}",
        f"- frameworks: {', '.join(versions) or '–'}",
        f"- command: `{run['command']}`",
    ]
    for c in doc["ceilings"]:
        out.append(f"- ceiling {c['device']} ({c['device_name']}): **{c['GBps']:.1f} GB/s**, {c['method']}")
    out += [f"- {text}" for text in notes]
    out += [
        "",
        "GB/s counts the fewest bytes the pass must move (forward: read logits + targets; "
        "forward+backward: also write the gradient); roofline = GB/s / copy ceiling.",
        "",
        "## Largest size",
        "",
        "| adapter | device | dtype | mode | pass | elements | median ms | IQR ms | Melem/s | GB/s | roofline "
        "| compile s | correct |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in sorted(largest_size_rows(results), key=lambda r: (*_key(r), r["adapter"])):
        ok = "yes" if r["correct"] else ("**no**" if r["median_s"] else "error")
        out.append(
            f"| {r['adapter']} | {r['device']} | {r['dtype']} | {r['mode']} | {r['pass']} | {r['n_elements']:,} "
            f"| {_fmt(r['median_s'] and r['median_s'] * 1e3, '.3f')} | {_fmt(r['iqr_s'] and r['iqr_s'] * 1e3, '.3f')} "
            f"| {_fmt(r['elements_per_s'] and r['elements_per_s'] / 1e6, '.1f')} | {_fmt(r['GBps'], '.2f')} "
            f"| {_fmt(r['roofline_fraction'] and 100 * r['roofline_fraction'], '.1f')}{'%' if r['GBps'] else ''} "
            f"| {_fmt(r['compile_s'], '.2f')} | {ok} |"
        )
    lines = fastest(results)
    if lines:
        out += ["", "## Fastest (correct results only)", "", *[f"- {t}" for t in lines]]
    ratios = peer_ratios(results)
    if ratios:
        out += [
            "",
            "## Own implementations against the fastest peer of their framework",
            "",
            "Ratio = peer's median / own median in this run (above 1: the own implementation is faster), "
            "with the ratio of the fastest repetitions in brackets; a peer marked (wrong) failed the "
            "correctness check.",
            "",
            "| adapter | dtype | mode | pass | elements | own ms | fastest correct peer, same mode "
            "| fastest peer, same mode | fastest correct peer, any mode | fastest peer, any mode |",
            "|---|---|---|---|---:|---:|---|---|---|---|",
        ]
        for e in ratios:
            out.append(
                f"| {e['adapter']} | {e['dtype']} | {e['mode']} | {e['pass']} | {e['n_elements']:,} "
                f"| {e['median_s'] * 1e3:.3f}{'' if e['correct'] else ' ✗'} "
                f"| {_peer_text(e['same_mode_correct'])} | {_peer_text(e['same_mode_any'])} "
                f"| {_peer_text(e['any_mode_correct'], True)} | {_peer_text(e['any_mode_any'], True)} |"
            )
    sizes = sorted({r["n_elements"] for r in results})
    out += [
        "",
        "## GB/s at every size",
        "",
        "| adapter | device | dtype | mode | pass | " + " | ".join(f"{s:,}" for s in sizes) + " |",
        "|---|---|---|---|---|" + "---:|" * len(sizes),
    ]
    cells: dict[tuple[str, ...], dict[int, str]] = {}
    for r in results:
        k: tuple[str, ...] = (r["adapter"], r["device"], r["dtype"], r["mode"], r["pass"])
        v = "err" if r["GBps"] is None else f"{r['GBps']:.2f}" + ("" if r["correct"] else " ✗")
        cells.setdefault(k, {})[r["n_elements"]] = v
    for k in sorted(cells, key=lambda k: (k[1], k[2], k[4], k[3], k[0])):
        out.append("| " + " | ".join(k) + " | " + " | ".join(cells[k].get(s, "") for s in sizes) + " |")
    errors = sorted({f"{r['adapter']}: {r['error']}" for r in results if r["error"]})
    if errors:
        out += ["", "## Errors and wrong outputs", "", *[f"- {e}" for e in errors]]
    return "\n".join(out) + "\n"
