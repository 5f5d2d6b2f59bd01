"""The performance harness: throughput of each adapter against the machine's own copy ceiling.

What is timed is the adapter's native path (``Adapter.prepare_timed``), on the rotated input
sets of ``inputs``, by the loop of ``timing``; throughput is given as elements/s and as
effective GB/s over the *fewest* bytes the pass must move, and as a fraction of a large
device-to-device copy measured in the same run (``roofline``).  The output of the last timed
repetition is graded by the suite's grader (``correctness``): a fast wrong answer is marked
``correct: false``.  Ratios to peers are ``peers``; the markdown summary is ``tables``.  This
module is the run itself: configuration, the adapters and their variant, the plan, the rows.
An adapter with no native path here (Keras on jax/torch runs in a worker process) gives a row
with ``not_timed`` set: it is not an error of the implementation.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from focalspec.adapters.base import Adapter
from focalspec.benchmarks import roofline
from focalspec.benchmarks.correctness import OutputCheck, check_output
from focalspec.benchmarks.inputs import (
    MAX_SETS,
    N_CLASSES,
    InputBatch,
    References,
    make_inputs,
    min_bytes,
    moved_bytes,
    reference,
    rotation_count,
    shape_for,
)
from focalspec.benchmarks.peers import fastest, largest_size_rows, peer_ratios, ratio_lines
from focalspec.benchmarks.tables import markdown
from focalspec.benchmarks.timing import Timing, apply_thread_limit, limit_threads_env, time_timed
from focalspec.spec.variant import SOFT_TARGETS, SpecError, Variant

__all__ = [  # the names tests and the CLI reach through ``harness`` (moved to the modules above)
    "MAX_SETS",
    "N_CLASSES",
    "InputBatch",
    "OutputCheck",
    "References",
    "Timing",
    "apply_thread_limit",
    "check_output",
    "fastest",
    "largest_size_rows",
    "limit_threads_env",
    "make_inputs",
    "markdown",
    "min_bytes",
    "moved_bytes",
    "peer_ratios",
    "ratio_lines",
    "reference",
    "rotation_count",
    "shape_for",
    "time_timed",
]  # fmt: skip

SCHEMA = "focalspec-bench"
SCHEMA_VERSION = 1

PASSES: tuple[str, ...] = ("forward", "forward_backward")
BENCH_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
CPU_SIZES: tuple[int, ...] = tuple(2**k for k in range(12, 23, 2))
CUDA_SIZES: tuple[int, ...] = tuple(2**k for k in range(12, 29, 2))
QUICK_SIZES: tuple[int, ...] = (2**12, 2**16)
KERAS_CLIP = 1e-7  # the clip_eps a Keras-style implementation declares
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


def measure_job(
    job: Job, batch: InputBatch, ceiling: dict[str, Any] | None, refs: References, config: BenchConfig
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
        if not has_timing_path(a):
            row["error"] = "no native timing path (prepare_timed)"
        else:  # a path that does not apply here (a worker process): not the implementation's fault
            row["not_timed"] = f"not timed: {_not_timed_reason(a, exc)}"
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
        "not_timed": None,  # why no time was taken when the implementation is not at fault
    }


def _not_timed_reason(adapter: Adapter, exc: BaseException) -> str:
    """'runs in a worker process' (the Keras adapters' words, without their name) or the message."""
    text = _one_line(exc).removeprefix("NotImplementedError: ")
    return text.split(": ")[0].removeprefix(f"{adapter.name} ") if "worker" in text else text


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
    refs = References()
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
                    batch, refs = None, References()
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
