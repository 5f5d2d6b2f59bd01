"""Single-defect focal losses in TensorFlow (issue 24): ``careful`` and one planted defect each.

``f(logits, labels, alpha=0.25, gamma=2.0)``, element-wise.  ``careful`` computes half types in
float32 and rounds once, forms 1 − p_t as σ(−s·x), the cross-entropy with softplus, and gives
(1 − p_t)^γ a bounded derivative through ``tf.custom_gradient`` (0 at 1 − p_t = 0 for
0 < γ < 1).  Every other function is ``careful`` with the one defect its name says; ``PLANTED``
maps each to its cause.  ``bce_with_logits`` uses TF's own sigmoid_cross_entropy_with_logits,
which is exact for hard targets: it is careful on them, a control.
"""

from __future__ import annotations

import tensorflow as tf


def _pow(m: tf.Tensor, g: float) -> tf.Tensor:
    @tf.custom_gradient
    def f(m: tf.Tensor) -> tuple:
        def grad(dy: tf.Tensor) -> tf.Tensor:
            safe = tf.where(m > 0, m, tf.ones_like(m))
            return dy * tf.where(m > 0, g * safe ** (g - 1.0), tf.zeros_like(m))

        return m**g, grad

    return f(m)


def _alpha_t(alpha: float | None, t: tf.Tensor) -> tf.Tensor | float:
    return 1.0 if alpha is None else alpha * t + (1.0 - alpha) * (1.0 - t)


def _focal(x: tf.Tensor, t: tf.Tensor, alpha: float | None, gamma: float, *, factor: str = "stable",
           ce: str = "stable", power: str = "bounded", alpha_side: str = "right", detach: bool = False,
           compute: str = "upcast", clamp: float | None = None) -> tf.Tensor:  # fmt: skip
    out_dtype = x.dtype
    half = x.dtype in (tf.bfloat16, tf.float16)
    if (compute == "upcast" and half) or compute == "float32":
        xc = tf.cast(x, tf.float32)
    else:
        xc = x
    t = tf.cast(t, xc.dtype)
    if clamp is not None:
        xc = tf.clip_by_value(xc, -clamp, clamp)
    p, q = tf.sigmoid(xc), tf.sigmoid(-xc)
    m = 1.0 - (p * t + (1.0 - p) * (1.0 - t)) if factor == "one_minus_p" else t * q + (1.0 - t) * p
    if ce == "naive_log":
        c = -(t * tf.math.log(p) + (1.0 - t) * tf.math.log(1.0 - p))
    elif ce == "eps":
        c = -(t * tf.math.log(p + 1e-6) + (1.0 - t) * tf.math.log(q + 1e-6))
    elif ce == "tf":
        c = tf.nn.sigmoid_cross_entropy_with_logits(labels=t, logits=xc)
    else:
        c = t * tf.nn.softplus(-xc) + (1.0 - t) * tf.nn.softplus(xc)
    f = m**gamma if power == "autodiff" else _pow(m, gamma)
    if detach:
        f = tf.stop_gradient(f)
    a = alpha if alpha_side == "right" or alpha is None else 1.0 - alpha
    return tf.cast(_alpha_t(a, t) * f * c, out_dtype)


def careful(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return _focal(x, t, alpha, gamma)


def bce_with_logits(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """The cross-entropy by tf.nn.sigmoid_cross_entropy_with_logits (exact for hard targets)."""
    return _focal(x, t, alpha, gamma, ce="tf")


def one_minus_p(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """1 − p_t formed as 1 − p from a rounded σ (Keras' form, with a bounded power)."""
    return _focal(x, t, alpha, gamma, factor="one_minus_p")


def naive_log(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """−log(σ(x)) and −log(1 − σ(x)) of a rounded σ."""
    return _focal(x, t, alpha, gamma, ce="naive_log")


def eps_in_log(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """−log(σ + 1e-6): the 'safe log'."""
    return _focal(x, t, alpha, gamma, ce="eps")


def naive_pow(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """Autodiff through (1 − p_t)**γ: NaN for 0 < γ < 1 once 1 − p_t underflows to 0."""
    return _focal(x, t, alpha, gamma, power="autodiff")


def float32_inside(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """Computes float64 inputs in float32."""
    return _focal(x, t, alpha, gamma, compute="float32")


def clamped_logits(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """Logits clamped to [−20, 20]."""
    return _focal(x, t, alpha, gamma, clamp=20.0)


def wrong_alpha_side(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """α on the negatives."""
    return _focal(x, t, alpha, gamma, alpha_side="wrong")


def detached_factor(x, t, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """stop_gradient on the factor."""
    return _focal(x, t, alpha, gamma, detach=True)


PLANTED = {"one_minus_p": "one_minus_p_cancellation", "naive_log": "bce_cancellation",
           "eps_in_log": "clip_epsilon", "naive_pow": "nonfinite_at_finite",
           "float32_inside": "low_precision_compute",
           "clamped_logits": "clip_epsilon", "wrong_alpha_side": "convention",
           "detached_factor": "convention"}  # fmt: skip
