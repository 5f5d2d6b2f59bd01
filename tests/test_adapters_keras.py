"""Keras 3 focal losses on tensorflow (in-process), jax and torch (worker subprocesses).

Each adapter must agree with the mpmath reference for the variant it *declares* (what Keras
computes on that backend, see ``adapters/thirdparty/keras_adapter.py``) on moderate inputs, at the
'acceptable' grade or better in float32.  Outside the moderate range Keras departs from its
own declared variant; ``test_known_keras_departures`` pins the smallest such inputs so that
a fix upstream (or a regression) is noticed.
"""

from __future__ import annotations

import numpy as np
import pytest
from ref_support import timed_matches_run

pytest.importorskip("keras")

from focalspec.adapters.base import AdapterError
from focalspec.adapters.thirdparty.keras_adapter import KerasBinaryAdapter, KerasFocalAdapter, keras_adapters
from focalspec.reference import exact as mpref
from focalspec.reference.rounding import round_array
from focalspec.spec.tolerance import budget, error_in_u
from focalspec.spec.variant import Variant

ADAPTERS = {a.name: a for a in keras_adapters()}
BINARY = [n for n in ADAPTERS if "binary" in n]
CATEGORICAL = [n for n in ADAPTERS if "categorical" in n]
GAMMAS = [0.0, 0.5, 2.0]
MODERATE_X = np.array([-4.0, -2.0, -0.5, 0.0, 0.5, 2.0, 4.0])
MODERATE_P = np.array([0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98])


def usable(name: str) -> KerasFocalAdapter:
    a = ADAPTERS[name]
    reason = a.unavailable_reason()
    if reason:
        pytest.skip(reason)
    assert isinstance(a, KerasFocalAdapter)
    return a


def rounded(values: object, dtype: str) -> np.ndarray:
    arr = np.asarray(values)
    return arr if arr.dtype.kind in "iub" else round_array(mpref.to_mpf_array(arr.astype(np.float64)), dtype)


def errors(a: KerasFocalAdapter, v: Variant, x: object, t: object, dtype: str, mode: str) -> tuple[np.ndarray, ...]:
    """(value error, gradient error, loss, grad) against mpmath at the dtype-rounded inputs."""
    xr, tr = rounded(x, dtype), rounded(t, dtype)
    out = a.run(v, xr, tr, dtype, mode=mode)
    ref = mpref.evaluate(v, xr, tr)
    exact = round_array(ref.losses if v.reduction == "none" else np.array(ref.value, dtype=object), dtype)
    assert out.grad is not None and out.loss.shape == exact.shape, (out.loss.shape, exact.shape)
    ev = error_in_u(out.loss, exact, np.abs(exact), dtype)
    eg = error_in_u(out.grad, ref.grad.astype(np.float64), ref.grad_scale.astype(np.float64), dtype)
    return ev, eg, out.loss, out.grad


def check(a: KerasFocalAdapter, v: Variant, x: object, t: object, dtype: str, mode: str) -> None:
    assert a.supports(v, dtype, "cpu", mode) is None, a.supports(v, dtype, "cpu", mode)
    n = int(np.asarray(x).size) if v.reduction != "none" else 1
    limit = budget(dtype, v.gamma, n).acceptable
    ev, eg, _, _ = errors(a, v, x, t, dtype, mode)
    assert ev.max(initial=0) <= limit and eg.max(initial=0) <= limit, (
        f"{a.name} {v.label()} {dtype} {mode}: value err {np.round(ev, 1).tolist()} "
        f"grad err {np.round(eg, 1).tolist()} > {limit} u"
    )


def binary_variant(a: KerasFocalAdapter, **kw: object) -> Variant:
    assert isinstance(a, KerasBinaryAdapter)
    v = Variant(**kw)  # type: ignore[arg-type]
    clip = a.declared_clip(v)
    return v.with_(clip_eps=clip, clip_scope="all" if clip is None else "ce")


@pytest.mark.parametrize("name", BINARY)
def test_binary_declared_variant_moderate_inputs(name: str) -> None:
    a = usable(name)
    t_hard = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    for mode in a.modes:
        for g in GAMMAS:
            for alpha in (None, 0.25):
                check(a, binary_variant(a, gamma=g, alpha=alpha), MODERATE_X, t_hard, "float32", mode)
        check(a, binary_variant(a, gamma=2.0, alpha=0.25), MODERATE_X, np.full(7, 0.3), "float32", mode)
        check(a, binary_variant(a, gamma=2.0, alpha=None, label_smoothing=0.1), MODERATE_X, t_hard, "float32", mode)
        for red in ("sum", "mean"):
            check(a, binary_variant(a, gamma=2.0, alpha=0.25, reduction=red), MODERATE_X.reshape(7, 1),
                  t_hard.reshape(7, 1), "float32", mode)
        probs = binary_variant(a, input_kind="probs", gamma=2.0, alpha=0.25)
        check(a, probs, MODERATE_P, t_hard, "float32", mode)
        check(a, probs.with_(gamma=0.5), MODERATE_P.reshape(7, 1), np.full((7, 1), 0.3), "float32", mode)


@pytest.mark.parametrize("name", CATEGORICAL)
def test_categorical_declared_variant_moderate_inputs(name: str) -> None:
    a = usable(name)
    z = np.array([[2.0, -1.0, 0.5, 0.0], [-0.5, 0.25, 3.0, -2.0], [0.1, 0.2, 0.3, 0.4]])
    cls = np.array([0, 1, 3])
    p = np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.4, 0.1], [0.05, 0.05, 0.2, 0.7]])
    for mode in a.modes:
        for g in GAMMAS:
            v = Variant(activation="softmax", gamma=g, alpha=0.25, clip_eps=1e-7)
            check(a, v, z, cls, "float32", mode)
        check(a, v.with_(alpha=(0.1, 0.2, 0.3, 0.4)), z, cls, "float32", mode)
        check(a, v.with_(label_smoothing=0.1, reduction="mean"), z, cls, "float32", mode)
        check(a, v.with_(reduction="sum"), z, cls, "float32", mode)
        dist = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.2, 0.8, 0.0], [0.25, 0.25, 0.25, 0.25]])
        check(a, v, z, dist, "float32", mode)
        check(a, v.with_(input_kind="probs", renormalize=True), p, cls, "float32", mode)
        check(a, v.with_(input_kind="probs", renormalize=True, gamma=0.5), p * 0.8, cls, "float32", mode)


def test_unsupported_combinations_give_reasons() -> None:
    expect = {
        ("keras-binary-tf", Variant(clip_eps=1e-7)): "_keras_logits",
        ("keras-binary-jax", Variant()): "clips the probability",
        ("keras-binary-torch", Variant(input_kind="probs")): "clips the probability",
        ("keras-binary-jax", Variant(clip_eps=1e-7, reduction="normalized")): "#positives",
        ("keras-binary-tf", Variant(soft_target="margin")): "canonical soft targets only",
        ("keras-binary-tf", Variant(activation="softmax")): "sigmoid focal loss",
        ("keras-categorical-tf", Variant(activation="softmax", alpha=None, clip_eps=1e-7)): "alpha=1.0",
        ("keras-categorical-jax", Variant(activation="softmax")): "clip_eps=1e-07",
        ("keras-categorical-torch", Variant(activation="softmax", input_kind="probs", clip_eps=1e-7)): "renormalize",
        ("keras-categorical-tf", Variant()): "softmax focal loss",
    }
    for (name, v), text in expect.items():
        a = ADAPTERS[name]
        if a.unavailable_reason():
            continue
        reason = a.variant_reason(v)  # type: ignore[attr-defined]
        assert reason and text in reason and "\n" not in reason, (name, reason)
        with pytest.raises(AdapterError, match=r".+"):
            a.run(v, np.zeros((2, 3)), np.zeros(2, dtype=np.int64) if v.activation == "softmax" else np.zeros((2, 3)),
                  "float32")
    assert ADAPTERS["keras-binary-torch"].supports(Variant(clip_eps=1e-7), "float32", "cpu", "compiled")


@pytest.mark.parametrize("name", ["keras-binary-tf", "keras-binary-jax", "keras-binary-torch"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_zero_dimensional_half_inputs_come_back(name: str, dtype: str) -> None:
    """A 0-d input (the seed articles' single-probability examples) in a half type: a 0-d
    bfloat16 EagerTensor cannot go through np.asarray; the adapter must still return the loss."""
    a = usable(name)
    v = Variant(input_kind="probs", gamma=2.0, alpha=0.25, clip_eps=1e-7, clip_scope="ce")
    out = a.run(v, np.array(0.94921875), np.array(1.0), dtype)
    assert out.loss.shape == () and out.grad is not None and out.grad.shape == ()
    exact = float(mpref.evaluate(v, np.array([0.94921875]), np.array([1.0])).losses[0])
    assert out.loss == pytest.approx(exact, rel=2 ** -7)


def test_case_variants_are_graded_against_what_keras_computes() -> None:
    """The suite maps a case onto Keras's declared convention (its clip, renormalised
    probability rows, alpha=None as 1.0) instead of skipping it; a different stated clip stays
    and is refused with the reason."""
    from focalspec.conformance.suite.runner import resolve_variant

    keras_clip = Variant(clip_eps=1e-7, clip_scope="ce")
    assert resolve_variant(ADAPTERS["keras-binary-jax"], Variant(), "float32") == keras_clip
    stated = Variant(clip_eps=1e-7, clip_upper=1.0 - 2.0**-23)  # a case that states Keras's float32 bound
    assert resolve_variant(ADAPTERS["keras-binary-torch"], stated, "float32") == stated.with_(clip_scope="ce")
    assert resolve_variant(ADAPTERS["keras-binary-tf"], Variant(), "float32") == Variant()
    assert resolve_variant(ADAPTERS["keras-binary-tf"], Variant(input_kind="probs"), "float32").clip_eps == 1e-7
    smx = Variant(activation="softmax", alpha=None, input_kind="probs")
    got = resolve_variant(ADAPTERS["keras-categorical-torch"], smx, "float32", np.zeros((2, 3)))
    assert (got.clip_eps, got.alpha, got.renormalize) == (1e-7, 1.0, True)
    assert resolve_variant(ADAPTERS["keras-categorical-tf"], Variant(), "float32") == Variant()
    other = Variant(clip_eps=1e-3)
    assert resolve_variant(ADAPTERS["keras-binary-jax"], other, "float32") == other
    assert "clip" in (ADAPTERS["keras-binary-jax"].variant_reason(other) or "")  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", BINARY)
def test_binary_beyond_the_clip_is_graded_with_the_clip_in_the_bce_only(name: str) -> None:
    """Probabilities beyond the lower clip with y = 1: Keras's BCE is the constant -log(1e-7)
    there, but its factor (1 - p_t)**gamma = (1 - p)**gamma still moves with p, so the gradient
    is -gamma (1 - p)**(gamma - 1) alpha (-log 1e-7), not 0.  The declared variant (clip_scope
    'ce') says exactly that and Keras passes; clipping p everywhere would call it wrong."""
    from focalspec.conformance.suite.runner import resolve_variant

    a = usable(name)
    p, y = np.array([0.0, 1e-9, 3e-8]), np.ones(3)
    for g in (0.5, 2.0):
        v = resolve_variant(a, Variant(input_kind="probs", gamma=g, alpha=0.25), "float32")
        assert (v.clip_eps, v.clip_scope) == (1e-7, "ce")
        check(a, v, p, y, "float32", "eager")
        out = a.run(v, rounded(p, "float32"), y, "float32")
        everywhere = mpref.evaluate(v.with_(clip_scope="all"), rounded(p, "float32"), y)
        assert np.all(everywhere.grad == 0) and np.all(np.abs(out.grad) > 1), (out.grad, everywhere.grad)
    with pytest.raises(AdapterError, match="clip_scope"):
        a.run(Variant(input_kind="probs", clip_eps=1e-7), p, y, "float32")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_worker_survives_errors_and_reports_what_ran(backend: str) -> None:
    a = usable(f"keras-binary-{backend}")
    v = binary_variant(a, gamma=2.0, alpha=0.25)
    with pytest.raises(AdapterError) as info:
        a.run(v, np.zeros(3), np.zeros(4), "float32")  # Keras rejects mismatched shapes inside the worker
    assert "\n" not in str(info.value)
    out = a.run(v, np.array([0.5, -1.0]), np.array([1.0, 0.0]), "float64")
    assert out.ran["framework"] == backend and out.ran["keras"] and out.ran["worker_start_seconds"] > 0
    assert out.ran["dtype"] == "float64" and out.loss.shape == (2,)
    if backend == "jax":
        assert out.ran["jax_enable_x64"] is True
    if "cuda" not in a.devices():
        assert a.supports(v, "float32", "cuda", "eager") == "no CUDA device"


@pytest.mark.parametrize("name", ["keras-binary-tf", "keras-binary-jax"])
def test_shapes_scalar_and_empty(name: str) -> None:
    a = usable(name)
    v = binary_variant(a, gamma=2.0, alpha=0.25)
    out = a.run(v, np.array(0.5), np.array(1.0), "float32")
    assert out.loss.shape == () and out.grad is not None and out.grad.shape == ()
    # Keras departs from the spec on an empty batch: reduce_values returns a (0,)-shaped per-sample
    # tensor unreduced, so 'sum' is [] instead of 0 and 'mean' [] instead of NaN (0/0)
    for red in ("sum", "mean"):
        out = a.run(v.with_(reduction=red), np.zeros(0), np.zeros(0), "float32")
        assert out.loss.shape == (0,)


def test_inprocess_tensorflow_timed_path() -> None:
    a = usable("keras-binary-tf")
    v = binary_variant(a, gamma=2.0, alpha=0.25, reduction="mean")
    sets = [np.linspace(-3.0, 3.0, 32), np.linspace(-1.0, 5.0, 32)]
    t = (np.arange(32) % 2).astype(np.float64)
    for mode in a.modes:
        timed = timed_matches_run(a, v, sets, t, mode)
        assert timed.ran["framework"] == "tensorflow" and timed.ran["tensor_float_32"] is False


KERAS_CLIP = dict(clip_eps=1e-7, clip_scope="ce")  # Keras binary's clip: [1e-7, 1 - 1e-7], inside the BCE only

# Where Keras 3.15.1 departs from its own declared variant: (adapter, variant, x, t, dtype, value|grad, why)
DEPARTURES = [
    ("keras-binary-jax", dict(gamma=0.0, alpha=None, **KERAS_CLIP), [17.0], [0.0], "float32", "value",
     "clip at float32(1 - 1e-7) = 1 - 1.19e-7: -log(1.19e-7) = 15.94, declared -log(1e-7) = 16.12"),
    ("keras-binary-torch", dict(gamma=0.0, alpha=None, **KERAS_CLIP), [17.0], [0.0], "float32", "value",
     "clip at float32(1 - 1e-7) = 1 - 1.19e-7: -log(1.19e-7) = 15.94, declared -log(1e-7) = 16.12"),
    ("keras-binary-tf", dict(gamma=2.0, alpha=None), [17.0], [1.0], "float32", "value",
     "float32 sigmoid(17) is exactly 1 on TF, 1 - p_t = 1 - p = 0: loss 0 instead of 7.1e-23"),
    ("keras-binary-tf", dict(gamma=0.5, alpha=None), [20.0], [1.0], "float32", "grad",
     "d/dx (1 - p_t)**0.5 at 1 - p_t = 0: NaN"),
    ("keras-binary-tf", dict(gamma=0.0, alpha=None), [-18.0], [0.0], "float32", "grad",
     "even gamma = 0: pow(0, 0)' = 0 * 0**-1 = NaN"),
    ("keras-binary-jax", dict(gamma=0.5, alpha=None, **KERAS_CLIP), [20.0], [1.0], "float32", "grad",
     "d/dx (1 - p_t)**0.5 at 1 - p_t = 0: NaN"),
    ("keras-binary-jax", dict(gamma=0.0, alpha=None, **KERAS_CLIP), [16.0], [0.0], "float32", "grad",
     "sigmoid(16) rounds onto the clip bound; jnp.clip splits the tie: gradient 0.5 instead of 1"),
    ("keras-binary-jax", dict(gamma=2.0, alpha=None, **KERAS_CLIP), [0.5], [1.0], "float64", "value",
     "ops.mean computes in dtypes.result_type(float64, 'float32') = float32"),
    ("keras-binary-torch", dict(gamma=2.0, alpha=None, **KERAS_CLIP), [0.5], [1.0], "float64", "value",
     "ops.mean computes in dtypes.result_type(float64, 'float32') = float32"),
    ("keras-categorical-torch", dict(activation="softmax", gamma=0.0, alpha=1.0, clip_eps=1e-7), [[17.0, 0.0, -1.0]],
     [0], "float64", "value", "float64 clip bound 1 - 1e-7 rounded to float32: loss 1.19e-7 instead of 1e-7"),
]


@pytest.mark.parametrize(("name", "kw", "x", "t", "dtype", "what", "why"), DEPARTURES,
                         ids=[f"{d[0]}-{d[4]}-{d[5]}-x{d[2]}" for d in DEPARTURES])
def test_known_keras_departures(name: str, kw: dict, x: list, t: list, dtype: str, what: str, why: str) -> None:
    """Keras fails its own declared variant here (keras 3.15.1): ``why`` says how."""
    a = usable(name)
    v = Variant(**kw)
    assert a.supports(v, dtype, "cpu", "eager") is None
    ev, eg, loss, grad = errors(a, v, np.array(x), np.array(t), dtype, "eager")
    err = ev if what == "value" else eg
    assert not err.max() <= budget(dtype, v.gamma).acceptable, f"{name} now passes ({why}): {loss} {grad}"
