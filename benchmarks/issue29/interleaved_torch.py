"""focalspec-torch against torchvision, eager forward, timed interleaved in one process (one thread).

Why: on a shared 2-core machine two bench rows measured minutes apart can differ by 2x (torchvision's
eager forward at 2^20 took 11 ms in one run and 22 ms in the next); alternating the two calls call by
call gives both the same machine.  Prints the median and minimum of each and torchvision / own.

    python benchmarks/issue29/interleaved_torch.py     # needs torch and torchvision
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torchvision.ops as tvo

from focalspec.kernels import torch_loss


def main() -> None:
    torch.set_num_threads(1)
    for n in (1 << 16, 1 << 20):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, generator=g) * 4
        t = (torch.rand(n, generator=g) < 0.1).float()
        calls: dict[str, Callable[[], torch.Tensor]] = {
            "own": lambda x=x, t=t: torch_loss.sigmoid_focal_loss(x, t, gamma=2.0, alpha=0.25),
            "torchvision": lambda x=x, t=t: tvo.sigmoid_focal_loss(x, t, gamma=2.0, alpha=0.25),
        }
        times: dict[str, list[float]] = {k: [] for k in calls}
        for f in calls.values():
            for _ in range(5):
                f()
        for _ in range(400 if n == 1 << 16 else 40):
            for k, f in calls.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        low = {k: min(v) * 1e3 for k, v in times.items()}
        print(f"{n:>9,} elements: own {med['own']:.3f} ms, torchvision {med['torchvision']:.3f} ms; "
              f"torchvision/own median {med['torchvision'] / med['own']:.2f}x, "
              f"min {low['torchvision'] / low['own']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
