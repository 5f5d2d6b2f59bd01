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

from broken_impls._single_defects import install


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


PLANTED = install(globals(), _focal, {})
