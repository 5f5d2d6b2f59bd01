"""The case catalogue: every input the specification pins down, as data.

The catalogue is the one list that the golden file, the conformance suite, the pytest ids
and the report all iterate over.  It holds the worked examples of the seed articles (``seed_cases``,
each with the number its article printed, so that ``focalspec golden --errata`` can check
them), the numerically hard points of each dtype (saturation, exp overflow, underflow),
the parameter grids, every soft-target convention, probabilities with clipping, label
smoothing, softmax (C = 2 up to C = 1000), the reductions and empty inputs.

Inputs are exact: strings are decimals ("0.95" means 95/100), floats are binary values
(the seeded softmax logits are float32-representable), and non-finite values are the
strings "inf", "-inf", "nan" so that the golden file stays strict JSON.

Cases with ``extra["quantity"]`` certify a derived number instead of the loss itself: the
ratio of two losses (``numerator`` / ``denominator``, each a variant dict or "self") on the
same inputs -- the ratios and modulating factors the articles print.  ``extra["printed_expression"]``
is the arithmetic the article printed next to its number (``^`` power, ``ln`` natural log),
which the errata check evaluates too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from focalspec.spec.case import SECTIONS, TAGS, Case
from focalspec.spec.rounding import FORMATS, round_mpf
from focalspec.spec.seed_cases import FL, seed_cases
from focalspec.spec.variant import SOFT_TARGETS, SpecError, Variant

LOGITS = Variant()  # sigmoid on logits, gamma 2, alpha 0.25


# ----------------------------------------------------------------------------- dtype edges


def neighbours(th: Any, dtype: str) -> tuple[float, float]:
    """The dtype values just below and at-or-above the (positive, normal) real ``th``."""
    import mpmath

    p = FORMATS[dtype].precision
    with mpmath.workprec(256):
        th = mpmath.mpf(th)
        e = int(mpmath.floor(mpmath.log(th, 2)))
        q = mpmath.ldexp(1, e - (p - 1))
        k = int(mpmath.ceil(th / q))
        hi = mpmath.ldexp(k, e - (p - 1))
        lo = mpmath.ldexp(k - 1, e - (p - 1))
    return float(lo), float(hi)


SATURATION_DEFINITIONS = {
    "naive": "1 + exp(-x) rounds to 1 in the dtype: x >= p ln 2 (p significand bits)",
    "rounded": "the correctly rounded sigmoid(x) is 1: x >= ln(2^(p+1) - 1)",
}


def saturation_points(dtype: str) -> dict[str, Any]:
    """Where sigmoid stops resolving 1 - p in the dtype.

    naive: 1 + exp(-x) evaluated in the dtype rounds to 1 once exp(-x) <= 2**-p (the tie goes to
    the even 1.0), i.e. x >= p ln 2 -- float32 16.64, float64 36.74.  rounded: the correctly
    rounded sigmoid(x) is 1 once sigmoid(-x) <= 2**-(p+1), i.e. x >= ln(2**(p+1) - 1).
    """
    import mpmath

    p = FORMATS[dtype].precision
    with mpmath.workprec(256):
        return {"naive": p * mpmath.log(2), "rounded": mpmath.log(mpmath.mpf(2) ** (p + 1) - 1)}


def mpmath_str(v: Any, digits: int = 20) -> str:
    import mpmath

    return mpmath.nstr(v, digits)


def _ln_max(dtype: str) -> Any:
    """ln of the largest finite value: where exp(x) overflows the dtype."""
    import mpmath

    with mpmath.workprec(256):
        return mpmath.log(mpmath.mpf(FORMATS[dtype].max_finite))


def _edges() -> Iterator[Case]:
    sec = SECTIONS["sigmoid"]
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        for kind, th in saturation_points(dtype).items():
            lo, hi = neighbours(th, dtype)
            xs = [lo, hi, -lo, -hi]
            yield Case(
                f"sat_{kind}_{dtype}", LOGITS, xs * 2, [1] * 4 + [0] * 4, ("saturation",),
                f"{dtype} {kind} saturation point {float(th):.6g}: the neighbours {lo!r} and {hi!r} of the threshold, "
                "both signs, y = 1 and y = 0 (1 - p_t from 1 - sigmoid(x) loses everything past it).",
                sec, extra={"threshold": mpmath_str(th), "dtype": dtype, "definition": SATURATION_DEFINITIONS[kind]},
            )  # fmt: skip
    for g in (0.0, 0.5, 2.0, 5.0):
        xs = [20.0, -20.0, 40.0, -40.0, 100.0, -100.0]
        tags = ("saturation", "underflow") + (("nan-hazard",) if 0 < g < 1 else ())
        yield Case(
            f"sat_large_g{g:g}", LOGITS.with_(gamma=g), xs * 2, [1] * 6 + [0] * 6, tags,
            f"large logits beyond every saturation point, gamma = {g:g}: the easy side needs 1 - p_t = sigmoid(-|x|) "
            "and log p_t = -softplus(-|x|) without forming 1 - p.",
            sec,
        )  # fmt: skip
    for dtype in ("float32", "float64"):
        bound = float(_ln_max(dtype))
        lo, hi = neighbours(_ln_max(dtype), dtype)
        xs = [lo, hi, -lo, -hi]
        for g in (0.0, 2.0):
            yield Case(
                f"overflow_{dtype}_g{g:g}", LOGITS.with_(gamma=g, alpha=None if g == 0 else 0.25), xs * 2,
                [1] * 4 + [0] * 4, ("overflow", "saturation"),
                f"exp overflow of {dtype}: ln(max) = {bound!r}; neighbours {lo!r}, {hi!r}; exp(|x|) overflows in a "
                "naive softplus or sigmoid, the losses are finite (about |x| on the hard side).",
                sec,
            )  # fmt: skip
    yield Case(
        "huge_1e4", LOGITS, [1e4, -1e4, 1e4, -1e4], [1, 1, 0, 0], ("overflow", "saturation", "underflow"),
        "|x| = 1e4: exp(1e4) overflows every dtype; losses are 0-ish (underflow) or 0.25/0.75 * 1e4.", sec,
    )  # fmt: skip
    yield Case(
        "huge_1e4_two_term", LOGITS.with_(soft_target="two_term"), [1e4, -1e4, 1e4, -1e4], [1, 1, 0, 0],
        ("overflow", "saturation", "soft-convention"),
        "|x| = 1e4 under the kornia two-term form (hard targets: equal to canonical).",
        SECTIONS["soft_conventions"],
    )  # fmt: skip
    for g in (0.0, 0.5, 2.0):
        yield Case(
            f"inf_logits_g{g:g}", LOGITS.with_(gamma=g), ["inf", "-inf", "inf", "-inf"], [1, 1, 0, 0],
            ("infinite", "nan-hazard"),
            f"infinite logits take the mathematical limits (gamma = {g:g}): 0 on the easy side, +inf on the hard "
            "side; naive code forms 0 * inf = NaN.",
            SECTIONS["limits"],
        )  # fmt: skip
    yield Case(
        "nan_logit", LOGITS, ["nan", "1.5", "nan"], [1, 0, 0], ("infinite",),
        "NaN propagates to its own element only (reduction none).", SECTIONS["limits"],
    )  # fmt: skip
    yield Case(
        "nan_logit_sum", LOGITS.with_(reduction="sum"), ["nan", "1.5"], [1, 0], ("infinite", "reduction"),
        "a NaN element makes the sum NaN.", SECTIONS["reduction"],
    )  # fmt: skip
    xs = [-30.0, -3.0, 0.5, 7.0, 40.0]
    yield Case(
        "symmetry_y1_a0.25", LOGITS, xs, [1] * 5, ("invariant",),
        "FL(x, y=1, alpha) = FL(-x, y=0, 1-alpha): twin of symmetry_y0_a0.75 (gradients opposite).",
        SECTIONS["symmetry"], extra={"twin": "symmetry_y0_a0.75"},
    )  # fmt: skip
    yield Case(
        "symmetry_y0_a0.75", LOGITS.with_(alpha=0.75), [-x for x in xs], [0] * 5, ("invariant",),
        "mirror image of symmetry_y1_a0.25.", SECTIONS["symmetry"], extra={"twin": "symmetry_y1_a0.25"},
    )  # fmt: skip
    yield Case(
        "small_logits", LOGITS, [0.0, 1e-8, -1e-8, 1e-300, -1e-300, 0.0], [1, 1, 1, 0, 0, 0], ("invariant",),
        "logits at and next to 0: p = 1/2 +- x/4, loss = alpha_t 2^-gamma ln 2 to first order.", sec,
    )  # fmt: skip
    for y, xs in ((1, [4.0, 8.0, 30.0, 40.0, 240.0, 260.0]), (0, [-4.0, -8.0, -30.0, -40.0, -240.0, -260.0])):
        yield Case(
            f"underflow_y{y}_g2", LOGITS, xs, [y] * 6, ("underflow",),
            "easy examples whose loss ~ alpha_t e^(-3|x|) falls to float16 subnormal (|x| = 4), float16 zero (8), "
            "float32 subnormal (30), float32 zero (40), float64 subnormal (240) and float64 zero (260).",
            SECTIONS["limits"],
        )  # fmt: skip
    yield Case(
        "underflow_y1_g5", LOGITS.with_(gamma=5.0), [10.0, 15.0, 20.0, 100.0], [1] * 4, ("underflow",),
        "gamma = 5: the loss ~ alpha e^(-6x) underflows float32 by x = 20.", SECTIONS["limits"],
    )  # fmt: skip


def _grids() -> Iterator[Case]:
    xs = [0.0, 1e-8, -1e-8, 1.0, -1.0, 10.0, -10.0]
    for g in (0.0, 0.5, 1.0, 1.5, 2.0, 5.0):
        for a in (None, 0.0, 0.25, 0.5, 1.0):
            tags = ("gamma-grid", "alpha-grid") + (("nan-hazard",) if 0 < g < 1 else ())
            yield Case(
                f"grid_g{g:g}_a{'none' if a is None else f'{a:g}'}", LOGITS.with_(gamma=g, alpha=a), xs * 2,
                [1] * 7 + [0] * 7, tags,
                f"gamma = {g:g}, alpha = {a}: logits 0, +-1e-8, +-1, +-10 with y = 1 and y = 0.",
                SECTIONS["alpha_gamma"],
            )  # fmt: skip


def _soft() -> Iterator[Case]:
    approx = {"canonical": "0.650", "geometric": "0.936", "margin": "0.727", "two_term": "1.156"}
    for conv in SOFT_TARGETS:
        v = LOGITS.with_(soft_target=conv)
        sec = SECTIONS["soft"] if conv == "canonical" else SECTIONS["soft_conventions"]
        tags = ("soft-target",) + (("soft-convention",) if conv != "canonical" else ())
        yield Case(
            f"soft_{conv}_grid", v, [-2.0, 0.0, 2.0] * 3, ["0.1"] * 3 + ["0.5"] * 3 + ["0.9"] * 3, tags,
            f"soft targets 0.1 / 0.5 / 0.9 under the {conv} convention (gamma 2, alpha 0.25).", sec,
        )  # fmt: skip
        yield Case(
            f"soft_{conv}_x2_t0.3", v.with_(alpha=None), 2.0, "0.3", tags,
            f"x = 2, t = 0.3, gamma = 2, no alpha under the {conv} convention; the four conventions disagree "
            f"(canonical 0.650, geometric 0.936, margin 0.727, two_term 1.156); this one ~ {approx[conv]}.",
            sec, extra={"approx": approx[conv]},
        )  # fmt: skip
        yield Case(
            f"soft_{conv}_inf", v, ["inf", "-inf", "inf", "-inf", "inf", "-inf"], ["0.3", "0.3", "0.5", "0.5",
                                                                                   "1", "0"],
            (*tags, "infinite"),
            f"infinite logits with soft targets under the {conv} convention (limits of SPEC.md).",
            SECTIONS["limits"],
        )  # fmt: skip


def _probs() -> Iterator[Case]:
    ps = ["0", "1e-7", "0.5", "0.9999999", "1"]
    for g in (0.0, 0.5, 2.0):
        yield Case(
            f"probs_edges_g{g:g}", FL.with_(gamma=g), ps * 2, [1] * 5 + [0] * 5, ("probs", "nan-hazard"),
            f"probability inputs at 0, 1e-7, 1/2, 1 - 1e-7, 1 (gamma = {g:g}): -ln 0 = inf on the hard side, "
            "0 * ln 0 = 0 on the easy side.",
            SECTIONS["probs"],
        )  # fmt: skip
    for g in (0.0, 2.0):
        yield Case(
            f"clip_probs_edges_g{g:g}", FL.with_(gamma=g, clip_eps=1e-7), ps * 2, [1] * 5 + [0] * 5,
            ("probs", "clip"),
            "declared clip convention (Keras): p clipped to [1e-7, 1 - 1e-7] before the loss; gradient 0 outside.",
            SECTIONS["clip"],
        )  # fmt: skip
    f32_eps, f32_upper = float(np.float32(1e-7)), float(np.float32(1 - 1e-7))
    yield Case(
        "clip_probs_edges_f32bounds", FL.with_(clip_eps=f32_eps, clip_upper=f32_upper), ps * 2, [1] * 5 + [0] * 5,
        ("probs", "clip"),
        f"the clip convention with the bounds float32 forms: eps = float32(1e-7) = {f32_eps!r}, "
        f"1 - eps rounded to float32 = {f32_upper!r} = 1 - 2^-23.",
        SECTIONS["clip"], extra={"clip_bounds_dtype": "float32"},
    )  # fmt: skip
    yield Case(
        "clip_logits", LOGITS.with_(clip_eps=1e-7), [-20.0, -16.0, 0.0, 16.0, 20.0] * 2, [1] * 5 + [0] * 5,
        ("clip", "saturation"),
        "clip convention on logits: sigmoid, then clip to [1e-7, 1 - 1e-7] -- the loss caps at -ln 1e-7.",
        SECTIONS["clip"],
    )  # fmt: skip
    yield Case(
        "probs_soft", FL, ["0.2", "0.7", "0.5"], ["0.3", "0.9", "0.5"], ("probs", "soft-target"),
        "soft targets on probabilities (canonical).", SECTIONS["probs"],
    )  # fmt: skip


def _label_smoothing() -> Iterator[Case]:
    sec = SECTIONS["label_smoothing"]
    yield Case(
        "ls_sigmoid", LOGITS.with_(label_smoothing=0.1), [-3.0, 0.0, 3.0] * 2, [1] * 3 + [0] * 3,
        ("label-smoothing", "soft-target"), "Keras binary label smoothing 0.1: t -> t 0.9 + 0.05.", sec,
    )  # fmt: skip
    yield Case(
        "ls_probs", FL.with_(label_smoothing=0.1), ["0.05", "0.95"] * 2, [1, 1, 0, 0],
        ("label-smoothing", "probs"), "label smoothing 0.1 on probability inputs.", sec,
    )  # fmt: skip
    yield Case(
        "ls_softmax", Variant(activation="softmax", label_smoothing=0.1), [[2.0, 0.0, -1.0], [0.5, 0.5, 4.0]],
        [0, 1], ("label-smoothing", "softmax"), "softmax label smoothing 0.1: t -> t 0.9 + 0.1 / C.", sec,
    )  # fmt: skip


def _splitmix64(seed: int) -> Iterator[int]:
    """A tiny fixed PRNG, so the seeded logits never depend on a library's stream."""
    mask = (1 << 64) - 1
    state = seed & mask
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def seeded_logits(seed: int, n: int, scale: float = 8.0) -> list[float]:
    """n logits uniform on [-scale, scale) on a 2**-23 * scale grid: exact in float32."""
    gen = _splitmix64(seed)
    return [((next(gen) >> 40) - (1 << 23)) / (1 << 23) * scale for _ in range(n)]


def _softmax() -> Iterator[Case]:
    sec = SECTIONS["softmax"]
    sm = Variant(activation="softmax")
    twin_rows = [[0.0, 1.5], [0.25, -2.0], [10.0, -10.0], [0.0, 0.0]]
    twin_t = [1, 0, 1, 0]
    twin_x = [r[1] - r[0] for r in twin_rows]  # exact: dyadic values
    for suffix, sm_alpha, sig_alpha in (("", None, None), ("_avec", (0.75, 0.25), 0.25)):
        yield Case(
            f"softmax_c2_twin{suffix}", sm.with_(alpha=sm_alpha), twin_rows, twin_t, ("softmax", "invariant"),
            "softmax with C = 2 equals the sigmoid loss of the logit difference z1 - z0 with y = (class == 1)"
            + (" (alpha vector (1 - a, a) = sigmoid alpha a)" if sm_alpha else "") + ".",
            sec, extra={"twin": f"softmax_c2_twin{suffix}_sigmoid"},
        )  # fmt: skip
        yield Case(
            f"softmax_c2_twin{suffix}_sigmoid", LOGITS.with_(alpha=sig_alpha), twin_x, twin_t, ("invariant",),
            f"sigmoid twin of softmax_c2_twin{suffix}: x = z1 - z0.", SECTIONS["sigmoid"],
            extra={"twin": f"softmax_c2_twin{suffix}"},
        )  # fmt: skip
    rows80 = [seeded_logits(80, 80), seeded_logits(81, 80)]
    yield Case(
        "softmax_c80_seeded", sm, rows80, [3, 41], ("softmax",),
        "C = 80 (COCO-sized), seeded logits uniform on [-8, 8) exact in float32 (catalogue.seeded_logits 80, 81).",
        sec, extra={"seeds": [80, 81]},
    )  # fmt: skip
    yield Case(
        "softmax_c1000_seeded", sm, [seeded_logits(1000, 1000)], [7], ("softmax",),
        "C = 1000 (ImageNet-sized), one row of seeded logits uniform on [-8, 8) (catalogue.seeded_logits 1000).",
        sec, extra={"seeds": [1000]},
    )  # fmt: skip
    yield Case(
        "softmax_equal_logits", sm, [[0.0] * 5, [3.0] * 5], [0, 4], ("softmax", "invariant"),
        "all-equal logits: p = 1/C whatever the shift; loss = alpha (1 - 1/C)^gamma ln C.", sec,
    )  # fmt: skip
    dom = [[50.0, 0.0, 0.0, 0.0]] * 2 + [[800.0, 0.0, 0.0, 0.0]] * 2
    yield Case(
        "softmax_dominant", sm, dom, [0, 1, 0, 1], ("softmax", "saturation", "overflow", "underflow"),
        "one dominant logit (+50, +800 vs 0): exp overflows unless shifted by the max; the right class gets a "
        "vanishing loss, a wrong one about 50 / 800 times alpha.",
        sec,
    )  # fmt: skip
    rows = [[1.0, -0.5, 2.0, 0.25], [-3.0, 0.0, 0.5, 4.0], [0.0, 0.0, 0.0, 6.0]]
    tgt = [2, 0, 1]
    for name, a in (("none", None), ("scalar", 0.25), ("vector", (0.1, 0.2, 0.3, 0.4))):
        yield Case(
            f"softmax_alpha_{name}", sm.with_(alpha=a), rows, tgt, ("softmax", "alpha-grid"),
            f"softmax, alpha {name} ({a}).", sec,
        )  # fmt: skip
    for g in (0.0, 0.5, 5.0):
        yield Case(
            f"softmax_g{g:g}", sm.with_(gamma=g), rows, tgt, ("softmax", "gamma-grid"),
            f"softmax, gamma = {g:g}.", sec,
        )  # fmt: skip
    soft = [["0.7", "0.2", "0.1", "0"], ["0.25", "0.25", "0.25", "0.25"], ["0", "0", "0", "1"]]
    yield Case(
        "softmax_soft_dist", sm, rows, soft, ("softmax", "soft-target"),
        "softmax with target distributions (per row -sum_j alpha t_j (1-p_j)^gamma ln p_j).", sec,
    )  # fmt: skip
    yield Case(
        "softmax_soft_dist_avec", sm.with_(alpha=(0.1, 0.2, 0.3, 0.4)), rows, soft, ("softmax", "soft-target"),
        "target distributions with a per-class alpha vector.", sec,
    )  # fmt: skip
    smp = Variant(activation="softmax", input_kind="probs")
    yield Case(
        "softmax_probs", smp, [["0.7", "0.2", "0.1"], ["0.05", "0.9", "0.05"]], [0, 0], ("softmax", "probs"),
        "softmax focal loss on probability rows.", sec,
    )  # fmt: skip
    yield Case(
        "softmax_probs_renorm", smp.with_(renormalize=True), [["0.7", "0.2", "0.2"], ["0.3", "0.3", "0.6"]], [0, 2],
        ("softmax", "probs"), "Keras renormalisation: rows divided by their sum first.", sec,
    )  # fmt: skip
    yield Case(
        "softmax_probs_zero", smp, [["1", "0", "0"], ["1", "0", "0"]], [0, 1], ("softmax", "probs", "nan-hazard"),
        "probability 1 on the right class (loss 0) and 0 on the right class (loss +inf).", sec,
    )  # fmt: skip
    yield Case(
        "softmax_probs_clip", smp.with_(clip_eps=1e-7), [["1", "0", "0"], ["1", "0", "0"]], [0, 1],
        ("softmax", "probs", "clip"), "the same rows under the declared clip convention (eps = 1e-7).",
        SECTIONS["clip"],
    )  # fmt: skip
    yield Case(
        "softmax_mean", sm.with_(reduction="mean"), rows, tgt, ("softmax", "reduction"),
        "softmax with mean reduction over rows.", SECTIONS["reduction"],
    )  # fmt: skip


def _reductions() -> Iterator[Case]:
    sec = SECTIONS["reduction"]
    for red in ("sum", "mean", "normalized"):
        v = LOGITS.with_(reduction=red)
        yield Case(
            f"red_{red}_nopos", v, [1.0, -2.0, 0.5, 3.0], [0, 0, 0, 0], ("reduction",),
            f"reduction {red} with zero positives (normalized divides by max(1, 0) = 1).", sec,
        )  # fmt: skip
        yield Case(
            f"red_{red}_mixed", v, [2.0, -1.0, 0.5, 3.0, -4.0], [1, 0, 0, 1, 1], ("reduction",),
            f"reduction {red} with 3 positives of 5.", sec,
        )  # fmt: skip
    for red in ("none", "sum", "mean", "normalized"):
        yield Case(
            f"empty_{red}", LOGITS.with_(reduction=red), [], [], ("reduction", "empty"),
            f"empty input, shape (0,), reduction {red}: sum 0, mean NaN (0/0), normalized 0.", sec,
        )  # fmt: skip


@lru_cache(maxsize=1)
def _catalogue() -> tuple[Case, ...]:
    cases = (
        *seed_cases(), *_edges(), *_grids(), *_soft(), *_probs(), *_label_smoothing(),
        *_softmax(), *_reductions(),
    )  # fmt: skip
    seen: set[str] = set()
    for c in cases:
        if c.id in seen:
            raise AssertionError(f"duplicate case id {c.id}")
        seen.add(c.id)
    return cases


def all_cases() -> list[Case]:
    """Every case, in catalogue order (seed examples first)."""
    return list(_catalogue())


def case_ids() -> list[str]:
    return [c.id for c in _catalogue()]


def get_case(case_id: str) -> Case:
    """The case with this id; SpecError naming close matches otherwise."""
    for c in _catalogue():
        if c.id == case_id:
            return c
    close = difflib.get_close_matches(case_id, case_ids(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see 'focalspec golden --list'"
    raise SpecError(f"unknown case id {case_id!r}{hint}")


def cases_with_tag(tag: str) -> list[Case]:
    if tag not in TAGS:
        raise SpecError(f"unknown tag {tag!r}; expected one of {', '.join(TAGS)}")
    return [c for c in _catalogue() if tag in c.tags]


def as_dtype(data: Any, dtype: str) -> np.ndarray:
    """Case inputs/targets correctly rounded straight from their exact value to ``dtype``
    (held in a float64 array); decimal strings are never rounded twice."""
    import mpmath

    arr = np.asarray(data, dtype=object)
    out = np.empty(arr.shape, dtype=np.float64)
    with mpmath.workprec(256):  # decimals parsed far past any dtype, then rounded once
        for idx, val in np.ndenumerate(arr):
            out[idx] = round_mpf(mpmath.mpf(val.strip() if isinstance(val, str) else val), dtype)
    return out
