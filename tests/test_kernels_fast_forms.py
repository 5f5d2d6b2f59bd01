"""The fast forms of focalspec's own kernels (issue 29) against the mpmath reference.

A call of ``focalspec.kernels.torch_loss`` takes one of three paths for the canonical loss on
logits: eager with the data seen finite (``check=True``: the limit and NaN passes are
skipped), eager without that look (``check=False``), and compiled (one fused loop, the
ratio form of the gradient).  The TensorFlow kernel has the same eager/graph split.  Each
path must be accurate on its own, at hard and soft targets, with and without label smoothing,
over the whole range of logits; the number of element-wise passes the eager torch path runs is
pinned against torchvision's (a count, not a timing: timings belong to ``focalspec bench``).
"""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np
import pytest

from focalspec.reference import exact as ref
from focalspec.reference.exact import to_mpf_array
from focalspec.reference.rounding import round_array, round_mpf
from focalspec.spec.tolerance import budget, error_in_u, worst
from focalspec.spec.variant import Variant

XS = [-120.0, -60.0, -48.0, -45.0, -30.0, -17.0, -5.0, -1.0, -1e-8, 0.0, 1e-8, 0.5, 2.0, 17.0, 30.0, 40.0, 60.0, 120.0]
TARGETS = [0.0, 1.0, 0.3, 1e-6, 0.999]
CASES = [  # (gamma, alpha, label_smoothing): the specialised gammas 0 and 2, and the general path
    (2.0, 0.25, 0.0),
    (2.0, None, 0.1),
    (0.0, 0.25, 0.0),
    (0.5, 0.25, 0.0),
    (3.7, None, 0.05),
]


def _grid(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([xv for xv in XS for _ in TARGETS])
    t = np.array([tv for _ in XS for tv in TARGETS])
    return round_array(to_mpf_array(x), dtype), round_array(to_mpf_array(t), dtype)


def _exact(values: np.ndarray, dtype: str) -> np.ndarray:
    out = np.empty(values.shape)
    for i, v in np.ndenumerate(values):
        r = round_mpf(v, dtype)
        out[i] = r if math.isinf(r) or math.isnan(r) else float(v)
    return out


def _assert_accurate(loss: np.ndarray, grad: np.ndarray, v: Variant, x: np.ndarray, t: np.ndarray, dtype: str) -> None:
    exact = ref.evaluate(v, x, t)
    ev = _exact(exact.losses, dtype)
    eg = _exact(exact.grad, dtype)
    scale = np.array([float(s) for s in exact.grad_scale.ravel()])
    limit = budget(dtype, v.gamma).accurate
    for part, got, want, sc in (("value", loss, ev, ev), ("grad", grad, eg, scale)):
        err, i = worst(error_in_u(got, want, sc, dtype))
        assert err <= limit, (
            f"{v.label()} {dtype} {part}: {err:.3g} u at x={x[i]!r} t={t[i]!r}: {got[i]!r} vs {want[i]!r}"
        )


# ----------------------------------------------------------------------------- torch

try:
    import torch

    from focalspec.kernels import torch_loss as K
except ImportError:  # the TensorFlow tox env: the torch tests skip, the TensorFlow ones run
    torch = K = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed in this environment")


def _torch_run(fn: Any, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    dt = torch.float64 if dtype == "float64" else torch.float32
    xt = torch.tensor(x, dtype=dt, requires_grad=True)
    tt = torch.tensor(t, dtype=dt)
    loss = fn(xt, tt)
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    return loss.detach().double().numpy(), grad.double().numpy()


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("check", [True, False], ids=["seen-finite", "unchecked"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"g{c[0]}-a{c[1]}-ls{c[2]}")
def test_torch_eager_paths_accurate(dtype: str, check: bool, case: tuple[float, float | None, float]) -> None:
    gamma, alpha, ls = case
    v = Variant(gamma=gamma, alpha=alpha, label_smoothing=ls)
    x, t = _grid(dtype)

    def fn(xt: Any, tt: Any) -> Any:
        return K.sigmoid_focal_loss(xt, tt, gamma=gamma, alpha=alpha, label_smoothing=ls, check=check)

    _assert_accurate(*_torch_run(fn, x, t, dtype), v, x, t, dtype)


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=lambda c: f"g{c[0]}-a{c[1]}-ls{c[2]}")
def test_torch_compiled_fused_form_accurate(dtype: str, case: tuple[float, float | None, float]) -> None:
    gamma, alpha, ls = case
    v = Variant(gamma=gamma, alpha=alpha, label_smoothing=ls)
    x, t = _grid(dtype)
    compiled = torch.compile(
        lambda xt, tt: K.sigmoid_focal_loss(xt, tt, gamma=gamma, alpha=alpha, label_smoothing=ls), fullgraph=True
    )
    import torch._dynamo.config as dynamo_config

    # gamma and alpha as constants of the graph, as the adapter compiles them (torch 2.14 would
    # otherwise trace a float gamma as a symbolic input, which the argument checks cannot take)
    with dynamo_config.patch(specialize_float=True):
        _assert_accurate(*_torch_run(compiled, x, t, dtype), v, x, t, dtype)


@needs_torch
@pytest.mark.parametrize("via_f64", [True, False], ids=["via-float64", "native"])
def test_torch_log1p_unit_within_an_ulp(monkeypatch: pytest.MonkeyPatch, via_f64: bool) -> None:
    """The log1p of exp(-|x|) behind -log p and -log(1 - p), on either route (float64 where
    it measured faster than ATen's float32 log1p, native elsewhere): within 1 ulp of mpmath's over [0, 1],
    correctly rounded (0.5 ulp) on the float64 route."""
    import mpmath

    from focalspec.kernels import torch_exact_ops as ops

    monkeypatch.setattr(ops, "_F32_LOG1P_VIA_F64", via_f64)
    e = torch.cat([torch.tensor([0.0, 1e-45, 1e-30, 2.0**-24, 2.0**-23, 1e-3, 0.5, 1.0]), torch.rand(2000)])
    for inplace in (False, True):
        got = ops._log1p_unit(e.clone(), inplace=inplace).double().tolist()
        for ev, g in zip(e.double().tolist(), got, strict=True):
            want = mpmath.log1p(mpmath.mpf(ev))
            ulp = max(2.0 ** (math.frexp(float(want))[1] - 24), 2.0**-149)  # float32's, subnormals too
            limit = 0.5 if via_f64 else 1.0
            assert abs(mpmath.mpf(g) - want) <= limit * ulp, (ev, g, want)


@needs_torch
@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75, 0.375, 0.1, 0.01, 0.3])
def test_torch_alpha_weight_rounded_once(alpha: float) -> None:
    """alpha t + (1 - alpha)(1 - t) at hard and soft targets: correctly rounded at t in {0, 1} and
    on the two-pass form (alpha 0.25, 0.5, 0.75, 0.375: one rounding), within 1.5 ulp else."""
    from fractions import Fraction

    from focalspec.kernels import torch_sigmoid as S

    t = torch.cat([torch.tensor([0.0, 1.0, 0.5, 1e-6, 0.999, 2.0**-140]), torch.rand(1000)])
    got = S._alpha_weight(t, alpha).tolist()
    a = Fraction(alpha)
    one_pass = alpha in (0.25, 0.5, 0.75, 0.375)
    for tv, g in zip(t.tolist(), got, strict=True):
        want = a * Fraction(tv) + (1 - a) * (1 - Fraction(tv))
        ulp = Fraction(2) ** (math.frexp(float(want))[1] - 24)
        limit = Fraction(1, 2) if one_pass or tv in (0.0, 1.0) else Fraction(3, 2)
        assert abs(Fraction(g) - want) <= limit * ulp, (tv, g, float(want))


@needs_torch
def test_torch_no_grad_call_same_value_without_autograd() -> None:
    """Without a gradient to compute the call skips the autograd.Function; the value is the same,
    bit for bit, as the one computed with the gradient (the value part is shared)."""
    x0, t = _detection_batch()
    x = x0.clone().requires_grad_(True)
    with_grad = K.sigmoid_focal_loss(x, t)
    assert with_grad.grad_fn is not None
    for plain in (K.sigmoid_focal_loss(x0, t), K.sigmoid_focal_loss(x.detach(), t)):
        assert plain.grad_fn is None and torch.equal(plain, with_grad.detach())
    with torch.no_grad():
        assert torch.equal(K.sigmoid_focal_loss(x, t), with_grad.detach())


@needs_torch
def test_torch_seen_finite_path_still_finds_inf_and_nan() -> None:
    """The look at the data decides the path: an inf or NaN anywhere takes the limit path."""
    x = torch.tensor([0.5, math.inf, -math.inf, math.nan, 3.0], requires_grad=True)
    t = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    loss = K.sigmoid_focal_loss(x, t, gamma=2.0, alpha=0.25)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert loss[1].item() == 0.0 and grad[1].item() == 0.0
    assert loss[2].item() == math.inf and grad[2].item() == pytest.approx(-0.25)
    assert math.isnan(loss[3].item()) and math.isnan(grad[3].item())
    assert math.isfinite(loss[4].item()) and math.isfinite(grad[4].item())
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]; found 1.5"):
        K.sigmoid_focal_loss(torch.zeros(3), torch.tensor([0.0, math.nan, 1.5]))
    nan_target = K.sigmoid_focal_loss(torch.zeros(2), torch.tensor([math.nan, 1.0]))
    assert math.isnan(nan_target[0].item()) and math.isfinite(nan_target[1].item())
    assert K.sigmoid_focal_loss(torch.zeros(0), torch.zeros(0), reduction="sum").item() == 0.0


_VIEWS = {"detach", "expand", "view", "alias", "lift_fresh", "t", "reshape", "_reshape_alias", "as_strided", "slice"}
_ALLOCATIONS = {"empty", "empty_like", "empty_strided"}  # no pass over memory


def _passes(fn: Any, n: int) -> collections.Counter[str]:
    """aten operations that read or write a tensor of ``n`` elements or more (views excluded):
    the element-wise passes over memory an eager call makes."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class Passes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: collections.Counter[str] = collections.Counter()

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            leaves = tree_leaves((args, kwargs, out))
            big = any(isinstance(a, torch.Tensor) and a.numel() >= n for a in leaves)
            if name not in _VIEWS | _ALLOCATIONS and big:
                self.ops[name] += 1
            return out

    with Passes() as counter:
        fn()
    return counter.ops


def _detection_batch() -> tuple[Any, Any]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 80, generator=gen) * 2 - 3
    t = (torch.rand(100, 80, generator=gen) < 0.02).float()
    return x, t


@needs_torch
def test_torch_eager_forward_backward_passes_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The canonical detection call (gamma 2, alpha 0.25, sum) makes 31 full-size aten calls
    forward and backward (22 forward): 2 aminmax (the data check, which also lets the limit and
    NaN passes go), 12 for p, 1 - p, -log p and -log(1 - p) from two sigmoids and one
    exp/log1p (the log1p taken in float64: 2 conversions, counted whatever route the CPU takes),
    2 lerp, the alpha weight (2), the products and the sum; no ``where``.  Before issue 29 it
    was 68 (41 forward).  An added pass fails here before it shows as a slowdown in
    ``focalspec bench``."""
    from focalspec.kernels import torch_exact_ops as ops

    monkeypatch.setattr(ops, "_F32_LOG1P_VIA_F64", True)  # the route with the 2 conversions: the larger count
    x0, t = _detection_batch()
    x = x0.clone().requires_grad_(True)

    def call() -> None:
        torch.autograd.grad(K.sigmoid_focal_loss(x, t, reduction="sum"), x)

    ops = _passes(call, x.numel())
    assert sum(ops.values()) <= 31, dict(ops)
    assert ops["aminmax"] == 2 and "where" not in ops and "isinf" not in ops, dict(ops)
    forward = _passes(lambda: K.sigmoid_focal_loss(x0, t, reduction="sum"), x0.numel())
    assert sum(forward.values()) <= 22, dict(forward)


@needs_torch
def test_torch_eager_passes_fewer_than_torchvision() -> None:
    """Counted the same way (its binary_cross_entropy_with_logits counts as one call, though
    it runs several loops inside), torchvision makes 32."""
    tvo = pytest.importorskip("torchvision.ops")
    x0, t = _detection_batch()
    counts = {}
    for name, fn in (("own", K.sigmoid_focal_loss), ("torchvision", tvo.sigmoid_focal_loss)):
        x = x0.clone().requires_grad_(True)

        def call(fn: Any = fn, x: Any = x) -> None:
            torch.autograd.grad(fn(x, t, reduction="sum"), x)

        counts[name] = sum(_passes(call, x.numel()).values())
    assert counts["own"] < counts["torchvision"], counts


# ----------------------------------------------------------------------------- tensorflow


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("case", [CASES[0], CASES[3]], ids=lambda c: f"g{c[0]}-a{c[1]}-ls{c[2]}")
def test_tf_eager_and_graph_paths_accurate(graph: bool, case: tuple[float, float | None, float]) -> None:
    tf = pytest.importorskip("tensorflow")
    from focalspec.kernels import tf_loss as ktf

    gamma, alpha, ls = case
    v = Variant(gamma=gamma, alpha=alpha, label_smoothing=ls)
    x, t = _grid("float32")

    def run(xv: Any, tv: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(xv)
            loss = ktf.sigmoid_focal_loss(xv, tv, gamma=gamma, alpha=alpha, label_smoothing=ls)
        return loss, tape.gradient(loss, xv)

    fn = tf.function(run) if graph else run
    loss, grad = fn(tf.constant(x, tf.float32), tf.constant(t, tf.float32))
    _assert_accurate(loss.numpy().astype(np.float64), grad.numpy().astype(np.float64), v, x, t, "float32")
