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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from focalspec.conformance.suite.cases import (
    SIG,
    SMX,
    InvariantCase,
    SuiteCase,
    alpha_id,
    log_uniform_logits,
    seed_for,
    two_tailed_probs,
)
from focalspec.conformance.suite.edge_shape import edge_cases, shape_cases
from focalspec.spec.variant import SpecError, Variant, parse_variant_text

FAMILIES: tuple[str, ...] = ("golden", "random", "invariant", "edge", "shape", "contract")  # contract: contracts.py
# Below --focal-depth deep the 8/11-bit formats run the golden catalogue (which holds the
# saturation, overflow and underflow points of every dtype) and the first random batch; the
# generated edge, shape, invariant and remaining random families run in float64 and float32.
# The cost that decides it: op-by-op (eager) JAX compiles each primitive per (shape, dtype),
# about 2 s per new shape here, and those families bring ~20 shapes per dtype.
NARROW_DTYPES: tuple[str, ...] = ("bfloat16", "float16")
DEPTHS: tuple[str, ...] = ("quick", "default", "deep")

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
            f"rand_sig_g{g:g}_a{alpha_id(a)}_n{s.n}",
            SIG.with_(gamma=g, alpha=a),
            hard(s.n),
            "§1",
            f"{s.n} logits, |x| log-uniform on [1e-8, 1e4], random sign, hard targets",
        )
    for g, a in s.soft:
        add(
            f"rand_soft_g{g:g}_a{alpha_id(a)}_n{s.n}",
            SIG.with_(gamma=g, alpha=a),
            lambda rng: (log_uniform_logits(rng, s.n), rng.random(s.n)),
            "§4",
            f"{s.n} logits over the whole range with soft targets uniform on [0, 1)",
        )
    for g, a in s.probs:
        add(
            f"rand_probs_g{g:g}_a{alpha_id(a)}_n{s.n}",
            SIG.with_(input_kind="probs", gamma=g, alpha=a),
            lambda rng: (two_tailed_probs(rng, s.n), rng.integers(0, 2, size=s.n).astype(np.float64)),
            "§2",
            f"{s.n} probabilities with both tails (u or 1 - u, u log-uniform on [1e-8, 1/2]), hard targets",
        )
    for c in (5,) if depth != "deep" else (3, 10, 100):
        for g, a in s.softmax:
            add(
                f"rand_softmax_c{c}_g{g:g}_a{alpha_id(a)}_r{s.rows}",
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


# ----------------------------------------------------------------------------- invariants


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
            f"inv_symmetry_g{g:g}_a{alpha_id(a)}",
            "symmetry",
            SIG.with_(gamma=g, alpha=a),
            {"gamma": g, "alpha": a},
            "§3",
            "FL(x, y=1, alpha) = FL(-x, y=0, 1-alpha); the gradients are opposite",
            True,
        )
    for g, a in ((2.0, 0.25),) if quick else ((2.0, 0.25), (0.5, 0.75), (2.0, 0.0), (2.0, 1.0)):
        add(
            f"inv_alpha_g{g:g}_a{alpha_id(a)}",
            "alpha",
            SIG.with_(gamma=g, alpha=a),
            {"gamma": g, "alpha": a},
            "§3",
            "FL with alpha = alpha_t * FL with alpha disabled (alpha_t = alpha for y=1, 1-alpha for y=0)",
            False,
        )
    for a in (None,) if quick else (None, 0.25):
        add(
            f"inv_gamma0_bce_a{alpha_id(a)}",
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
            f"inv_softmax_c2_g{g:g}_a{alpha_id(a)}",
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
            f"inv_monotone_gamma_a{alpha_id(a)}",
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
