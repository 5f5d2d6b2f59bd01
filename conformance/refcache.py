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

MIN_ELEMENTS = 256
SMALL_FILE = "small.npz"
_FIELDS = ("value", "grad", "scale")
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


# ----------------------------------------------------------------------------- the small requests

_small: dict[str, dict[str, np.ndarray]] | None = None
_small_new: dict[str, dict[str, np.ndarray]] = {}


def _read_small() -> dict[str, dict[str, np.ndarray]]:
    """small.npz: the keys, and per field one flat array with each entry's shape (a handful of
    zip members, not three per entry: reading 2,000 members cost a third of a second)."""
    try:
        with np.load(directory() / SMALL_FILE, allow_pickle=False) as z:
            keys = [str(k) for k in z["keys"]]
            fields = {f: (z[f"{f}_data"], z[f"{f}_shape"]) for f in _FIELDS}
    except (OSError, ValueError, KeyError):
        return {}
    out: dict[str, dict[str, np.ndarray]] = {k: {} for k in keys}
    for f, (data, shapes) in fields.items():
        if len(shapes) != len(keys):
            return {}
        at = 0
        for k, row in zip(keys, shapes, strict=True):
            shape = tuple(int(n) for n in row[1 : 1 + int(row[0])])
            size = int(np.prod(shape, dtype=np.int64))
            out[k][f] = data[at : at + size].reshape(shape)
            at += size
    return out


_MAX_NDIM = 4


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


def load_small(k: str) -> dict[str, np.ndarray] | None:
    global _small
    if _small is None:
        _small = _read_small()
    return _small.get(k)


def store_small(k: str, arrays: dict[str, np.ndarray]) -> None:
    if _small is None:
        load_small(k)
    assert _small is not None
    _small[k] = _small_new[k] = {f: np.asarray(arrays[f]) for f in _FIELDS}


@atexit.register
def flush_small() -> None:
    """Merge what this process learned into small.npz (atomic replace; under pytest-xdist the
    last worker to exit wins, and a lost entry is only computed again)."""
    if not _small_new:
        return
    merged = {**_read_small(), **_small_new}
    _small_new.clear()
    try:
        _write_small(merged)
    except (OSError, ValueError):
        pass
