"""Inductor's CPU vector-ISA load probes, remembered across processes.

The first ``torch.compile`` of a process on CPU picks the vector ISA by building a small test
library per candidate ISA (cached in Inductor's own cache directory) and then, every process
again, starting a fresh Python to ``dlopen`` each one (``VecISA._probe_load``): ten
interpreters, ~1.1 s of a 2-core machine, paid by every compiled-mode worker of the suite.  The
answer depends only on that library file, this interpreter and this torch, so a successful probe
is recorded beside the library (``<lib>.focalspec-loads``, one line per (python, torch)) and the
next process reads it instead of spawning.  The file's size and modification time are part of
the record, so a rebuilt or replaced library is probed again; a failed probe is never recorded.
The ISA chosen, and so the generated code, is the one Inductor would choose unaided.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

MARKER_SUFFIX = ".focalspec-loads"
_INSTALLED = False


def _record(lib: str, torch: Any) -> str:
    st = os.stat(lib)
    return f"{sys.executable} torch={torch.__version__} size={st.st_size} mtime_ns={st.st_mtime_ns}"


def remember_isa_probes(torch: Any) -> None:
    """Wrap ``VecISA._probe_load`` (once per process); without that private hook, do nothing."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    try:
        from torch._inductor.cpu_vec_isa import VecISA
    except ImportError:
        return
    probe = getattr(VecISA, "_probe_load", None)
    if probe is not None:
        VecISA._probe_load = remembered(probe, torch)  # type: ignore[method-assign]


def remembered(probe: Callable[[Any, str], bool], torch: Any) -> Callable[[Any, str], bool]:
    """``probe(isa, library)``, answered from the library's record where it succeeded before."""

    def remembered_probe_load(self: Any, output_path: str) -> bool:
        marker = output_path + MARKER_SUFFIX
        try:
            line = _record(output_path, torch)
        except OSError:  # no library to record: Inductor's probe says what that means
            return bool(probe(self, output_path))
        try:
            with open(marker, encoding="utf-8") as f:
                if line in f.read().splitlines():
                    return True
        except OSError:
            pass
        ok = bool(probe(self, output_path))
        if ok:
            try:
                with open(marker, "a", encoding="utf-8") as f:  # one short line: appends do not interleave
                    f.write(line + "\n")
            except OSError:
                pass
        return ok

    return remembered_probe_load
