"""The case families of the conformance suite, generated for a depth (quick | default | deep).

* golden -- every case of the catalogue (``spec.catalogue``), as data.
* random -- seeded batches over the whole logit range (|x| log-uniform on [1e-8, 1e4], both
  signs) and a gamma/alpha grid, plus soft targets, probabilities, softmax rows and reductions.
  Seeded numpy generators (PCG64); the seed, derived from the batch name and ``--focal-seed``,
  ends the id (``rand_sig_g2_a0.25_n256_s12345``) and the reproducer repeats the batch exactly.
* edge -- what the catalogue does not pin down element by element: saturation at every gamma
  in (0, 1) (gradients must stay finite), subnormal logits, probability tails, NaN and inf under
  reductions, empty inputs of rank 2, extreme softmax rows.
* shape -- the same definition on (), (N,), (N, C), (N, C, H, W) and softmax (C,), (N, C),
  (N, H, W, C) with every reduction.
* invariant -- identities the implementation must satisfy *with itself* (see ``invariants``).

Generated inputs are float64 arrays of exact binary values; every family is rounded to the
dtype under test (correctly, once) before it reaches an adapter or the reference.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from focalspec.spec.variant import SpecError, Variant, parse_variant_text

FAMILIES: tuple[str, ...] = ("golden", "random", "invariant", "edge", "shape", "contract")  # contract: contracts.py
# Below --focal-depth deep the 8/11-bit formats run the golden catalogue (which holds the
# saturation, overflow and underflow points of every dtype) and the first random batch; the
# generated edge, shape, invariant and remaining random families run in float64 and float32.
# The cost that decides it: op-by-op (eager) JAX compiles each primitive per (shape, dtype),
# about 2 s per new shape here, and those families bring ~20 shapes per dtype.
NARROW_DTYPES: tuple[str, ...] = ("bfloat16", "float16")
DEPTHS: tuple[str, ...] = ("quick", "default", "deep")

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
    narrow: bool = False  # runs in bfloat16 / float16 below --focal-depth deep (see NARROW_DTYPES)

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


def _a(alpha: float | None) -> str:
    return "none" if alpha is None else f"{alpha:g}"


# ----------------------------------------------------------------------------- golden


# Golden cases in the compiled-mode subset below --focal-depth deep: one compilation per
# (variant, shape, dtype) costs seconds (torch.compile: 6-15 s each on 2 cores), so compiled
# mode checks the hazards that compilers rewrite most -- saturation at gamma < 1 (where
# 0 * inf appears), a dominant softmax class (exp overflow, log of a sum next to 1) -- plus the
# first random batch (the whole logit range).  --focal-depth deep compiles every case.
COMPILED_GOLDEN: dict[str, frozenset[str]] = {
    "quick": frozenset({"sat_large_g0.5"}),
    "default": frozenset({"sat_large_g0.5", "softmax_dominant"}),
}


def golden(depth: str) -> list[SuiteCase]:
    from focalspec.spec.catalogue import all_cases

    out = []
    for c in all_cases():
        compiled = depth == "deep" or c.id in COMPILED_GOLDEN[depth]
        out.append(
            SuiteCase(
                c.id,
                "golden",
                c.variant,
                c.inputs,
                c.targets,
                c.spec_section or "",
                compiled,
                c.note,
                tags=tuple(c.tags),
                narrow=True,
            )
        )
    return out


# ----------------------------------------------------------------------------- random


@dataclass(frozen=True)
class Sizes:
    n: int  # elements per sigmoid batch
    rows: int  # softmax rows per batch
    inv: int  # elements per invariant batch
    gammas: tuple[float, ...]
    alphas: tuple[float | None, ...]
    soft: tuple[tuple[float, float | None], ...]
    probs: tuple[tuple[float, float | None], ...]
    softmax: tuple[tuple[float, float | None], ...]


SIZES: dict[str, Sizes] = {
    "quick": Sizes(64, 8, 32, (0.5, 2.0), (0.25,), ((2.0, 0.25),), ((2.0, 0.25),), ((2.0, 0.25),)),
    "default": Sizes(
        256,
        32,
        128,
        (0.0, 0.5, 1.0, 2.0, 5.0),
        (None, 0.25, 0.75),
        ((0.5, None), (2.0, 0.25)),
        ((0.0, None), (0.5, 0.25), (2.0, 0.25)),
        ((0.0, None), (0.5, 0.25), (2.0, 0.25)),
    ),
    "deep": Sizes(
        4096,
        256,
        1024,
        (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0),
        (None, 0.0, 0.25, 0.5, 0.75, 1.0),
        tuple((g, a) for g in (0.0, 0.5, 2.0, 5.0) for a in (None, 0.25)),
        tuple((g, a) for g in (0.0, 0.5, 1.0, 2.0, 5.0) for a in (None, 0.25)),
        tuple((g, a) for g in (0.0, 0.5, 1.0, 2.0, 5.0) for a in (None, 0.25, 0.75)),
    ),
}


def random_batches(depth: str, user_seed: int = 0) -> list[SuiteCase]:
    s = SIZES[depth]
    out: list[SuiteCase] = []
    first = True

    def add(name: str, v: Variant, make: Any, section: str, note: str) -> None:
        nonlocal first
        seed = seed_for(name, user_seed)
        x, t = make(np.random.default_rng(seed))
        out.append(SuiteCase(f"{name}_s{seed}", "random", v, x, t, section, first or depth == "deep",
                             f"{note}; numpy PCG64 seed {seed}", seed, narrow=first))  # fmt: skip
        first = False

    def hard(n: int) -> Any:
        return lambda rng: (log_uniform_logits(rng, n), rng.integers(0, 2, size=n).astype(np.float64))

    grid = [(2.0, 0.25)] + [(g, a) for g in s.gammas for a in s.alphas if (g, a) != (2.0, 0.25)]
    for g, a in grid:
        add(
            f"rand_sig_g{g:g}_a{_a(a)}_n{s.n}",
            SIG.with_(gamma=g, alpha=a),
            hard(s.n),
            "§1",
            f"{s.n} logits, |x| log-uniform on [1e-8, 1e4], random sign, hard targets",
        )
    for g, a in s.soft:
        add(
            f"rand_soft_g{g:g}_a{_a(a)}_n{s.n}",
            SIG.with_(gamma=g, alpha=a),
            lambda rng: (log_uniform_logits(rng, s.n), rng.random(s.n)),
            "§4",
            f"{s.n} logits over the whole range with soft targets uniform on [0, 1)",
        )
    for g, a in s.probs:
        add(
            f"rand_probs_g{g:g}_a{_a(a)}_n{s.n}",
            SIG.with_(input_kind="probs", gamma=g, alpha=a),
            lambda rng: (two_tailed_probs(rng, s.n), rng.integers(0, 2, size=s.n).astype(np.float64)),
            "§2",
            f"{s.n} probabilities with both tails (u or 1 - u, u log-uniform on [1e-8, 1/2]), hard targets",
        )
    for c in (5,) if depth != "deep" else (3, 10, 100):
        for g, a in s.softmax:
            add(
                f"rand_softmax_c{c}_g{g:g}_a{_a(a)}_r{s.rows}",
                SMX.with_(gamma=g, alpha=a),
                lambda rng, c=c: (log_uniform_logits(rng, (s.rows, c), hi=1e3), rng.integers(0, c, size=s.rows)),
                "§8",
                f"{s.rows} rows of {c} logits, |z| log-uniform on [1e-8, 1e3], random classes",
            )
    for red in ("sum", "mean", "normalized"):
        add(
            f"rand_sig_{red}_g2_a0.25_n{s.n}",
            SIG.with_(reduction=red),
            hard(s.n),
            "§7",
            f"{s.n} logits over the whole range, reduction {red}",
        )
    add(
        f"rand_softmax_mean_c5_g2_a0.25_r{s.rows}",
        SMX.with_(reduction="mean"),
        lambda rng: (log_uniform_logits(rng, (s.rows, 5), hi=1e3), rng.integers(0, 5, size=s.rows)),
        "§7",
        "softmax rows, mean over rows",
    )
    return out


# ----------------------------------------------------------------------------- edge


def edge_cases(depth: str) -> list[SuiteCase]:
    out: list[SuiteCase] = []
    deep = depth == "deep"

    def add(cid: str, v: Variant, x: Any, t: Any, section: str, note: str) -> None:
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t) if v.activation == "softmax" and np.ndim(t) == x.ndim - 1 else np.asarray(t, dtype=np.float64)
        out.append(SuiteCase(cid, "edge", v, x, t, section, deep, note))

    sat = [17.0, 20.0, 30.0, 37.0, 40.0, 50.0, 88.0, 89.0, 100.0, 104.0, 700.0, 710.0, 1e3, 1e4]
    xs = sat + [-v for v in sat]
    right = [1.0] * len(sat) + [0.0] * len(sat)
    gammas = (0.25, 0.5, 0.75) if depth != "quick" else (0.5,)
    for g in gammas:
        add(
            f"edge_sat_right_g{g:g}",
            SIG.with_(gamma=g),
            xs,
            right,
            "§1",
            "saturated correct predictions, 0 < gamma < 1: (1-p_t)^(gamma-1) is unbounded, the gradient is "
            "finite (naive pow gives 0 * inf = NaN)",
        )
        add(
            f"edge_sat_wrong_g{g:g}",
            SIG.with_(gamma=g),
            xs,
            [1.0 - r for r in right],
            "§1",
            "saturated wrong predictions, 0 < gamma < 1: loss about alpha_t |x|",
        )
    for g in (0.0, 0.5):  # the reduced form: one NaN element makes the whole gradient step NaN
        add(
            f"edge_sat_right_sum_g{g:g}",
            SIG.with_(gamma=g, reduction="sum"),
            [16.640625, 20.0, 40.0, -16.640625, -20.0, -40.0, 1.0, -1.0],
            [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            "§8",
            "saturated correct predictions under reduction sum (an implementation's reduced entry point, as "
            "SAM3's triton_sigmoid_focal_loss_reduce, may have its own backward): every gradient finite",
        )
    add(
        "edge_sat_soft_g0.5",
        SIG.with_(gamma=0.5),
        xs,
        [0.999] * len(xs),
        "§4",
        "saturation with a soft target 0.999: 1 - p_t stays near 0.001 or 0.999, never cancels",
    )
    tiny = [5e-324, -5e-324, 1e-310, -1e-310, 1e-40, -1e-40, 1e-20, -1e-20]
    add(
        "edge_subnormal_logits",
        SIG,
        tiny,
        [1.0, 0.0] * 4,
        "§1",
        "subnormal and tiny logits: p = 1/2 to within x/4; rounds to 0 in narrow dtypes",
    )
    add(
        "edge_inf_sum_g2",
        SIG.with_(reduction="sum"),
        [np.inf, 1.0, -np.inf, -2.0],
        [0.0, 1.0, 0.0, 1.0],
        "§1.4",
        "an infinite logit on the hard side makes the sum +inf; the easy side contributes 0; gradients "
        "take their limits",
    )
    add(
        "edge_inf_easy_mean_g0.5",
        SIG.with_(gamma=0.5, reduction="mean"),
        [np.inf, -np.inf, 0.5],
        [1.0, 0.0, 1.0],
        "§1.4",
        "infinite logits on the easy side contribute exactly 0 to a mean (gamma 0.5)",
    )
    add(
        "edge_nan_mean",
        SIG.with_(reduction="mean"),
        [np.nan, 0.5, 2.0],
        [1.0, 0.0, 1.0],
        "§1.4",
        "a NaN element makes the mean NaN and its own gradient NaN",
    )
    add(
        "edge_nan_inf_none_g0.5",
        SIG.with_(gamma=0.5),
        [np.nan, np.inf, -np.inf, np.nan],
        [1.0, 1.0, 0.0, 0.0],
        "§1.4",
        "NaN stays in its own element; infinite easy elements are 0 with gradient 0",
    )
    for red in ("none", "sum", "mean"):
        add(
            f"edge_empty_2d_{red}",
            SIG.with_(reduction=red),
            np.zeros((0, 3)),
            np.zeros((0, 3)),
            "§7",
            f"empty input of shape (0, 3), reduction {red} (mean is NaN, 0/0)",
        )
        add(
            f"edge_empty_softmax_{red}",
            SMX.with_(reduction=red),
            np.zeros((0, 4)),
            np.zeros((0,), dtype=np.int64),
            "§7",
            f"softmax with no rows, shape (0, 4), reduction {red}",
        )
    ptail = [1e-300, 1e-40, 1e-10, 0.5, 1.0 - 1e-10, 1.0 - 2.0**-30]
    for g in (0.5, 2.0):
        add(
            f"edge_probs_tails_g{g:g}",
            SIG.with_(input_kind="probs", gamma=g),
            ptail * 2,
            [1.0] * len(ptail) + [0.0] * len(ptail),
            "§2",
            "probability tails: p underflowing narrow dtypes, p next to 1 (1 - p exact in float64 only)",
        )
    add(
        "edge_softmax_spread",
        SMX,
        [[1e4, 0.0, -1e4], [-1e4, 0.0, 1e4], [30.0, 30.0, -30.0]],
        [0, 0, 1],
        "§8",
        "softmax rows spread over 2e4: exp overflows unless shifted; p underflows to 0 on the far classes",
    )
    add(
        "edge_softmax_sat_g0.5",
        SMX.with_(gamma=0.5),
        [[40.0, 0.0, 0.0], [200.0, 0.0, -5.0]],
        [0, 0],
        "§8",
        "softmax saturated on the right class, gamma 0.5: (1 - p)^(gamma-1) unbounded, gradient finite",
    )
    return out


# ----------------------------------------------------------------------------- shapes


def shape_cases(depth: str) -> list[SuiteCase]:
    out: list[SuiteCase] = []
    rng = np.random.default_rng(20240611)  # fixed: shapes test layout, not values

    def sig(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        x = np.round(rng.uniform(-6, 6, size=shape) * 64) / 64  # exact in every dtype
        return np.asarray(x, dtype=np.float64), rng.integers(0, 2, size=shape).astype(np.float64)

    layouts = {"scalar": (), "n": (7,), "nc": (4, 3), "nchw": (2, 3, 4, 5)}
    for name, shape in layouts.items():
        x, t = sig(shape)
        reds = ("none", "sum", "mean", "normalized") if name in ("nchw", "scalar") else ("none", "mean")
        for red in reds:
            out.append(
                SuiteCase(
                    f"shape_sig_{name}_{red}",
                    "shape",
                    SIG.with_(reduction=red),
                    x,
                    t,
                    "§7",
                    depth == "deep",
                    f"sigmoid on shape {shape}, reduction {red}",
                )
            )
    for name, shape in {"c": (5,), "nc": (6, 4), "nhwc": (2, 3, 3, 4)}.items():
        x = np.round(rng.uniform(-6, 6, size=shape) * 64) / 64
        t = rng.integers(0, shape[-1], size=shape[:-1])
        for red in ("none", "mean") if name != "c" else ("none",):
            out.append(
                SuiteCase(
                    f"shape_softmax_{name}_{red}",
                    "shape",
                    SMX.with_(reduction=red),
                    np.asarray(x, dtype=np.float64),
                    np.asarray(t, dtype=np.int64),
                    "§8",
                    depth == "deep",
                    f"softmax on shape {shape} (class axis last), reduction {red}",
                )
            )
    return out


# ----------------------------------------------------------------------------- invariants


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


def invariant_cases(depth: str, user_seed: int = 0) -> list[InvariantCase]:
    n = SIZES[depth].inv
    deep = depth == "deep"
    out: list[InvariantCase] = []

    def add(cid: str, kind: str, v: Variant, params: dict[str, Any], section: str, note: str, exact: bool) -> None:
        out.append(
            InvariantCase(
                cid,
                kind,
                v,
                params,
                n,
                seed_for(cid, user_seed),
                section,
                note,
                compiled=deep,
                needs_exact_definition=exact,
            )
        )

    quick = depth == "quick"
    for g, a in ((2.0, 0.25),) if quick else ((2.0, 0.25), (0.5, None), (0.0, 0.75)):
        add(
            f"inv_symmetry_g{g:g}_a{_a(a)}",
            "symmetry",
            SIG.with_(gamma=g, alpha=a),
            {"gamma": g, "alpha": a},
            "§3",
            "FL(x, y=1, alpha) = FL(-x, y=0, 1-alpha); the gradients are opposite",
            True,
        )
    for g, a in ((2.0, 0.25),) if quick else ((2.0, 0.25), (0.5, 0.75), (2.0, 0.0), (2.0, 1.0)):
        add(
            f"inv_alpha_g{g:g}_a{_a(a)}",
            "alpha",
            SIG.with_(gamma=g, alpha=a),
            {"gamma": g, "alpha": a},
            "§3",
            "FL with alpha = alpha_t * FL with alpha disabled (alpha_t = alpha for y=1, 1-alpha for y=0)",
            False,
        )
    for a in (None,) if quick else (None, 0.25):
        add(
            f"inv_gamma0_bce_a{_a(a)}",
            "gamma0_bce",
            SIG.with_(gamma=0.0, alpha=a),
            {"alpha": a},
            "§1",
            "gamma = 0 is alpha-balanced BCE: FL(x,0)/(1-alpha) - FL(x,1)/alpha = x (softplus(x) - softplus(-x))",
            True,
        )
    add(
        "inv_gamma0_soft_linear",
        "gamma0_linear",
        SIG.with_(gamma=0.0, alpha=None),
        {},
        "§4",
        "gamma = 0, no alpha: BCE is linear in the target, FL(x,t) = t FL(x,1) + (1-t) FL(x,0)",
        True,
    )
    for g, a in ((2.0, 0.25),) if quick else ((2.0, 0.25), (0.5, None)):
        add(
            f"inv_softmax_c2_g{g:g}_a{_a(a)}",
            "softmax_c2",
            SMX.with_(gamma=g, alpha=a),
            {"gamma": g, "alpha": a},
            "§8",
            "softmax with C = 2 on rows (0, x) equals the sigmoid loss of x (alpha for class 1, 1-alpha "
            "as the sigmoid alpha of class 0)",
            True,
        )
    for a in (0.25,) if quick else (0.25, None):
        add(
            f"inv_monotone_gamma_a{_a(a)}",
            "monotone",
            SIG.with_(alpha=a),
            {"alpha": a, "gammas": [0, 0.5, 1, 2, 5]},
            "§1",
            "for fixed p_t < 1 the loss does not increase with gamma (values only)",
            False,
        )
    for red in ("sum", "mean", "normalized"):
        add(
            f"inv_reduction_{red}_g2",
            "reduction",
            SIG.with_(reduction=red),
            {"reduction": red},
            "§7",
            f"reduction {red} equals the exact {red} of the implementation's own per-element losses; its "
            "gradient is theirs scaled",
            False,
        )
    add(
        "inv_normalized_nopos_g2",
        "normalized_nopos",
        SIG.with_(reduction="normalized"),
        {},
        "§7",
        "normalized with zero positives divides by max(1, 0) = 1: equals the implementation's own sum",
        False,
    )
    return out


def build(depth: str, families: tuple[str, ...], user_seed: int = 0) -> tuple[list[SuiteCase], list[InvariantCase]]:
    """(value/grad cases, invariant cases) of the selected families at this depth."""
    cases: list[SuiteCase] = []
    if "golden" in families:
        cases += golden(depth)
    if "random" in families:
        cases += random_batches(depth, user_seed)
    if "edge" in families:
        cases += edge_cases(depth)
    if "shape" in families:
        cases += shape_cases(depth)
    invs = invariant_cases(depth, user_seed) if "invariant" in families else []
    ids: set[str] = set()
    for c in [*cases, *invs]:
        if c.id in ids:
            raise AssertionError(f"duplicate suite case id {c.id}")
        ids.add(c.id)
    return cases, invs


def iter_ids(depth: str) -> Iterator[str]:
    cases, invs = build(depth, FAMILIES)
    for c in cases:
        yield c.id
    for i in invs:
        yield i.id


# ----------------------------------------------------------------------------- one ad-hoc element

POINT_ID = "point"


def parse_point(text: str) -> tuple[str, str]:
    """(x, t) of ``--point X:T`` as decimal text (16.640625, 1e-30, inf): rounded to each dtype
    once, from the decimal, like the catalogue's inputs."""
    xs, sep, ts = (part.strip() for part in str(text).partition(":"))
    try:
        if not sep:
            raise ValueError
        float(xs), float(ts)
        return xs, ts
    except ValueError:
        raise SpecError(f"--point: {text!r} is not X:T (an input and its target, e.g. 16.640625:1)") from None


def point_case(point: str, variant: str | None) -> SuiteCase:
    """The one-element case of ``--point X:T --variant K=V,...``: what a derived finding's
    reproducer grades (value and gradient, at the input rounded to each dtype)."""
    v = parse_variant_text(variant or "")
    if v.activation != "sigmoid":
        raise SpecError("--point grades one sigmoid element; softmax rows are not points")
    x, t = parse_point(point)
    if not 0.0 <= float(t) <= 1.0:
        raise SpecError(f"--point: the target must be in [0, 1], got {t}")
    return SuiteCase(POINT_ID, "point", v, [x], [t], "§1, §10.7", compiled=True, narrow=True,
                     note=f"--point {point}")  # fmt: skip
