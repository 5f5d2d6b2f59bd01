"""The case types of the suite and the helpers every family generates with.

``SuiteCase`` (a value/gradient case) and ``InvariantCase`` with its ``Evaluation`` are what
the families (``families``, ``edge_shape``) build and the runner grades; ``round_to`` rounds
exact data to a dtype once.  A module of its own so that the family groups and the modules
that only need the types import neither each other nor the whole catalogue.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from focalspec.spec.variant import Variant

SIG = Variant()  # sigmoid on logits, gamma 2, alpha 0.25
SMX = Variant(activation="softmax")


@dataclass(frozen=True, eq=False)  # identity equality: arrays inside, the id names a case
class SuiteCase:
    """One value/gradient case: a variant, exact inputs and targets, and where it comes from."""

    id: str
    family: str
    variant: Variant
    inputs: Any  # nested lists (decimal strings allowed) or a float64 array of exact values
    targets: Any
    spec_section: str
    compiled: bool = False  # part of the compiled-mode subset at this depth
    note: str = ""
    seed: int | None = None
    tags: tuple[str, ...] = ()
    narrow: bool = False  # runs in bfloat16 / float16 below --focal-depth deep (see families.NARROW_DTYPES)

    @property
    def class_targets(self) -> bool:
        return self.variant.activation == "softmax" and np.ndim(self.targets) == np.ndim(self.inputs) - 1

    @property
    def n_elements(self) -> int:
        return int(np.size(np.asarray(self.inputs, dtype=object)))

    def rounded(self, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) correctly rounded to ``dtype``, held in float64 (class indices as int64)."""
        return _rounded(self, dtype)


@lru_cache(maxsize=1024)
def _rounded(case: SuiteCase, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    x = round_to(case.inputs, dtype)
    if case.class_targets:
        t = np.asarray(case.targets, dtype=np.int64)
    else:
        t = round_to(case.targets, dtype)
    x.setflags(write=False)
    t.setflags(write=False)
    return x, t


def round_to(data: Any, dtype: str) -> np.ndarray:
    """Exact data -> the nearest dtype values (ties to even), as float64.

    float64 arrays convert in numpy (a single correctly rounded conversion for float32 and
    float16); bfloat16 and decimal strings go through ``catalogue.as_dtype`` (mpmath), which
    never rounds twice."""
    from focalspec.spec.catalogue import as_dtype

    if isinstance(data, np.ndarray) and data.dtype == np.float64:
        if dtype == "float64":
            return data.copy()
        if dtype in ("float32", "float16"):
            with np.errstate(over="ignore"):
                return data.astype(np.float32 if dtype == "float32" else np.float16).astype(np.float64)
    return as_dtype(data, dtype)


# ----------------------------------------------------------------------------- helpers


def seed_for(case_id: str, user_seed: int) -> int:
    """A stable seed per batch, from its name and the user's seed (5 digits: it goes into the id)."""
    return (zlib.crc32(case_id.encode()) + 7919 * user_seed) % 100_000


def log_uniform_logits(rng: np.random.Generator, shape: Any, lo: float = 1e-8, hi: float = 1e4) -> np.ndarray:
    """|x| log-uniform on [lo, hi], random sign: the whole range, tails included."""
    mags = 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), size=shape)
    return np.where(rng.random(size=shape) < 0.5, -mags, mags)


def two_tailed_probs(rng: np.random.Generator, shape: Any) -> np.ndarray:
    """p with both tails: u log-uniform on [1e-8, 1/2], then u or 1 - u (exact in float64)."""
    u = 10.0 ** rng.uniform(-8.0, np.log10(0.5), size=shape)
    return np.where(rng.random(size=shape) < 0.5, u, 1.0 - u)


def alpha_id(alpha: float | None) -> str:
    """An alpha as it appears in a case id (none, 0.25)."""
    return "none" if alpha is None else f"{alpha:g}"


@dataclass(frozen=True)
class Evaluation:
    """One call of the implementation that an invariant needs (inputs exact in the dtype)."""

    variant: Variant
    inputs: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True, eq=False)
class InvariantCase:
    """An identity between evaluations of the same implementation (``invariants.compare``)."""

    id: str
    kind: str
    variant: Variant  # the main variant (reported)
    params: dict[str, Any]
    n: int
    seed: int
    spec_section: str
    note: str
    family: str = "invariant"
    compiled: bool = False
    needs_exact_definition: bool = False  # fails by construction under a declared clip
    extra: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.id)
