"""The numpy reference stays within its stated bound of the mpmath arbiter over a dense sweep.

The sweep covers logits from -1e4 to 1e4 on a symmetric log grid that includes the
saturation points of float16/bfloat16/float32/float64 and the exp-overflow points, the
gamma grid of the spec, alpha on and off, hard and soft targets, every soft-target
convention, probability inputs (with and without clipping) and softmax rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from focalspec.reference import exact as mpref
from focalspec.reference import float64 as npref
from focalspec.spec.tolerance import error_in_u
from focalspec.spec.variant import Variant

# |x| where sigmoid(x) first rounds to 1 in each format, and where exp overflows
SPECIAL = [0.0, 1e-8, 1.0, 8.3, 16.6, 17.3, 36.7, 37.5, 88.7, 89.5, 709.8, 745.2]
GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 5.0]


def logit_grid(n: int = 61) -> np.ndarray:
    mags = np.concatenate([np.logspace(-8, 4, n), SPECIAL])
    return np.unique(np.concatenate([-mags, mags]))


def max_err(v: Variant, x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Worst error in units of the stated bound's excess over NP_ERROR_BOUND_U (so <= bound passes)."""
    exact = mpref.evaluate(v, x, t, dps=50)
    approx = npref.evaluate(v, x, t)
    ev = error_in_u(approx.losses, exact.losses.astype(float), exact.losses.astype(float), "float64")
    eg = error_in_u(approx.grad, exact.grad.astype(float), exact.grad_scale.astype(float), "float64")
    if v.soft_target == "margin" and v.activation == "sigmoid":  # stated exception: npref.margin_bound
        relax = npref.margin_bound(x, t, v.gamma) / npref.NP_ERROR_BOUND_U
        ev, eg = ev / relax, eg / relax
    if v.activation == "softmax":  # stated exception: npref.softmax_bound, per row
        relax = npref.softmax_bound(x) / npref.NP_ERROR_BOUND_U
        ev, eg = ev / relax[..., 0], eg / relax
    return float(ev.max()), float(eg.max())


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_sigmoid_hard_targets_within_bound(gamma: float, alpha: float | None) -> None:
    x = logit_grid()
    for y in (0.0, 1.0):
        ev, eg = max_err(Variant(gamma=gamma, alpha=alpha), x, np.full_like(x, y))
        assert ev <= npref.NP_ERROR_BOUND_U, f"value error {ev:.1f} u at y={y}"
        assert eg <= npref.NP_ERROR_BOUND_U, f"gradient error {eg:.1f} u at y={y}"


@pytest.mark.parametrize("soft_target", ["canonical", "geometric", "margin", "two_term"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_sigmoid_soft_targets_within_bound(soft_target: str, gamma: float) -> None:
    x = logit_grid(31)
    v = Variant(gamma=gamma, alpha=0.25, soft_target=soft_target)  # type: ignore[arg-type]
    for t in (0.0, 0.1, 0.5, 0.9, 1.0):
        ev, eg = max_err(v, x, np.full_like(x, t))
        assert ev <= npref.NP_ERROR_BOUND_U, f"value error {ev:.1f} u at t={t}"
        assert eg <= npref.NP_ERROR_BOUND_U, f"gradient error {eg:.1f} u at t={t}"


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("clip_eps", [None, 1e-7])
def test_sigmoid_probability_inputs_within_bound(gamma: float, clip_eps: float | None) -> None:
    p = np.unique(np.concatenate([np.logspace(-300, 0, 40), 1 - np.logspace(-16, -1, 20), [0.0, 0.5, 1.0]]))
    # the upper clip bound is stated as a float64 value so both references clip at the same point
    upper = None if clip_eps is None else 1.0 - clip_eps
    v = Variant(input_kind="probs", gamma=gamma, alpha=0.25, clip_eps=clip_eps, clip_upper=upper)
    for t in (0.0, 1.0, 0.3):
        ev, eg = max_err(v, p, np.full_like(p, t))
        assert ev <= npref.NP_ERROR_BOUND_U and eg <= npref.NP_ERROR_BOUND_U, (t, ev, eg)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_softmax_rows_within_bound(gamma: float) -> None:
    rng = np.random.default_rng(7)
    z = np.concatenate(
        [
            rng.normal(0, 3, (6, 5)),
            [[800.0, 0, 0, 0, 0], [50.0, 0, 0, 1, 2], [0.0] * 5, [-30.0, 0, 1e-8, 40, 39], [0, 84.59, -8.46, 0.22, 0]],
        ]
    )
    labels = np.array([0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 1])
    for v in (Variant(activation="softmax", gamma=gamma, alpha=None), Variant(activation="softmax", gamma=gamma)):
        for targets in (labels, rng.dirichlet(np.ones(5), size=len(z))):
            ev, eg = max_err(v, z, targets)
            assert ev <= npref.NP_ERROR_BOUND_U and eg <= npref.NP_ERROR_BOUND_U, (ev, eg)


def test_infinite_and_nan_logits_match_the_limits() -> None:
    x = np.array([np.inf, -np.inf, np.nan, np.inf, -np.inf])
    for st in ("canonical", "geometric", "margin", "two_term"):
        for g in (0.0, 0.5, 2.0):
            v = Variant(gamma=g, alpha=0.25, soft_target=st)  # type: ignore[arg-type]
            for t in (0.0, 0.3, 0.5, 0.7, 1.0):
                tt = np.full_like(x, t)
                exact, approx = mpref.evaluate(v, x, tt), npref.evaluate(v, x, tt)
                ev = error_in_u(approx.losses, exact.losses.astype(float), exact.losses.astype(float), "float64")
                eg = error_in_u(approx.grad, exact.grad.astype(float), exact.grad_scale.astype(float), "float64")
                bound = npref.NP_ERROR_BOUND_U
                assert ev.max() <= bound and eg.max() <= bound, (st, g, t, approx.losses, approx.grad)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("upper", [None, 1.0 - 2.0**-23])
def test_sigmoid_clip_in_cross_entropy_only_within_bound(gamma: float, upper: float | None) -> None:
    """Keras' binary form: BCE of clip(sigma(x)), factor of the unclipped p. At hard targets the
    factor comes from log space where 1 - p_t underflows: the margin exception applies there."""
    x = np.concatenate([logit_grid(), [16.1, 16.2, -16.1, np.inf, -np.inf]])
    v = Variant(gamma=gamma, alpha=0.25, clip_eps=1e-7, clip_upper=upper, clip_scope="ce")
    for t in (0.0, 1.0, 0.3, 0.95):
        tt = np.full_like(x, t)
        exact, approx = mpref.evaluate(v, x, tt, dps=50), npref.evaluate(v, x, tt)
        ev = error_in_u(approx.losses, exact.losses.astype(float), exact.losses.astype(float), "float64")
        eg = error_in_u(approx.grad, exact.grad.astype(float), exact.grad_scale.astype(float), "float64")
        if t in (0.0, 1.0):
            relax = npref.margin_bound(np.where(np.isfinite(x), x, 0.0), tt, gamma) / npref.NP_ERROR_BOUND_U
            ev, eg = ev / relax, eg / relax
        assert ev.max() <= npref.NP_ERROR_BOUND_U, f"value error {ev.max():.1f} u at t={t}"
        assert eg.max() <= npref.NP_ERROR_BOUND_U, f"gradient error {eg.max():.1f} u at t={t}"


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_sigmoid_probability_clip_in_cross_entropy_only_within_bound(gamma: float) -> None:
    p = np.unique(np.concatenate([np.logspace(-300, 0, 40), 1 - np.logspace(-16, -1, 20), [0.0, 0.5, 1.0]]))
    v = Variant(input_kind="probs", gamma=gamma, alpha=0.25, clip_eps=1e-7, clip_upper=1.0 - 1e-7, clip_scope="ce")
    for t in (0.0, 1.0, 0.3):
        ev, eg = max_err(v, p, np.full_like(p, t))
        assert ev <= npref.NP_ERROR_BOUND_U and eg <= npref.NP_ERROR_BOUND_U, (t, ev, eg)
