"""focalspec's own TF and JAX adapters running the kernels as they were at 66558df (before the
speed work of 2026-12-06), to time before and after in one ``focalspec bench`` run::

    PYTHONPATH=benchmarks/issue29 focalspec bench --adapter focalspec-tf before_adapters:BeforeTf keras-binary-tf ...
"""

from __future__ import annotations

from old_adapters import OldJax, OldTf
from paddle_timed import BEFORE

__all__ = ["BeforeJax", "BeforeTf"]


class BeforeJax(OldJax):
    kernel_file, revision = "jax_loss", BEFORE
    name = f"focalspec-jax-{BEFORE}"
    implementation = f"focalspec.kernels.jax_loss@{BEFORE}"


class BeforeTf(OldTf):
    kernel_file, revision = "tf_loss", BEFORE
    name = f"focalspec-tf-{BEFORE}"
    implementation = f"focalspec.kernels.tf_loss@{BEFORE}"
