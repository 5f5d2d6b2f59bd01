"""The edge and shape families: what the catalogue does not pin down element by element.

* edge -- saturation at every gamma in (0, 1) (gradients must stay finite), subnormal logits,
  probability tails, NaN and inf under reductions, empty inputs of rank 2, extreme softmax rows.
* shape -- the same definition on (), (N,), (N, C), (N, C, H, W) and softmax (C,), (N, C),
  (N, H, W, C) with every reduction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from focalspec.conformance.suite.cases import SIG, SMX, SuiteCase
from focalspec.spec.variant import Variant


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
