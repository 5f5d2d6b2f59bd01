"""On-disk cache of large mpmath references (sweeps, big float64 batches), shared by runs.

The float64 sweeps of the report (1,204 logits per gamma) cost the gate most of its time when
it writes the results JSON, and every tox environment of the main job evaluates the same
ones.  An entry is keyed by the SHA-256 of the request (variant, dtype-exact inputs, targets,
dtype) *and of the reference's own source files*, so a change to the reference or the
rounding code invalidates every entry; what is stored is exactly what ``grading.expected``
computed from mpmath.  Requests of at least ``MIN_ELEMENTS`` get a file each; the small ones
(the golden and edge cases: a few elements each, but about 700 of them per gate run, ~1 s of
mpmath) share one file, ``small.npz``, read once per process and rewritten at its exit when it
learned something new (``load_small``/``store_small``).  Location:
``$XDG_CACHE_HOME/focalspec/reference`` (default ``~/.cache``); a cache that cannot be read or
written is simply not used.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
from pathlib import Path

import numpy as np

from focalspec.adapters.base import cache_folder

MIN_ELEMENTS = 256
SMALL_FILE = "small.npz"
_FIELDS = ("value", "grad", "scale")
_SOURCES = (
    "reference/exact.py",
    "reference/float64.py",
    "reference/rounding.py",
    "spec/rounding.py",
    "conformance/suite/grading.py",
)


@functools.cache
def _code_digest() -> str:
    """Digest of the code that produces a reference (the focalspec package sources)."""
    root = Path(__file__).resolve().parents[2]  # the repository, or the installed focalspec package
    h = hashlib.sha256()
    for rel in _SOURCES:
        p = root / rel
        h.update(p.read_bytes() if p.is_file() else rel.encode())
    return h.hexdigest()[:16]


def directory() -> Path:
    return Path(cache_folder("reference", _code_digest()))


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


# ----------------------------------------------------------------------------- the small requests

SMALL_MAX = 4096  # entries kept: a gate run needs ~700; without a cap every test run would add its own
_MAX_NDIM = 4


class _SmallFile:
    """small.npz read once: the keys, and per field one flat array with each entry's shape (a
    handful of zip members, not three per entry); an entry is sliced out when asked for."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.fields: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        try:
            with np.load(directory() / SMALL_FILE, allow_pickle=False) as z:
                keys = [str(k) for k in z["keys"]]
                for f in _FIELDS:
                    data, shapes = z[f"{f}_data"], z[f"{f}_shape"]
                    if len(shapes) != len(keys):
                        return
                    ndim = shapes[:, :1]
                    dims = np.where(np.arange(_MAX_NDIM) < ndim, shapes[:, 1:], 1)
                    ends = np.cumsum(dims.prod(axis=1))
                    self.fields[f] = (data, shapes, ends)
        except (OSError, ValueError, KeyError):
            self.fields = {}
            return
        self.index = {k: i for i, k in enumerate(keys)}

    def get(self, k: str) -> dict[str, np.ndarray] | None:
        i = self.index.get(k)
        if i is None or not self.fields:
            return None
        out = {}
        for f, (data, shapes, ends) in self.fields.items():
            start = int(ends[i - 1]) if i else 0
            shape = tuple(int(n) for n in shapes[i, 1 : 1 + int(shapes[i, 0])])
            out[f] = data[start : int(ends[i])].reshape(shape)
        return out


_small: _SmallFile | None = None
_small_new: dict[str, dict[str, np.ndarray]] = {}
_small_used: set[str] = set()


def load_small(k: str) -> dict[str, np.ndarray] | None:
    global _small
    if k in _small_new:
        return _small_new[k]
    if _small is None:
        _small = _SmallFile()
    hit = _small.get(k)
    if hit is not None:
        _small_used.add(k)
    return hit


def store_small(k: str, arrays: dict[str, np.ndarray]) -> None:
    _small_new[k] = {f: np.asarray(arrays[f]) for f in _FIELDS}


def _write_small(entries: dict[str, dict[str, np.ndarray]]) -> None:
    keys = [k for k, a in entries.items() if all(np.ndim(a[f]) <= _MAX_NDIM for f in _FIELDS)]
    arrays: dict[str, np.ndarray] = {"keys": np.array(keys, dtype="U64")}
    for f in _FIELDS:
        parts = [np.asarray(entries[k][f], dtype=np.float64) for k in keys]
        arrays[f"{f}_data"] = np.concatenate([p.ravel() for p in parts]) if parts else np.zeros(0)
        shapes = np.zeros((len(keys), 1 + _MAX_NDIM), dtype=np.int64)
        for i, p in enumerate(parts):
            shapes[i, 0] = p.ndim
            shapes[i, 1 : 1 + p.ndim] = p.shape
        arrays[f"{f}_shape"] = shapes
    d = directory()
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f"small.{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, d / SMALL_FILE)


@atexit.register
def flush_small() -> None:
    """Merge what this process learned into small.npz (atomic replace; under pytest-xdist the
    last worker to exit wins, and a lost entry is only computed again).  This process's new
    entries, then the file's entries it used, then the file's others while fewer than SMALL_MAX."""
    if not _small_new:
        return
    on_disk = _SmallFile()
    merged = dict(_small_new)
    for k in [k for k in on_disk.index if k in _small_used] + list(on_disk.index):
        if len(merged) >= SMALL_MAX:
            break
        if k not in merged:
            hit = on_disk.get(k)
            if hit is not None:
                merged[k] = hit
    _small_new.clear()
    try:
        _write_small(merged)
    except (OSError, ValueError):
        pass
