"""focalspec.kernels.triton_kernel under Triton's interpreter on CPU: values and gradients against the
mpmath reference (errors in units of the dtype's u), masks at ragged sizes, bad input, and the
focalspec-triton adapter's mode labels.  Expected values come from ``focalspec.reference.exact`` only."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the Triton kernel needs torch")
pytest.importorskip("triton", reason="triton is not installed here (it comes with torch's CUDA wheels)")

from focalspec.kernels import triton_kernel as kt  # noqa: E402
from focalspec.reference import exact as ref_mp  # noqa: E402
from focalspec.spec.tolerance import budget, error_in_u  # noqa: E402
from focalspec.spec.variant import Variant  # noqa: E402

DT = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# saturated correct and wrong logits, the middle, and soft targets
X = [-800.0, -120.0, -40.0, -17.0, -3.0, -0.5, 0.0, 1e-3, 0.7, 4.0, 17.0, 40.0, 120.0, 800.0]


def _case(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    xs = np.array(X * 3, dtype=np.float64)
    ts = np.array([1.0] * len(X) + [0.0] * len(X) + [0.3] * len(X))
    x = torch.from_numpy(xs).to(DT[dtype])  # dtype-exact values: the reference sees the rounded ones
    return x.double().numpy(), ts


def _grade(v: Variant, dtype: str, xs: np.ndarray, ts: np.ndarray) -> tuple[float, float]:
    """(worst value error, worst gradient error) in u of ``dtype`` for the kernel at (xs, ts)."""
    x = torch.from_numpy(xs).to(DT[dtype]).requires_grad_()
    t = torch.from_numpy(ts).to(DT[dtype])
    loss = kt.sigmoid_focal_loss(x, t, alpha=v.alpha, gamma=v.gamma, reduction=v.reduction)  # type: ignore[arg-type]
    (g,) = torch.autograd.grad(loss.sum(), x)
    ref = ref_mp.evaluate(v, xs, ts)
    exp_v = np.array([float(ref.value)]) if v.reduction != "none" else ref.losses.astype(np.float64)
    got_v = loss.detach().double().numpy().reshape(exp_v.shape)
    ev = error_in_u(got_v, _rounded(exp_v, dtype), np.abs(exp_v), dtype)
    eg = error_in_u(g.double().numpy(), ref.grad.astype(np.float64), ref.grad_scale.astype(np.float64), dtype)
    return float(ev.max()), float(eg.max())


def _rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """Where the exact value overflows the dtype, the expected result is its infinity."""
    return torch.from_numpy(a).to(DT[dtype]).double().numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 0.5, 2.7])
def test_elementwise_accurate(dtype: str, gamma: float) -> None:
    xs, ts = _case(dtype)
    if dtype == "float16":
        xs, ts = xs[np.abs(xs) < 60], ts[np.abs(xs) < 60]  # float16 holds these logits exactly
    v = Variant(gamma=gamma, alpha=0.25)
    ev, eg = _grade(v, dtype, xs, ts)
    limit = budget(dtype, gamma).accurate
    assert ev <= limit and eg <= limit, (ev, eg, limit)


@pytest.mark.parametrize("reduction", ["sum", "mean", "normalized"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reductions_accurate(reduction: str, dtype: str) -> None:
    xs, ts = _case(dtype)
    v = Variant(gamma=2.0, alpha=None, reduction=reduction)
    ev, eg = _grade(v, dtype, xs, ts)
    limit = budget(dtype, 2.0, n_reduced=xs.size).accurate
    assert ev <= limit and eg <= limit, (ev, eg, limit)


def test_float64_fractional_gamma_at_tiny_factor() -> None:
    """(1 - p_t)**gamma near exp(-180): exp(gamma log m) in float64 would be up to ~180 gamma u off."""
    xs = np.array([187.3, 151.37, 98.91, -182.13, -170.77])
    ts = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    v = Variant(gamma=2.7, alpha=None)
    ev, eg = _grade(v, "float64", xs, ts)
    assert ev <= 4 and eg <= 4, (ev, eg)


@pytest.mark.parametrize("n", [1, kt.BLOCK_INTERPRET - 1, kt.BLOCK_INTERPRET + 3])
def test_ragged_sizes_read_and_write_inside_the_tensor(n: int) -> None:
    """A view whose storage continues with NaN: lanes past n must neither be read into the
    sum nor written (the tail of the storage stays NaN, the sum stays finite)."""
    buf = torch.full((n + 64,), math.nan, dtype=torch.float32)
    buf[:n] = torch.linspace(-30, 30, n)
    x = buf[:n]
    t = (torch.arange(n) % 3 == 0).to(torch.float32)
    total = kt.sigmoid_focal_loss(x, t, reduction="sum")
    assert math.isfinite(float(total))
    ref = kt.sigmoid_focal_loss(x.clone(), t, reduction="none").double().sum()
    assert abs(float(total) - float(ref)) <= 1e-5 * float(ref)
    assert torch.isnan(buf[n:]).all()


def test_non_contiguous_gives_the_contiguous_answer() -> None:
    x = torch.linspace(-20, 20, 64, dtype=torch.float32).reshape(8, 8).t()
    t = (torch.arange(64).reshape(8, 8) % 2 == 0).to(torch.float32).t()
    assert not x.is_contiguous()
    got = kt.sigmoid_focal_loss(x, t)
    want = kt.sigmoid_focal_loss(x.contiguous(), t.contiguous())
    assert torch.equal(got, want)


def test_empty() -> None:
    x = torch.empty(0, 3, requires_grad=True)
    t = torch.empty(0, 3)
    assert kt.sigmoid_focal_loss(x, t).shape == (0, 3)
    assert float(kt.sigmoid_focal_loss(x, t, reduction="sum")) == 0.0
    assert math.isnan(float(kt.sigmoid_focal_loss(x, t, reduction="mean")))
    (g,) = torch.autograd.grad(kt.sigmoid_focal_loss(x, t, reduction="sum"), x)
    assert g.shape == (0, 3)


@pytest.mark.parametrize(
    ("x", "t", "kw", "match"),
    [
        (torch.zeros(3), torch.zeros(4), {}, "shape"),
        (torch.zeros(3, dtype=torch.int64), torch.zeros(3), {}, "float64, float32"),
        ([0.0], torch.zeros(1), {}, "torch.Tensor"),
        (torch.zeros(3), torch.full((3,), 2.0), {}, r"\[0, 1\]"),
        (torch.zeros(3), torch.zeros(3), {"reduction": "max"}, "reduction"),
        (torch.zeros(3), torch.zeros(3), {"gamma": -1.0}, "gamma"),
        (torch.zeros(3), torch.zeros(3, requires_grad=True), {}, "targets"),
    ],
)
def test_bad_input_is_one_line(x: object, t: object, kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        kt.sigmoid_focal_loss(x, t, **kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_integer_targets_and_forward_only_kernel() -> None:
    x = torch.tensor([-2.0, 0.5, 3.0])
    got = kt.sigmoid_focal_loss(x, torch.tensor([0, 1, 1]))
    want = kt.sigmoid_focal_loss(x.clone().requires_grad_(), torch.tensor([0.0, 1.0, 1.0])).detach()
    assert torch.equal(got, want) and not got.requires_grad


def test_adapter_labels_the_interpreted_run() -> None:
    from focalspec.adapters.own_triton import INTERPRET, FocalspecTritonAdapter

    a = FocalspecTritonAdapter()
    assert a.unavailable_reason() is None
    assert INTERPRET in a.modes
    v = Variant(gamma=2.0, alpha=0.25)
    assert a.supports(v, "float32", "cpu", "eager") is not None  # never an 'eager' CPU row
    out = a.run(v, np.array([-1.0, 2.0]), np.array([0.0, 1.0]), "float32", "cpu", INTERPRET)
    assert out.ran["mode"] == INTERPRET and out.ran["triton_launch"] == INTERPRET
    assert out.grad is not None and np.isfinite(out.grad).all()
    assert a.supports(Variant(activation="softmax", alpha=None), "float32", "cpu", INTERPRET)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_results_rounded_once(dtype: str) -> None:
    """Computed in float32, a half-type result must be the exact value correctly rounded (float32's
    few units of error are far below the half type's): the interpreter truncates float32 -> bfloat16 (0.1 -> 0.0996)
    and misreads bfloat16 subnormals, so the host rounds.  Gradient via loss.sum() (upstream 1)."""
    xs, ts = _case(dtype)
    if dtype == "float16":
        xs, ts = xs[np.abs(xs) < 60], ts[np.abs(xs) < 60]
    else:  # a bfloat16 subnormal logit and small ones
        xs = np.concatenate([xs, torch.tensor([2.75e-39, -2.75e-39, 0.1, -0.1]).to(DT[dtype]).double().numpy()])
        ts = np.concatenate([ts, [1.0, 0.0, 1.0, 0.3]])
    ts = torch.from_numpy(ts).to(DT[dtype]).double().numpy()  # the reference sees the rounded soft targets
    ev, eg = _grade(Variant(gamma=2.0, alpha=0.25), dtype, xs, ts)
    # values against the rounded exact value: equal; gradients against the exact one: within 1 u
    assert ev <= 0.01 and eg <= 1.01, (ev, eg)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_upstream_gradient_rounded_once(dtype: str) -> None:
    """normalized with 7 positives and an upstream gradient of 3: d/dx = 3/7 * d sum/dx, the factor
    formed in float32 (in the half type it was rounded twice more: 1.7-2.1 u)."""
    xs = np.linspace(-6.0, 6.0, 40)
    xs = torch.from_numpy(xs).to(DT[dtype]).double().numpy()
    ts = np.zeros_like(xs)
    ts[::6] = 1.0  # 7 positives
    v = Variant(gamma=2.0, alpha=0.25, reduction="normalized")
    x = torch.from_numpy(xs).to(DT[dtype]).requires_grad_()
    t = torch.from_numpy(ts).to(DT[dtype])
    loss = kt.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0, reduction="normalized")
    (g,) = torch.autograd.grad(loss, x, grad_outputs=torch.tensor(3.0, dtype=DT[dtype]))
    ref = ref_mp.evaluate(v, xs, ts)
    eg = error_in_u(g.double().numpy(), 3 * ref.grad.astype(np.float64), 3 * ref.grad_scale.astype(np.float64), dtype)
    # two roundings, the saved gradient's (0.5 u of its own binade: up to 1 u of the product's) and
    # the product's (0.5 u)
    assert float(eg.max()) <= 1.5, float(eg.max())


def test_backward_of_a_reduced_loss_is_the_saved_gradient() -> None:
    """The 12 B path: loss.backward() of a sum hands the forward's gradient over as x.grad (no
    multiply, no copy); any other upstream gradient multiplies."""
    saved: list[int] = []
    launch = kt._launch

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = launch(*args, **kwargs)
        if out[1] is not None:
            saved.append(out[1].data_ptr())
        return out

    x = torch.linspace(-5, 5, 100, requires_grad=True)
    t = (torch.arange(100) % 4 == 0).float()
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(kt, "_launch", spy)
        kt.sigmoid_focal_loss(x, t, reduction="sum").backward()
    finally:
        mp.undo()
    assert x.grad is not None and saved == [x.grad.data_ptr()]
    g1 = x.grad.clone()
    x.grad = None
    kt.sigmoid_focal_loss(x, t, reduction="sum").backward(torch.tensor(2.0))
    assert torch.equal(x.grad, 2 * g1)


def test_adapter_does_not_check_targets_inside_the_timed_call() -> None:
    """check=True costs three passes over the targets and a host sync per call: the adapter's
    callable (what the bench times) leaves it to the caller."""
    from focalspec.adapters.own_triton import FocalspecTritonAdapter

    loss = FocalspecTritonAdapter().make_loss(Variant(gamma=2.0, alpha=0.25))
    out = loss(torch.zeros(3), torch.full((3,), 2.0))  # out of [0, 1]: only a checking call refuses it
    assert out.shape == (3,)


def test_bench_reports_the_bytes_the_kernel_declares() -> None:
    """The 12 B claim is a reported number beside the measured fraction of copy bandwidth:
    float32 forward+backward of a sum reads x and t and writes the gradient, nothing else."""
    from focalspec.adapters.own_triton import FocalspecTritonAdapter
    from focalspec.benchmarks import harness as bench

    a = FocalspecTritonAdapter()
    v = Variant(gamma=2.0, alpha=0.25, reduction="sum")
    job = bench.Job("cuda", "float32", 1 << 20, a, v, "eager", "forward_backward")
    assert bench.declared_bytes(a, job) == 12.0 == bench.min_bytes(1, "float32", "forward_backward")
    assert bench.declared_bytes(a, bench.Job("cuda", "bfloat16", 1, a, v, "eager", "forward")) == 4.0
    normalized = Variant(gamma=2.0, alpha=0.25, reduction="normalized")
    assert bench.declared_bytes(a, bench.Job("cuda", "float32", 1, a, normalized, "eager", "forward_backward")) == 20.0


def test_a_second_backward_is_refused_not_silent() -> None:
    """The 12 B path hands its saved gradient over: backward through the same graph again
    (retain_graph=True) must fail in one line, never return no gradient."""
    x = torch.linspace(-5, 5, 10, requires_grad=True)
    loss = kt.sigmoid_focal_loss(x, (torch.arange(10) % 2).float(), reduction="sum")
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="recompute the loss") as info:
        loss.backward()
    assert "\n" not in str(info.value)
