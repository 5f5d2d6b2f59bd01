"""The mpmath arbiter checked against itself and against independent mathematics.

Closed-form gradients against numerical differentiation (``mpmath.diff``) of the value;
the identities the spec states (softmax with two classes is the sigmoid loss, gamma = 0
is alpha-balanced cross-entropy, the y / -x / 1 - alpha symmetry); and published
constants (-ln 0.95 and friends) for the worked examples.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest

from focalspec.reference import exact as ref
from focalspec.spec.variant import SpecError, Variant

mp = mpmath.mp


def numeric_derivative(v: Variant, x: mpmath.mpf, t: mpmath.mpf) -> mpmath.mpf:
    elem = ref.sigmoid_logits_element if v.input_kind == "logits" else ref.sigmoid_probs_element
    return mpmath.diff(lambda u: elem(u, t, v)[0], x)


def assert_close(a: mpmath.mpf, b: mpmath.mpf, digits: int = 25) -> None:
    scale = max(abs(a), abs(b), mp.mpf(10) ** -300)
    assert abs(a - b) / scale < mp.mpf(10) ** (-digits), f"{mpmath.nstr(a, 30)} != {mpmath.nstr(b, 30)}"


@pytest.mark.parametrize("soft_target", ["canonical", "geometric", "margin", "two_term"])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 5.0])
def test_logit_gradient_closed_form_matches_numeric_derivative(soft_target: str, gamma: float) -> None:
    v = Variant(gamma=gamma, alpha=0.25, soft_target=soft_target)  # type: ignore[arg-type]
    with mp.workdps(50):
        for x, t in itertools.product(["-30", "-2.5", "-1e-6", "0.3", "4", "25"], ["0", "0.1", "0.5", "0.7", "1"]):
            xm, tm = mp.mpf(x), mp.mpf(t)
            assert_close(ref.sigmoid_logits_element(xm, tm, v)[1], numeric_derivative(v, xm, tm))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("clip_eps", [None, 1e-3])
def test_probability_gradient_closed_form_matches_numeric_derivative(gamma: float, clip_eps: float | None) -> None:
    v = Variant(input_kind="probs", gamma=gamma, alpha=0.25, clip_eps=clip_eps)
    with mp.workdps(50):
        for p, t in itertools.product(["1e-6", "0.05", "0.5", "0.95", "0.999999"], ["0", "0.3", "1"]):
            pm, tm = mp.mpf(p), mp.mpf(t)
            assert_close(ref.sigmoid_probs_element(pm, tm, v)[1], numeric_derivative(v, pm, tm))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("kind", ["index", "soft", "clip", "probs", "renorm"])
def test_softmax_gradient_closed_form_matches_numeric_derivative(gamma: float, kind: str) -> None:
    c = 4
    z = [mp.mpf(s) for s in ("1.5", "-0.25", "3", "0.5")]
    t = [mp.mpf(s) for s in (("0.1", "0.2", "0.6", "0.1") if kind == "soft" else ("0", "0", "1", "0"))]
    alpha = (0.1, 0.2, 0.3, 0.4)
    v = Variant(activation="softmax", gamma=gamma, alpha=alpha)
    if kind == "clip":
        v = v.with_(clip_eps=1e-3)
    if kind in ("probs", "renorm"):
        z = [mp.mpf(s) for s in (("0.1", "0.2", "0.6", "0.1") if kind == "probs" else ("0.3", "0.2", "0.9", "0.1"))]
        v = v.with_(input_kind="probs", renormalize=kind == "renorm")
    with mp.workdps(50):
        _, grad, _ = ref.softmax_row(z, t, v)
        for k in range(c):

            def f(u: mpmath.mpf, k: int = k) -> mpmath.mpf:
                zz = list(z)
                zz[k] = u
                return ref.softmax_row(zz, t, v)[0]

            assert_close(grad[k], mpmath.diff(f, z[k]))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_softmax_with_two_classes_equals_sigmoid(gamma: float, alpha: float | None) -> None:
    xs = np.array([-40.0, -3.0, -1e-8, 0.0, 0.7, 12.0, 300.0])
    sig = Variant(gamma=gamma, alpha=alpha)
    soft = Variant(activation="softmax", gamma=gamma, alpha=None if alpha is None else (1 - alpha, alpha))
    for y in (0, 1):
        s = ref.evaluate(sig, xs, np.full(xs.shape, float(y)))
        z = np.stack([np.zeros_like(xs), xs], axis=-1)
        m = ref.evaluate(soft, z, np.full(xs.shape, y))
        with mp.workdps(60):
            for i in range(len(xs)):
                assert_close(s.losses[i], m.losses[i], 40)
                assert_close(s.grad[i], m.grad[i, 1], 40)
                assert_close(-s.grad[i], m.grad[i, 0], 40)


def test_gamma_zero_is_alpha_balanced_cross_entropy() -> None:
    for x, y in itertools.product(["-50", "-1", "0", "2.5", "36.7"], [0, 1]):
        with mp.workdps(50):
            val = ref.sigmoid_logits_element(mp.mpf(x), mp.mpf(y), Variant(gamma=0.0, alpha=0.25))[0]
        with mp.workdps(150):  # the textbook form, with enough digits to absorb its cancellation
            p = 1 / (1 + mp.exp(-mp.mpf(x)))
            ce = -mp.log(p) if y == 1 else -mp.log(1 - p)
            at = mp.mpf("0.25") if y == 1 else mp.mpf("0.75")
            assert_close(val, at * ce, 40)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_symmetry_y_negated_x_one_minus_alpha(gamma: float) -> None:
    with mp.workdps(50):
        for x in ["-700", "-20", "-0.5", "0", "1e-8", "3", "40"]:
            xm = mp.mpf(x)
            a = ref.sigmoid_logits_element(xm, mp.one, Variant(gamma=gamma, alpha=0.375))
            b = ref.sigmoid_logits_element(-xm, mp.zero, Variant(gamma=gamma, alpha=0.625))
            assert_close(a[0], b[0], 40)
            assert_close(a[1], -b[1], 40)


def test_worked_examples_against_published_constants() -> None:
    """Seed 000: FL(FG) for p = 0.95, alpha = 0.25, gamma = 2 is 0.25 * 0.05^2 * -ln 0.95."""
    v = Variant(input_kind="probs", gamma=2.0, alpha=0.25)
    with mp.workdps(60):
        val = ref.sigmoid_probs_element(mp.mpf("0.95"), mp.one, v)[0]
        assert_close(val, mp.mpf("0.25") * mp.mpf("0.0025") * -mp.log(mp.mpf("0.95")), 50)
        assert mpmath.nstr(val, 17) == "3.2058308992219083e-5"


def test_saturated_gradient_is_finite_for_small_gamma() -> None:
    """d/dx of (1 - p_t)^0.5 * CE at y = 1, x = 40: finite and tiny, though naive autodiff gives NaN."""
    g = ref.sigmoid_logits_element(mp.mpf(40), mp.one, Variant(gamma=0.5, alpha=None))[1]
    assert mp.isfinite(g) and -mp.mpf("1e-25") < g < 0


def test_infinite_logits_take_the_limits() -> None:
    v = Variant(gamma=2.0, alpha=0.25)
    assert ref.sigmoid_logits_element(mp.inf, mp.one, v)[:2] == (0, 0)
    val, grad, _ = ref.sigmoid_logits_element(mp.inf, mp.zero, v)
    assert val == mp.inf and grad == mp.mpf("0.75")  # -alpha_t * s with s = -1
    val, grad, _ = ref.sigmoid_logits_element(-mp.inf, mp.one, v)
    assert val == mp.inf and grad == mp.mpf("-0.25")


def test_reductions_and_empty_inputs() -> None:
    mp.dps = ref.DEFAULT_DPS  # compare at the precision the references were evaluated with
    x, t = np.array([1.0, -2.0, 3.0]), np.array([1.0, 0.0, 0.0])
    base = ref.evaluate(Variant(), x, t)
    total = mp.fsum(base.losses)
    assert ref.evaluate(Variant(reduction="sum"), x, t).value == total
    assert_close(ref.evaluate(Variant(reduction="mean"), x, t).value, total / 3, 50)
    assert ref.evaluate(Variant(reduction="normalized"), x, t).value == total  # one positive
    assert ref.evaluate(Variant(reduction="normalized"), x, np.zeros(3)).value == mp.fsum(
        ref.evaluate(Variant(), x, np.zeros(3)).losses
    )  # zero positives: divide by max(1, 0) = 1
    assert mp.isnan(ref.evaluate(Variant(reduction="mean"), np.zeros(0), np.zeros(0)).value)
    assert ref.evaluate(Variant(reduction="sum"), np.zeros(0), np.zeros(0)).value == 0
    mp.dps = 15


def test_bad_requests_are_one_line_errors() -> None:
    with pytest.raises(SpecError, match="gamma must be >= 0"):
        Variant(gamma=-1.0)
    with pytest.raises(SpecError, match="alpha must be in"):
        Variant(alpha=1.5)
    with pytest.raises(SpecError, match="unknown activation"):
        Variant(activation="tanh")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="shape"):
        ref.evaluate(Variant(), np.zeros(3), np.zeros(2))
    with pytest.raises(SpecError, match="outside"):
        ref.evaluate(Variant(input_kind="probs"), np.array([1.5]), np.array([1.0]))


# ----------------------------------------------------------------------------- clip_scope='ce' (Keras binary)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("kind", ["logits", "probs"])
def test_clip_in_cross_entropy_only_gradient_matches_numeric_derivative(gamma: float, kind: str) -> None:
    """Points inside and beyond the clip (eps = 1e-3: logit(1 - eps) = 6.9) on both sides."""
    v = Variant(input_kind=kind, gamma=gamma, alpha=0.25, clip_eps=1e-3, clip_scope="ce")  # type: ignore[arg-type]
    points = ["-12", "-6.5", "-0.3", "2", "7.5", "20"] if kind == "logits" else ["1e-5", "0.02", "0.5", "0.9995"]
    with mp.workdps(50):
        for x, t in itertools.product(points, ["0", "0.3", "1"]):
            xm, tm = mp.mpf(x), mp.mpf(t)
            elem = ref.sigmoid_logits_element if kind == "logits" else ref.sigmoid_probs_element
            assert_close(elem(xm, tm, v)[1], numeric_derivative(v, xm, tm))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_clip_in_cross_entropy_only_is_the_keras_formula(gamma: float) -> None:
    """-alpha_t (1 - p_t)^g BCE(clip(p)), evaluated in the textbook form with 200 digits:
    the factor sees the unclipped p, so beyond the clip the loss still falls with x."""
    eps = mp.mpf("1e-7")
    v = Variant(gamma=gamma, alpha=0.25, clip_eps=1e-7, clip_scope="ce")
    for x, y in itertools.product(["-40", "-16.2", "-3", "0.5", "16.2", "40", "300"], [0, 1]):
        with mp.workdps(50):
            got = ref.sigmoid_logits_element(mp.mpf(x), mp.mpf(y), v)[0]
        with mp.workdps(200):
            p = 1 / (1 + mp.exp(-mp.mpf(x)))
            pc = min(max(p, eps), 1 - eps)
            bce = -mp.log(pc) if y == 1 else -mp.log(1 - pc)
            pt = p if y == 1 else 1 - p
            want = (mp.mpf("0.25") if y == 1 else mp.mpf("0.75")) * (1 - pt) ** gamma * bce
            assert_close(got, want, 40)


def test_clip_in_cross_entropy_only_at_a_reached_hard_target() -> None:
    """p = t = 1: the factor is 0 (gamma > 0) but the clipped BCE is not, so the loss is
    alpha (1 - p_t)^g (-log(1 - eps)) and its slope in p is -inf for 0 < g < 1."""
    with mp.workdps(50):
        for gamma, loss, grad in [(0.0, "x", 0), (0.5, 0, -mp.inf), (1.0, 0, "s"), (2.0, 0, 0)]:
            v = Variant(input_kind="probs", gamma=gamma, alpha=0.25, clip_eps=1e-7, clip_scope="ce")
            val, d, _ = ref.sigmoid_probs_element(mp.one, mp.one, v)
            ce = -mp.log1p(-mp.mpf(1e-7))
            assert val == (mp.mpf("0.25") * ce if loss == "x" else 0)
            assert d == (-mp.mpf("0.25") * ce if grad == "s" else grad)
