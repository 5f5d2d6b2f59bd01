"""The timing loop and the thread limit: what one measurement of a prepared computation is.

First call (tracing/compiling) reported apart as ``compile_s``; warm-up; then an adaptive number
of synchronised repetitions over the rotated input sets, summarised by median, IQR and minimum.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class TimingConfig(Protocol):
    """The part of ``harness.BenchConfig`` the loop reads."""

    min_time: float
    min_reps: int
    max_reps: int
    warmup_time: float


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


def time_timed(timed: Any, k: int, config: TimingConfig) -> Timing:
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
