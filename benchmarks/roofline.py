"""The machine's own memory-bandwidth ceiling, measured in the same run as the throughputs.

Focal loss is element-wise plus a reduction: a few dozen flops per element against 8-12
bytes moved, so on every CPU and GPU it is bound by memory bandwidth.  The honest yardstick
is therefore not a datasheet figure but a large copy on the same device in the same run:
bytes read plus bytes written over its median time.  A throughput divided by this number
(the roofline fraction) says how close an implementation comes to the best any element-wise
kernel could do here.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

CPU_COPY_BYTES = 256 * 2**20  # far beyond any CPU's last-level cache
CUDA_COPY_BYTES = 2 * 2**30  # beyond the 50-60 MB L2 of a Hopper GPU by 40x


@dataclass(frozen=True)
class Ceiling:
    """One measured copy: ``GBps`` counts bytes read plus bytes written (2 x ``bytes``)."""

    device: str
    device_name: str
    method: str
    bytes: int
    GBps: float
    median_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- machine facts


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or the platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_llc_bytes() -> int:
    """Size of the largest CPU cache level (sysfs); 32 MiB when it cannot be read."""
    best = 0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in base.glob("index*"):
        try:
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
        digits = text[:-1] if text[-1:].isalpha() else text
        if digits.isdigit():
            best = max(best, int(digits) * mult)
    return best or 32 * 2**20


def cuda_llc_bytes() -> int:
    """L2 size of CUDA device 0 through torch when it can tell; 64 MiB otherwise."""
    try:
        import torch

        return int(torch.cuda.get_device_properties(0).L2_cache_size) or 64 * 2**20
    except Exception:
        return 64 * 2**20


def cuda_device_name() -> str:
    """Name of CUDA device 0 as torch, cupy or jax reports it; '' when none can."""
    try:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:
        pass
    try:
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus:
            return str(gpus[0].device_kind)
    except Exception:
        pass
    return ""


# ----------------------------------------------------------------------------- CPU


def _parallel_copy(dst: np.ndarray, src: np.ndarray, pool: ThreadPoolExecutor | None, parts: int) -> None:
    if pool is None:
        np.copyto(dst, src)
        return
    bounds = np.linspace(0, src.size, parts + 1, dtype=np.int64)
    futures = [pool.submit(np.copyto, dst[a:b], src[a:b]) for a, b in itertools.pairwise(bounds)]
    for f in futures:
        f.result()


def measure_cpu_copy(
    nbytes: int = CPU_COPY_BYTES, min_time: float = 0.5, min_reps: int = 5, threads: int | None = None
) -> Ceiling:
    """Copy ``nbytes`` between two float32 buffers with numpy, single-threaded and split over
    ``threads`` (default: every usable core; numpy releases the GIL while copying); the
    faster is the ceiling, since the frameworks under test use as many threads."""
    n = max(1, nbytes // 4)
    rng = np.random.default_rng(0)
    src = rng.standard_normal(n, dtype=np.float32)  # never time on zeros (untouched pages)
    dst = np.empty_like(src)
    dst.fill(1.0)  # fault the pages in before timing
    best: tuple[float, str] | None = None
    for workers in sorted({1, threads or cpu_count()}):
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        try:
            _parallel_copy(dst, src, pool, workers)  # warm-up
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < min_reps or time.perf_counter() - start < min_time:
                t0 = time.perf_counter()
                _parallel_copy(dst, src, pool, workers)
                times.append(time.perf_counter() - t0)
                if len(times) >= 200:
                    break
        finally:
            if pool is not None:
                pool.shutdown()
        med = statistics.median(times)
        if best is None or med < best[0]:
            best = (med, f"numpy.copyto float32, {workers} thread{'s' if workers > 1 else ''}")
    assert best is not None
    med, method = best
    nb = n * 4
    return Ceiling("cpu", cpu_model(), f"{method}, {nb // 2**20} MiB", nb, 2 * nb / med / 1e9, med)


# ----------------------------------------------------------------------------- CUDA


def _measure_cuda_torch(nbytes: int, reps: int) -> Ceiling:
    import torch

    dev = torch.device("cuda", 0)
    src = torch.randint(0, 255, (nbytes,), dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize(dev)
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    med = statistics.median(times)
    name = torch.cuda.get_device_name(dev)
    del src, dst
    torch.cuda.empty_cache()
    method = f"torch {torch.__version__} Tensor.copy_ device-to-device, CUDA events, {nbytes // 2**20} MiB"
    return Ceiling("cuda", name, method, nbytes, 2 * nbytes / med / 1e9, med)


def _measure_cuda_jax(nbytes: int, reps: int) -> Ceiling:
    import jax
    import jax.numpy as jnp

    gpu = next(d for d in jax.devices() if d.platform == "gpu")
    n = nbytes // 4
    src = jax.device_put(jnp.arange(n, dtype=jnp.float32), gpu)
    copy = jax.jit(lambda x: x + 0.0)  # a real read + write; jnp.copy may alias under jit
    copy(src).block_until_ready()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        copy(src).block_until_ready()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    method = f"jax {jax.__version__} jit(x + 0) float32, host clock after block_until_ready, {nbytes // 2**20} MiB"
    return Ceiling("cuda", str(gpu.device_kind), method, n * 4, 2 * n * 4 / med / 1e9, med)


def measure_cuda_copy(nbytes: int = CUDA_COPY_BYTES, reps: int = 20) -> Ceiling:
    """Device-to-device copy on CUDA device 0: through torch when it sees the GPU, else jax.
    Raises RuntimeError("no CUDA device") when neither does."""
    try:
        import torch

        if torch.cuda.is_available():
            return _measure_cuda_torch(nbytes, reps)
    except ImportError:
        pass
    try:
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            return _measure_cuda_jax(nbytes, reps)
    except (ImportError, RuntimeError):
        pass
    raise RuntimeError("no CUDA device")


def cuda_available() -> bool:
    """True when torch or jax sees a CUDA GPU (without making either one import the other)."""
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    try:
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    except (ImportError, RuntimeError):
        return False


def measure(device: str, quick: bool = False, threads: int | None = None) -> Ceiling:
    """The copy ceiling of ``device`` ("cpu" or "cuda"); smaller buffers in quick mode;
    ``threads`` caps the CPU copy's threads like the frameworks' (None: every core)."""
    if device == "cpu":
        nbytes = CPU_COPY_BYTES // 2 if quick else CPU_COPY_BYTES
        return measure_cpu_copy(nbytes, min_time=0.2 if quick else 0.5, threads=threads)
    if device == "cuda":
        return measure_cuda_copy(CUDA_COPY_BYTES // 4 if quick else CUDA_COPY_BYTES)
    raise ValueError(f"unknown device {device!r}")
