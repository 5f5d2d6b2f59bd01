"""On-disk cache of large mpmath references (sweeps, big float64 batches), shared by runs.

The float64 sweeps of the report (1,204 logits per gamma) cost the gate most of its time when
it writes the results JSON, and every tox environment of the main job evaluates the same
ones.  An entry is keyed by the SHA-256 of the request (variant, dtype-exact inputs, targets,
dtype) *and of the reference's own source files*, so a change to the reference or the
rounding code invalidates every entry; what is stored is exactly what ``grading.expected``
computed from mpmath.  Only requests of at least ``MIN_ELEMENTS`` are stored (small ones are
cheap, and thousands of tiny files are not).  Location: ``$XDG_CACHE_HOME/focalspec/reference``
(default ``~/.cache``); a cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np

MIN_ELEMENTS = 256
_SOURCES = ("reference/mp.py", "reference/np.py", "reference/rounding.py", "conformance/grading.py")


@functools.cache
def _code_digest() -> str:
    """Digest of the code that produces a reference (the focalspec package sources)."""
    root = Path(__file__).resolve().parent.parent  # the repository, or the installed focalspec package
    h = hashlib.sha256()
    for rel in _SOURCES:
        p = root / rel
        h.update(p.read_bytes() if p.is_file() else rel.encode())
    return h.hexdigest()[:16]


def directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "focalspec" / "reference" / _code_digest()


def key(request: bytes) -> str:
    return hashlib.sha256(request).hexdigest()


def load(k: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(directory() / f"{k}.npz", allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, KeyError):
        return None


def store(k: str, arrays: dict[str, np.ndarray]) -> None:
    d = directory()
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{k}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, d / f"{k}.npz")
    except OSError:
        pass
