"""The catalogue of mechanisms behind failing checks (SPEC §10.7): each a computation, not a threshold.

A mechanism is one way real implementations compute one part of the focal loss -- the factor
(1 − p_t)^γ as ``1 − p`` from a rounded σ, torch's ``binary_cross_entropy_with_logits`` as it
really computes ((1 − t)·x − log_sigmoid(x), gradient σ(x) − t), TensorFlow's
``sigmoid_cross_entropy_with_logits`` (max(x, 0) − x·t + log1p(e^{−|x|})), −log of a rounded
probability, an ε inside the log, a clip, a logit clamp, a float32 or half-precision working
dtype, autodiff of the power at 1 − p_t = 0, α on the wrong class, a detached factor.  A *model*
is the spec's stable computation with some parts replaced by mechanisms; ``evaluate`` runs it on
the failing elements with every operation rounded to the working dtype (numpy float32/float16,
ml_dtypes bfloat16), value and derivative alike (forward-mode, as autodiff multiplies the same
rounded factors).

``explain`` searches single mechanisms, then pairs and triples of the ones that explain part of
the error, for the smallest model that reproduces what the implementation returned; the cause
is the mechanism of that model that carries the largest share of the error (reverting it to the
stable form removes the most).  What no model reproduces, nor explains half of, is unexplained.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from focalspec.conformance.diagnosis.dual import Arith, D, Ops, _c
from focalspec.reference.rounding import get_format
from focalspec.spec.tolerance import budget

# ----------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Mechanism:
    """One way an implementation computes one part (``slot``) of the loss, with its cause and fix."""

    key: str
    slot: str  # factor | ce | precision | pow | alpha | detach | clamp
    option: Any
    cause: str
    explanation: str
    fix: str
    kinds: tuple[str, ...] = ("logits", "probs")


SPEC_MODEL: dict[str, Any] = {"factor": "stable", "ce": "stable", "precision": None, "pow": "bounded",
                              "alpha": "right", "detach": False, "clamp": None, "bound": "exact"}  # fmt: skip

_EPSILONS = (1e-7, 1e-6, 1e-8, 1e-5, 1e-4, 1e-10, 1e-12, 1e-15, 1e-16, 2.0**-23, 1.1754943508222875e-38)
_CLAMPS = (10.0, 15.0, 16.0, 20.0, 30.0, 50.0, 80.0, 88.0, 100.0, 1e3, 1e4, 1e6, 1e9)


def _catalogue() -> tuple[Mechanism, ...]:
    m = [
        Mechanism("one_minus_p", "factor", "one_minus_p", "one_minus_p_cancellation",
                  "1 − p_t is formed by subtracting a rounded p_t = p·t + (1 − p)(1 − t) from 1: for a confident "
                  "correct prediction its relative error grows like u·e^{|x|} and it is exactly 0 once σ(x) "
                  "rounds to 1 (x ≳ 16.6 in float32, 36.7 in float64).",
                  "Form 1 − p_t as σ(−s·x) with s = 2t − 1 (soft targets: t·σ(−x) + (1 − t)·σ(x)), never as 1 − p."),
        Mechanism("one_minus_exp_ce", "factor", "one_minus_exp_ce", "one_minus_p_cancellation",
                  "p_t is recovered as exp(−CE) and 1 − p_t formed by subtraction (segmentation_models_pytorch "
                  "focal_loss_with_logits): for a confident correct prediction 1 − exp(−CE) loses relative precision "
                  "like u/CE and is 0 once CE < u.",
                  "Form 1 − p_t as σ(−s·x) (or −expm1(−CE)), never as 1 − exp(−CE).", ("logits",)),
        Mechanism("torch_bce", "ce", "torch_bce", "bce_cancellation",
                  "torch.nn.functional.binary_cross_entropy_with_logits computes (1 − t)·x − log_sigmoid(x) "
                  "(aten/src/ATen/native/Loss.cpp): for t = 0 and x ≪ 0 the two terms are both ≈ x and cancel, so "
                  "the loss log1p(e^x) is lost (exactly 0 once e^x < u·|x|), and for soft targets (1 − t)·x "
                  "cancels against x; its gradient σ(x) − t is formed by subtraction.",
                  "Compute the cross-entropy as t·softplus(−x) + (1 − t)·softplus(x) (torch.nn.functional.softplus "
                  "is log1p(e^x) below its threshold), not with binary_cross_entropy_with_logits.",
                  ("logits",)),
        Mechanism("where_branches", "factor", "where_branches", "one_minus_p_cancellation",
                  "The factor is where(t = 1, (1 − p)^γ, p^γ) with both branches computed from a rounded p "
                  "(focal_loss' BinaryFocalLoss): 1 − p loses precision like e^{|x|}, and the branch not taken "
                  "still sends its power's derivative (NaN at 0 for γ < 1, γ = 0 included in TF/JAX) into the "
                  "gradient, 0·NaN = NaN.",
                  "Form 1 − p_t as σ(−s·x) and select before the power (or give the power a bounded custom "
                  "derivative), so no branch evaluates 0^γ.", ("logits", "probs")),
        Mechanism("exp_logsig", "factor", "exp_logsig", "low_precision_compute",
                  "(1 − p_t)^γ is formed as exp(γ·log_sigmoid(−s·x)) (MONAI's FocalLoss): stable in range, but the "
                  "exponent's rounding error is multiplied by γ·|x|, many ulps at large |x| or in a half type.",
                  "Compute σ(−s·x)^γ directly (with a bounded custom backward for 0 < γ < 1), which keeps the "
                  "relative error a few ulps.", ("logits",)),
        Mechanism("bce_formula", "ce", "bce_formula", "bce_cancellation",
                  "The cross-entropy is written out as x − x·t − log_sigmoid(x) (MONAI's FocalLoss): for t = 0 and "
                  "x ≪ 0 x and log_sigmoid(x) ≈ x cancel, and autodiff forms the gradient 1 − t − σ(−x) by "
                  "subtraction.",
                  "Compute the cross-entropy as t·softplus(−x) + (1 − t)·softplus(x).", ("logits",)),
        Mechanism("tf_sce", "ce", "tf_sce", "bce_cancellation",
                  "tf.nn.sigmoid_cross_entropy_with_logits computes max(x, 0) − x·t + log1p(e^{−|x|}) "
                  "(tensorflow/python/ops/nn_impl.py): exact for hard targets, but for a soft target x·t cancels "
                  "against max(x, 0), losing relative precision like |x|/CE.",
                  "For soft targets compute t·softplus(−x) + (1 − t)·softplus(x) (each term ≥ 0, no cancellation) "
                  "instead of sigmoid_cross_entropy_with_logits.",
                  ("logits",)),
        Mechanism("naive_log", "ce", "naive_log", "bce_cancellation",
                  "The cross-entropy is −t·log(p) − (1 − t)·log(1 − p) of a rounded p: log(1 − p) loses relative "
                  "precision like e^{|x|} where p is near 1, and is −log(0) = ∞ once σ saturates.",
                  "On logits: t·softplus(−x) + (1 − t)·softplus(x); on probabilities: log1p(−p) for log(1 − p)."),
        Mechanism("precision_float32", "precision", "float32", "low_precision_compute",
                  "The float64 input is computed in float32 (an astype/cast, a float32 constant or kernel): "
                  "errors ~2^−24 relative, float32 saturation of σ and underflow.",
                  "Compute in the input dtype: keep float64 inputs in float64 (no float32 casts or constants)."),
        Mechanism("precision_half", "precision", "half", "low_precision_compute",
                  "float16/bfloat16 inputs are computed in the half type itself: every σ, log, power and product is "
                  "rounded to an 8- or 11-bit significand.",
                  "Upcast half inputs to float32, compute there, and round the result once to the input dtype."),
        Mechanism("pow_autodiff", "pow", "autodiff", "nonfinite_at_finite",
                  "Autodiff of (1 − p_t)^γ gives γ·(1 − p_t)^{γ−1}·d(1 − p_t): for 0 < γ < 1 that is ∞·0 = NaN "
                  "wherever 1 − p_t is 0, and for γ = 0 JAX and TensorFlow form 0·0^{−1} = NaN too (torch masks it).",
                  "Give (1 − p_t)^γ a bounded derivative: a custom backward/custom_jvp (jax.custom_jvp, "
                  "tf.custom_gradient) computing −s·γ·(1 − p_t)^γ·p_t; where() alone cannot give the limit."),
    ]
    for eps in _EPSILONS:
        m.append(Mechanism(f"eps_{eps:.3g}", "ce", ("eps", eps), "clip_epsilon",
                           f"ε = {eps:.3g} is added inside the log (−log(p + ε)): every value moves by ~ε/p_t and "
                           f"the loss saturates at −log ε where the exact one grows without bound.",
                           "Drop the ε: work on logits with softplus/log-sigmoid, or use log1p(−p) for probabilities; "
                           "if a clip is intended declare it (--clip-eps, --clip-scope)."))
        m.append(Mechanism(f"clip_{eps:.3g}", "ce", ("clip", eps), "clip_epsilon",
                           f"p is clipped to [{eps:.3g}, 1 − {eps:.3g}] (bounds formed in the working dtype): the "
                           f"loss is constant and its gradient 0 beyond the clip.",
                           "Work on logits with softplus/log-sigmoid, which need no clip; if it is intended declare "
                           "it (--clip-eps, --clip-scope)."))
    m.append(Mechanism("declared_clip_rounded", "bound", "rounded", "clip_epsilon",
                       "The declared clip's upper bound 1 − ε is formed in the working dtype (float32: 1 − 1e−7 is "
                       "1 − 2^−23) and 1 − p is taken of the clipped p: the clipped loss is −log(2^−23·…), not −log ε.",
                       "Form the bounds in float64 or clip the complement σ(−x) to [ε, 1 − ε] directly; or declare "
                       "the rounded bound (--clip-eps with the dtype's value)."))
    m.append(Mechanism("declared_clip_torch_bce", "bound", "torch_bce", "clip_epsilon",
                       "Keras on torch: p is clipped to [ε, 1 − ε] with the bounds rounded to the working dtype "
                       "(1 − 1e−7 is 1 in float16/bfloat16, so p = 1 passes), then torch.nn.functional."
                       "binary_cross_entropy takes max(log p, −100) and max(log1p(−p), −100), gradient "
                       "(p − t)/max(p(1 − p), 1e−12): the loss is capped at 100 (75 with α = 0.25) where σ rounds "
                       "to 1, and 1 − p_t is formed as 1 − p (keras/src/losses/losses.py, backend/torch/nn.py).",
                       "Compute from logits with softplus forms (no clip, no log cap); in half types compute in "
                       "float32, where 1 − ε survives, and round once."))
    for lim in _CLAMPS:
        m.append(Mechanism(f"clamp_{lim:g}", "clamp", lim, "clip_epsilon",
                           f"logits are clamped to [−{lim:g}, {lim:g}]: the loss is frozen and its gradient 0 beyond.",
                           "Remove the clamp: softplus/log-sigmoid forms are finite at every logit.", ("logits",)))
    m += [  # conventions last: at equal fit, a precision mechanism is the likelier one
        Mechanism("alpha_zero_off", "alpha", "zero_off", "convention",
                  "α = 0 is read as 'no α weighting' (ultralytics FocalLoss: `if (alpha > 0).any()`; Paddle "
                  "sigmoid_focal_loss: `if alpha != 0`): every element keeps weight 1 where the spec's α = 0 "
                  "gives the positives weight 0.",
                  "Declare the convention (α = 0 switches α off, --focal-alpha-off) or weight by "
                  "α_t = α·t + (1 − α)·(1 − t) for every α in [0, 1], α = 0 included."),
        Mechanism("alpha_swapped", "alpha", "swapped", "convention",
                  "α weights the wrong class: negatives get α and positives 1 − α.",
                  "α_t = α·t + (1 − α)·(1 − t): α belongs to the positive class (SPEC §2)."),
        Mechanism("detached", "detach", True, "convention",
                  "The factor (1 − p_t)^γ is detached (stop_gradient/.detach()): values are right, the gradient "
                  "lacks the factor's derivative.",
                  "Do not detach the modulating factor; differentiate through it (with a bounded backward)."),
    ]
    return tuple(m)


CATALOGUE: tuple[Mechanism, ...] = _catalogue()
BY_KEY: dict[str, Mechanism] = {m.key: m for m in CATALOGUE}
ORDER: dict[str, int] = {m.key: i for i, m in enumerate(CATALOGUE)}
# families with a free parameter (ε, a clamp) or that act on every element (conventions): at equal fit a
# model without them is preferred, as a fixed computation that reproduces the same elements is likelier
FLEXIBLE = frozenset(m.key for m in CATALOGUE if m.slot in ("clamp", "alpha", "detach") or isinstance(m.option, tuple))


# ----------------------------------------------------------------------------- evaluation


def working_dtype(model: dict[str, Any], dtype: str) -> tuple[str, str]:
    """(dtype the arithmetic runs in, dtype the result is rounded to)."""
    p = model.get("precision")
    if p == "float32" and dtype == "float64":
        return "float32", "float64"
    if p == "half" and dtype in ("float16", "bfloat16"):
        return dtype, dtype
    if dtype in ("float16", "bfloat16"):
        return "float32", dtype  # the right way: float32 inside, one rounding at the end
    return dtype, dtype


def evaluate(model: dict[str, Any], x: np.ndarray, t: np.ndarray, v: dict[str, Any], dtype: str,
             sigmoid: str = "formula") -> D:  # fmt: skip
    """Per-element loss (value and derivative in x) of ``model`` at rounded inputs ``x``, targets ``t``;
    ``sigmoid``: how the platform rounds σ (``Ops``)."""
    with np.errstate(all="ignore"):
        d = _evaluate(model, x, t, v, dtype, sigmoid)
    shape = np.shape(x)
    return D(np.broadcast_to(d.v, shape).astype(np.float64), np.broadcast_to(d.d, shape).astype(np.float64))


def _evaluate(model: dict[str, Any], x: np.ndarray, t: np.ndarray, v: dict[str, Any], dtype: str,
              sigmoid: str) -> D:  # fmt: skip
    work, out = working_dtype(model, dtype)
    ar = Arith(work)
    o = Ops(ar, sigmoid)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    g = float(v.get("gamma") or 0.0)
    probs = v.get("input_kind") == "probs"
    xd = D(ar.r(x), np.ones_like(x))
    if model.get("clamp") is not None and not probs:
        lim = float(model["clamp"])
        xd = o.clip(xd, -lim, lim)
    ce_kind = model.get("ce", "stable")
    declared = v.get("clip_eps")
    if probs:
        p = xd
        q = o.sub(1.0, p)
    else:
        p = o.sigmoid(xd)
        q = o.sigmoid(o.neg(xd))
    if declared is not None:  # the declared clip (SPEC §3), bounds formed in the working dtype
        eps = float(declared)
        hi = float(v.get("clip_upper") or 1.0 - eps)
        if model.get("bound") in ("rounded", "torch_bce"):  # Keras: clip(p, ε, 1 − ε), 1 − ε in the dtype, 1 − p
            pc = o.clip(p, eps, hi)
            qc = o.sub(1.0, pc)
        else:  # the declared bounds exactly (the complement clipped on its own: no 1 − p)
            pc = o.clip(p, eps, hi, exact=True)
            qc = o.clip(q, 1.0 - hi, 1.0 - eps, exact=True)
    else:
        pc, qc = p, q
    scope_all = v.get("clip_scope", "all") != "ce"
    fp, fq = (pc, qc) if scope_all else (p, q)
    # the factor 1 − p_t
    if model.get("factor") == "one_minus_exp_ce":  # smp: p_t = exp(−CE), 1 − p_t by subtraction
        m = None
    elif model.get("factor") == "one_minus_p":
        pt = o.add(o.mul(fp, t), o.mul(o.sub(1.0, fp), o.sub(1.0, _c(ar, t, x))))
        m = o.sub(1.0, pt)
    else:
        m = o.add(o.mul(fq, t), o.mul(fp, o.sub(1.0, _c(ar, t, x))))
    # the cross-entropy
    one_t = o.sub(1.0, _c(ar, t, x))
    if isinstance(ce_kind, tuple):
        how, eps = ce_kind
        if how == "eps":
            ce = o.neg(o.add(o.mul(o.log(o.add(pc, eps)), t), o.mul(o.log(o.add(o.sub(1.0, pc), eps)), one_t)))
        else:
            hi = float(ar.r(np.float64(1.0 - eps)))
            pcc = o.clip(pc, eps, hi)
            ce = o.neg(o.add(o.mul(o.log(pcc), t), o.mul(o.log(o.sub(1.0, pcc)), one_t)))
    elif ce_kind == "naive_log":
        ce = o.neg(o.add(o.mul(o.log(pc), t), o.mul(o.log(o.sub(1.0, pc)), one_t)))
    elif ce_kind == "bce_formula" and not probs:  # x − x·t − log_sigmoid(x) written out, autodiff (MONAI)
        ce = o.sub(o.sub(xd, o.mul(xd, t)), o.log_sigmoid(xd))
    elif ce_kind == "torch_bce" and not probs:
        ce = o.sub(o.mul(one_t, xd), o.log_sigmoid(xd))
        # its backward is σ(x) − t, one kernel (derivatives.yaml), not the product rule of the forward, with
        # the platform's σ (torch float32: 1/(1 + e^{−x}) is 1 from x = 16.6355, so the gradient there is 0)
        ce = D(ce.v, ar.r(ar.r(o.sigmoid(D(xd.v, np.zeros_like(xd.v))).v) - t) * xd.d)
    elif ce_kind == "tf_sce" and not probs:
        relu = o.where(xd.v >= 0, xd, _c(ar, 0.0, x))
        nabs = o.where(xd.v >= 0, o.neg(xd), xd)
        ce = o.add(o.sub(relu, o.mul(xd, t)), o.log1p(o.exp(nabs)))
    elif probs:
        lq = o.log1p(o.neg(pc)) if declared is None else o.log(qc)
        ce = o.neg(o.add(o.mul(o.log(pc), t), o.mul(lq, one_t)))
    else:
        ce = o.add(o.mul(o.softplus(o.neg(xd)), t), o.mul(o.softplus(xd), one_t))
        if declared is not None:  # clipped probabilities inside the log
            ce = o.neg(o.add(o.mul(o.log(pc), t), o.mul(o.log(qc), one_t)))
    if declared is not None and model.get("bound") == "torch_bce":
        ce = _torch_bce(ar, pc, t)
    if m is None:
        m = o.sub(1.0, o.exp(o.neg(ce)))
    if model.get("factor") == "where_branches":  # focal-loss (TF): where(t, (1 − p)^γ, p^γ), both computed
        auto = model.get("pow") == "autodiff"
        pos, neg = o.pow(o.sub(1.0, fp), g, auto), o.pow(fp, g, auto)
        sel = t == 1
        d = np.where(sel, pos.d, neg.d)
        # reverse mode sends 0 to the branch not taken, and 0 · NaN (its power's derivative at 0) is NaN
        d = np.where(np.isnan(np.where(sel, neg.d, pos.d)), np.nan, d)
        f = D(np.where(sel, pos.v, neg.v), d)
    elif model.get("factor") == "exp_logsig" and not probs:
        s_x = o.mul(xd, _c(ar, 1.0 - 2.0 * t, x))  # −s·x
        f = o.exp(o.mul(o.log_sigmoid(s_x), g))
    else:
        f = o.pow(m, g, model.get("pow") == "autodiff")
    if model.get("detach"):
        f = D(f.v, np.zeros_like(f.d))
    loss = o.mul(f, ce) if g or model.get("pow") == "autodiff" else ce
    a = v.get("alpha")
    if a is not None and not isinstance(a, list | tuple) and float(a) >= 0:
        a = float(a)
        at = a * t + (1 - a) * (1 - t) if model.get("alpha") != "swapped" else (1 - a) * t + a * (1 - t)
        if not (model.get("alpha") == "zero_off" and a == 0):
            loss = o.mul(loss, at)
    if out != work:
        loss = D(Arith(out).r(loss.v), Arith(out).r(loss.d))
    return loss


def _torch_bce(ar: Arith, p: D, t: np.ndarray) -> D:
    """torch.nn.functional.binary_cross_entropy on probabilities (aten Loss.cpp): each log clamped at
    −100, log(1 − p) as log1p(−p); its backward one kernel, (p − t)/max(p(1 − p), 1e−12)."""
    r = ar.r
    lp, lq = np.maximum(r(np.log(p.v)), -100.0), np.maximum(r(np.log1p(-p.v)), -100.0)
    v = r(r(r(t - 1.0) * lq) - r(t * lp))
    d = r(r(r(p.v - t) / np.maximum(r(p.v * r(1.0 - p.v)), 1e-12)) * p.d)
    return D(v, d)


# ----------------------------------------------------------------------------- explanation


@dataclass
class Explanation:
    """Per element: the cause, the mechanism keys of the reproducing model, whether it reproduced."""

    cause: list[str | None]
    keys: list[tuple[str, ...]]
    exact: list[bool]
    models: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)


def _model(keys: tuple[str, ...]) -> dict[str, Any] | None:
    m = dict(SPEC_MODEL)
    slots = set()
    for k in keys:
        mech = BY_KEY[k]
        if mech.slot in slots:
            return None
        slots.add(mech.slot)
        m[mech.slot] = mech.option
    return m


def _ulp(v: np.ndarray, dtype: str) -> np.ndarray:
    fmt = get_format(dtype)
    with np.errstate(all="ignore"):
        a = np.where(np.isfinite(v) & (v != 0), np.abs(v), fmt.smallest_normal)
        return np.exp2(np.floor(np.log2(np.maximum(a, fmt.smallest_normal))) - (fmt.precision - 1))


def residual(pred: np.ndarray, got: np.ndarray) -> np.ndarray:
    """|got − pred|, 0 where both are the same non-finite value, ∞ where only one is finite."""
    with np.errstate(all="ignore"):
        same_nf = (np.isnan(pred) & np.isnan(got)) | ((pred == got) & ~np.isfinite(got))
        r = np.abs(got - pred)
        r = np.where(same_nf, 0.0, r)
        return np.where(np.isnan(r), np.inf, r)


def applicable(v: dict[str, Any], dtype: str, moderate: bool = True) -> list[str]:
    """Mechanisms that can act on this variant and dtype (``moderate``: failing elements at moderate inputs)."""
    kind = str(v.get("input_kind") or "logits")
    g = float(v.get("gamma") or 0.0)
    out = []
    for mech in CATALOGUE:
        if kind not in mech.kinds:
            continue
        if mech.key == "precision_float32" and dtype != "float64":
            continue
        if mech.key == "precision_half" and dtype not in ("float16", "bfloat16"):
            continue
        if mech.slot == "detach" and g == 0:
            continue
        # (γ = 0 keeps the factor mechanisms: 1 − p_t still acts through autodiff of its zeroth power)
        if mech.key == "pow_autodiff" and not 0 <= g < 1:
            continue
        if mech.slot == "alpha" and (v.get("alpha") is None or isinstance(v.get("alpha"), list | tuple)):
            continue
        if mech.key == "alpha_zero_off" and float(v.get("alpha")) != 0.0:  # type: ignore[arg-type]
            continue
        if mech.slot == "ce" and v.get("clip_eps") is not None and mech.key != "naive_log":
            continue
        if mech.slot == "bound" and v.get("clip_eps") is None:
            continue
        if mech.slot in ("alpha", "detach") and not moderate:
            continue  # a convention changes every element: moderate inputs, or both classes, fail too
        out.append(mech.key)
    return out


def explain(x: np.ndarray, t: np.ndarray, got: np.ndarray, expected: np.ndarray, which: str,
            v: dict[str, Any], dtype: str) -> Explanation:  # fmt: skip
    """The smallest model of mechanisms that reproduces ``got`` at each element, and its cause."""
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    n = x.size

    def run(keys: tuple[str, ...], mode: str) -> np.ndarray:
        if (keys, mode) not in per_mode:
            d = evaluate(_model(keys) or SPEC_MODEL, x, t, v, dtype, mode)
            per_mode[keys, mode] = (d.v if which == "value" else d.d) * scale
        return per_mode[keys, mode]

    def pred(keys: tuple[str, ...]) -> np.ndarray | None:
        """The model's result per element, with the σ rounding (platform) that comes nearest to got."""
        if _model(keys) is None:
            return None
        if keys not in cache:
            modes = ("formula", "rounded", "ratio", "steps")
            if any(k in FLEXIBLE for k in keys):  # ε, clips, conventions: σ's last bit does not decide them
                modes = ("rounded",)
            modes = modes if dtype in ("float16", "bfloat16") else modes[:3]
            outs = np.stack([run(keys, mode) for mode in modes])
            pick = np.argmin(np.stack([residual(o_, got) for o_ in outs]), axis=0)
            cache[keys] = np.take_along_axis(outs, pick[None], axis=0)[0]
            chosen[keys] = np.asarray(modes)[pick]
        return cache[keys]

    def pred_as(keys: tuple[str, ...], like: tuple[str, ...], i: int) -> float | None:
        """Element i of a model in the platform's σ rounding that ``like`` was reproduced with."""
        if _model(keys) is None:
            return None
        mode = str(chosen[like][i]) if like in chosen else "rounded"
        return float(run(keys, mode if not any(k in FLEXIBLE for k in keys) else "rounded")[i])

    per_mode: dict[tuple[tuple[str, ...], str], np.ndarray] = {}
    chosen: dict[tuple[str, ...], np.ndarray] = {}
    cache: dict[tuple[str, ...], np.ndarray] = {}
    # the check's scale (1/n of a mean, a gradient's upstream factor): expected over the spec's own value
    with np.errstate(all="ignore"):
        ref = evaluate(SPEC_MODEL, x, t, v, "float64")
        base = ref.v if which == "value" else ref.d
        ratio = expected / base
    ok = np.isfinite(ratio) & (ratio != 0)
    scale = float(np.median(ratio[ok])) if ok.any() else 1.0
    if ok.any() and abs(scale - 1.0) < 1e-6:
        scale = 1.0
    err = residual(expected, got)
    # what still passes at an element: the acceptable budget of one element (SPEC §10.3; 16 u in bfloat16 at
    # γ = 2, 512 u in float32), at most 256 u, for telling which reversal leaves a right answer (``attribute``)
    g = float(v.get("gamma") or 0.0)
    pass_bound = min(256.0, budget(dtype, g).acceptable) * get_format(dtype).unit_roundoff * np.abs(expected)
    # reproduced: within a few ulps of the dtype (kernels' last-bit differences), or 2 % of the error
    tol = np.maximum(3 * _ulp(got, dtype), 0.02 * np.where(np.isfinite(err), err, 0.0))
    if dtype == "float64":  # a float32 working dtype: its results are float32 numbers, to its own few ulps
        is32 = np.isfinite(got) & (got.astype(np.float32).astype(np.float64) == got)
        tol32 = np.where(is32, np.maximum(tol, 8 * _ulp(got, "float32")), tol)
    else:
        tol32 = tol
    spec = pred(())
    assert spec is not None
    r_spec = residual(spec, got)
    probs = v.get("input_kind") == "probs"
    moderate = bool(np.any((x >= 0.02) & (x <= 0.98))) if probs else bool(np.any(np.abs(x) <= 4.0))
    moderate = moderate or bool(np.any(t == 0.0) and np.any(t == 1.0))  # or both classes fail
    singles = [(k,) for k in applicable(v, dtype, moderate)]

    def inert(keys: tuple[str, ...]) -> bool:
        """γ = 0: (1 − p_t)^0 = 1, so a factor mechanism changes nothing unless autodiff of the power is in
        the model (0·0^{−1}); alone it only copies the model without it and must not take its elements."""
        return g == 0 and "pow_autodiff" not in keys and any(BY_KEY[k].slot == "factor" for k in keys)

    res = {(): r_spec}
    naive = pred(("naive_log",)) if ("naive_log",) in singles else None
    for k in singles:
        p = None if inert(k) else pred(k)
        if p is None:
            continue
        if naive is not None and k[0].startswith("eps_") and bool(np.all(residual(p, naive) == 0)):
            continue  # an ε the dtype absorbs everywhere here is the naive log itself
        res[k] = residual(p, got)
    # pairs and triples of the mechanisms that explain part of the error somewhere, and of the
    # framework primitives and working dtypes that only show together with another mechanism
    helpful = sorted((k for k in singles if k in res and np.any(res[k] < 0.9 * np.minimum(r_spec, err))),
                     key=lambda k: float(np.sum(np.minimum(res[k], 1e300))))[:6]  # fmt: skip
    always = [k for k in singles if BY_KEY[k[0]].slot in ("precision", "pow", "factor", "bound")
              or k[0] in ("torch_bce", "tf_sce", "naive_log", "bce_formula")]  # fmt: skip
    cands = list(dict.fromkeys(always + [k for k in helpful if k not in always][:4]))
    def score(k: tuple[str, ...]) -> tuple[int, float]:
        with np.errstate(all="ignore"):
            return -int(np.sum(res[k] <= tol)), float(np.sum(np.minimum(res[k], 1e300) / np.maximum(err, 1e-300)))

    for combo in itertools.combinations(cands, 2):
        keys = tuple(sorted(sum(combo, ()), key=ORDER.__getitem__))
        p = None if inert(keys) else pred(keys)
        if p is not None:
            res[keys] = residual(p, got)
    # triples: the best pairs, each extended by one more mechanism; and the framework forms with a
    # working dtype or autodiff of the power (the common real combinations)
    base_pairs = [k for k in res if len(k) == 2 and {BY_KEY[m].slot for m in k} <= {"factor", "ce", "precision"}]
    for pair in sorted((k for k in res if len(k) == 2), key=score)[:6] + base_pairs:
        for (k,) in cands:
            keys = tuple(sorted({*pair, k}, key=ORDER.__getitem__))
            if len(keys) == 3 and keys not in res and not inert(keys) and (p := pred(keys)) is not None:
                res[keys] = residual(p, got)
    # one implementation, one model: the models that reproduce most of the check's elements come
    # first (then fewer mechanisms, then the catalogue's order: framework forms before conventions)
    hits = {k: res[k] <= (tol32 if "precision_float32" in k else tol) for k in res if k}
    ranked = sorted(hits, key=lambda k: (-int(hits[k].sum()), sum(m in FLEXIBLE for m in k), len(k),
                                         sum(ORDER[m] for m in k)))  # fmt: skip
    causes: list[str | None] = []
    keys_out: list[tuple[str, ...]] = []
    exact: list[bool] = []
    for i in range(n):
        # a NaN/∞ at a finite input: autodiff of the power at 0 (0 < γ < 1) is the common producer,
        # preferred where it reproduces (−log(0)·0 of a naive log reproduces a lone NaN just as well)
        first = [k for k in ranked if "pow_autodiff" in k] if not math.isfinite(got[i]) else []
        best = next((k for k in first + ranked if hits[k][i]), None)
        repro = best is not None
        if best is None:  # else the model that explains the largest share (at least half) of the error
            k = min(ranked, key=lambda k: (res[k][i], len(k)), default=None)
            if k is not None and res[k][i] <= 0.5 * err[i] and res[k][i] < r_spec[i]:
                best = k
        if best is None:
            causes.append(None)
            keys_out.append(())
            exact.append(False)
            continue
        causes.append(attribute(best, i, got, expected, pred_as, passing=pass_bound[i]))
        full = pred_as(best, best, i)
        # shown: the mechanisms that change the result at this element (a framework form that agrees
        # with the stable one there is not part of the explanation)
        keys_out.append(tuple(k for k in best if len(best) == 1 or not _same(pred_as(tuple(m for m in best if m != k),
                                                                                    best, i), full)) or best)
        exact.append(repro)
    return Explanation(causes, keys_out, exact, cache)


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and (a == b or (math.isnan(a) and math.isnan(b)))


def attribute(best: tuple[str, ...], i: int, got: np.ndarray, expected: np.ndarray, pred_as: Any,
              passing: float = 0.0) -> str:
    """The cause within a reproducing model: the mechanism whose reversal to the stable form removes
    the most error (|got − expected| − |without it − expected|, in the same platform rounding); a
    non-finite result that reverting autodiff of the power makes finite is that power's.  Where several
    reversals remove nearly all the error, one that leaves a passing result (within ``passing``) wins over
    one that does not: float64 inputs computed in float32 with a naive 1 − p are the working dtype's
    defect, since a stable form in float32 still fails float64."""
    if len(best) == 1:
        return BY_KEY[best[0]].cause
    err = float(residual(expected[i : i + 1], got[i : i + 1])[0])
    shares: dict[str, float] = {}
    left_after: dict[str, float] = {}
    for k in best:
        p = pred_as(tuple(m for m in best if m != k), best, i)
        if p is None:
            continue
        left = float(residual(expected[i : i + 1], np.array([p]))[0])
        if not math.isfinite(err):
            if k == "pow_autodiff" and math.isfinite(left):
                return BY_KEY[k].cause
            shares[k] = math.inf if math.isfinite(left) else 0.0
        else:
            shares[k] = err - left
            left_after[k] = left
    if not shares:
        return BY_KEY[best[0]].cause
    # a mechanism whose reversal alone removes (nearly) all the error is the defect; where several do, the
    # formula's comes before the working dtype's (a stable form computed op by op in a half type passes)
    whole = [k for k in best if shares.get(k, -math.inf) >= 0.9 * err]
    whole.sort(key=lambda k: BY_KEY[k].slot == "precision")
    if whole:
        right = [k for k in whole if left_after.get(k, math.inf) <= passing]
        return BY_KEY[(right or whole)[0]].cause
    top = max(shares.values())
    return next(BY_KEY[k].cause for k in best if shares.get(k) == top)


def mechanism_detail(keys: tuple[str, ...], cause: str) -> str:
    """The explanation and fix of the mechanism behind ``cause`` in a reproducing model."""
    for k in keys:
        if BY_KEY[k].cause == cause:
            return BY_KEY[k].key
    return ""
