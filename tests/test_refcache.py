"""The on-disk reference cache returns exactly what mpmath gave, and only for the same request
and the same reference code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from focalspec.conformance.suite import grading, refcache
from focalspec.spec.variant import Variant


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    grading._CACHE.clear()
    monkeypatch.setattr(refcache, "_small", None)
    monkeypatch.setattr(refcache, "_small_new", {})
    monkeypatch.setattr(refcache, "_small_used", set())
    return tmp_path


def _batch(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return np.round(rng.normal(0, 8, n), 4), rng.integers(0, 2, n).astype(np.float64)


def test_a_stored_reference_is_the_mpmath_one(cache_home: Path) -> None:
    x, t = _batch(refcache.MIN_ELEMENTS)
    v = Variant(gamma=2.0, alpha=0.25)
    fresh = grading.expected(v, x, t, "float64", "mp")
    files = list((cache_home / "focalspec" / "reference").rglob("*.npz"))
    assert len(files) == 1
    grading._CACHE.clear()
    again = grading.expected(v, x, t, "float64", "mp")  # from disk now
    for name in ("value", "grad", "grad_scale"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fresh, name))
    other = grading.expected(Variant(gamma=0.5, alpha=0.25), x, t, "float64", "mp")
    assert not np.array_equal(other.value, fresh.value)
    assert len(list((cache_home / "focalspec" / "reference").rglob("*.npz"))) == 2


def test_numpy_references_are_not_stored_and_small_ones_share_one_file(cache_home: Path) -> None:
    x, t = _batch(4 * refcache.MIN_ELEMENTS)
    grading.expected(Variant(), x, t, "float32", "np")
    assert not list(cache_home.rglob("*.npz"))
    small = [(v, *_batch(n)) for n in (1, 7, refcache.MIN_ELEMENTS - 1)
             for v in (Variant(gamma=0.5), Variant(gamma=0.5, reduction="sum"))]  # fmt: skip
    fresh = [grading.expected(v, xs, ts, "float32", "mp") for v, xs, ts in small]
    assert not list(cache_home.rglob("*.npz"))  # written once, at the process's exit
    refcache.flush_small()
    (only,) = cache_home.rglob("*.npz")
    assert only.name == refcache.SMALL_FILE
    grading._CACHE.clear()
    refcache._small = None  # as a new process: everything comes from small.npz
    for (v, xs, ts), f in zip(small, fresh, strict=True):
        again = grading.expected(v, xs, ts, "float32", "mp")
        assert np.shape(again.value) == (() if v.reduction == "sum" else xs.shape)
        for name in ("value", "grad", "grad_scale"):
            np.testing.assert_array_equal(getattr(again, name), getattr(f, name))
    assert not refcache._small_new  # nothing new to write


def test_the_key_covers_the_reference_code(cache_home: Path) -> None:
    assert refcache.directory().name == refcache._code_digest()
    assert len(refcache._code_digest()) == 16
    assert refcache.load("0" * 64) is None  # a miss, not an error


def test_the_small_file_keeps_what_runs_use_within_its_cap(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a cap every test run would add its own small requests to the file (it reached 7,025
    entries and 4 MB here, and a tenth of a quick gate run went to reading it)."""
    monkeypatch.setattr(refcache, "SMALL_MAX", 5)

    def new_process() -> None:
        refcache._small, refcache._small_new, refcache._small_used = None, {}, set()
        grading._CACHE.clear()

    def ask(gamma: float) -> None:
        x, t = _batch(3)
        grading.expected(Variant(gamma=gamma), x, t, "float32", "mp")

    for g in (0.1, 0.2, 0.3):
        ask(g)
    refcache.flush_small()
    new_process()
    for g in (1.1, 1.2, 1.3, 1.4):
        ask(g)
    refcache.flush_small()
    new_process()
    assert len(refcache._SmallFile().index) == 5  # its 4 new ones and one of the 3 older
    ask(1.4)  # a hit: used
    ask(2.0)  # new
    refcache.flush_small()
    kept = refcache._SmallFile()
    assert len(kept.index) == 5 and not refcache._small_new
    new_process()
    ask(1.4)
    ask(2.0)
    assert not refcache._small_new  # both came from the file
