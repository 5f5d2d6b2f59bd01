"""focalspec's own Paddle implementation, the paddle adapters and the gate's ``--framework paddle``.

``focalspec.kernels.paddle_loss`` must reach the *accurate* grade (SPEC §10.3) against
``reference.exact`` on moderate and saturating inputs, values and gradients, float64 and float32;
what it does not implement must be refused in one line.  Two behaviours of paddle 3.3.1 that
shaped the adapter and the kernel are pinned to that version (another version is a skip): 1-D
inputs make ``sigmoid_focal_loss`` raise, and float ``==`` has an absolute tolerance.
Runs in tox's ``tests-paddle`` env (paddlepaddle CPU).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from thirdparty_support import grade  # noqa: E402

from focalspec.adapters.own_paddle import FocalspecPaddle  # noqa: E402
from focalspec.adapters.thirdparty.paddle_adapter import PaddleSigmoid  # noqa: E402
from focalspec.cli_main import main  # noqa: E402
from focalspec.spec.variant import Variant  # noqa: E402

PINNED = "3.3.1"
X = np.array([-40.0, -17.0, -6.25, -1.0, -1e-8, 0.0, 1e-8, 0.75, 5.0, 16.640625, 40.0, np.inf, -np.inf])
OWN = FocalspecPaddle()


def _pinned() -> None:
    if paddle.__version__ != PINNED:
        pytest.skip(f"recorded on paddle {PINNED}; installed {paddle.__version__}")


def _accurate(v: Variant, x: np.ndarray, t: np.ndarray, dtype: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = grade(OWN, v, x, t, dtype, reference=v)
    for chk in (g.value, g.grad):
        assert chk is not None
        assert chk.max_err <= chk.budget.accurate, f"{v.label()} {dtype} {chk.which}: {chk.max_err:.3g} u {chk.worst}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("reduction", ["none", "sum", "normalized"])
def test_own_sigmoid_is_accurate(dtype: str, gamma: float, alpha: float | None, reduction: str) -> None:
    v = Variant(gamma=gamma, alpha=alpha, reduction=reduction)  # type: ignore[arg-type]
    x = np.concatenate([X, X, X[np.isfinite(X)]])
    t = np.concatenate([np.zeros(X.size), np.ones(X.size), np.full(int(np.isfinite(X).sum()), 0.3)])
    if reduction != "none":
        x, t = x[np.isfinite(x)], t[np.isfinite(x)]
    _accurate(v, x, t, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_own_sigmoid_on_probabilities_is_accurate(dtype: str) -> None:
    p = np.array([1e-30, 1e-8, 0.05, 0.5, 0.75, 0.999, 1 - 2.0**-24])
    v = Variant(input_kind="probs", gamma=0.5, alpha=0.25)
    _accurate(v, np.concatenate([p, p]), np.repeat([0.0, 1.0], p.size), dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alpha", [None, 0.25, (0.2, 0.3, 0.5)])
def test_own_softmax_is_accurate(dtype: str, alpha: object) -> None:
    rows = np.array([[50.0, 0.0, 0.0], [87.39, 0.0, -1.0], [0.0, 0.0, 0.0], [3.0, -2.0, 40.0], [1e-8, -1e-8, 0.0]])
    labels = np.array([0, 0, 1, 0, 2])
    for gamma in (0.0, 0.5, 2.0):
        _accurate(Variant(activation="softmax", gamma=gamma, alpha=alpha), rows, labels, dtype)  # type: ignore[arg-type]


def test_unimplemented_variants_are_refused_in_one_line() -> None:
    for v in (Variant(soft_target="margin"), Variant(input_kind="probs", clip_eps=1e-7)):
        reason = OWN.supports(v, "float32", "cpu", "eager")
        assert reason and "\n" not in reason
    assert "supported: float64, float32" in (OWN.supports(Variant(), "bfloat16", "cpu", "eager") or "")
    from focalspec.kernels import paddle_loss as kp

    with pytest.raises(ValueError, match="geometric"):
        kp.sigmoid_focal_loss(paddle.zeros([2]), paddle.zeros([2]), soft_target="geometric")
    with pytest.raises(ValueError, match="targets must lie in"):
        kp.sigmoid_focal_loss(paddle.zeros([2]), paddle.full([2], 2.0))


def test_paddle_library_raises_on_one_dimensional_inputs() -> None:
    """Why the ``paddle`` adapter lays inputs out as (1, n)."""
    _pinned()
    f = paddle.nn.functional.sigmoid_focal_loss
    with pytest.raises(ValueError, match="shape"):
        f(paddle.zeros([3]), paddle.zeros([3]))
    assert f(paddle.zeros([1, 3]), paddle.zeros([1, 3])).shape == []  # 2-D works
    out = PaddleSigmoid().run(Variant(alpha=0.25), np.zeros(3), np.zeros(3), "float32")
    assert out.loss.shape == (3,)


def test_paddle_float_equality_has_a_tolerance() -> None:
    """Why focalspec.kernels.paddle_loss never compares floats with ==."""
    _pinned()
    from focalspec.kernels.paddle_loss import _eq

    tiny = paddle.to_tensor([1e-16], dtype="float64")
    assert bool((tiny == 0).all())  # paddle's equal: an absolute tolerance
    assert not bool(_eq(tiny, 0).all())


def test_gate_accepts_the_own_kernel_as_a_paddle_callable(tmp_path: Path) -> None:
    out = tmp_path / "gate.json"
    args = ["check", "focalspec.kernels.paddle_loss:sigmoid_focal_loss", "--framework", "paddle", "--alpha-off", "none"]
    args += ["--normalized", "normalized", "--depth", "quick", "--grade", "accurate", "--json", str(out)]
    assert main(args) == 0
    doc = json.loads(out.read_text())
    ran = [t for t in doc["tests"] if t["outcome"] == "passed"]
    assert len(ran) > 300 and {t["dtype"] for t in ran} == {"float64", "float32"}


def test_gate_rejects_the_paddle_library_for_its_findings(tmp_path: Path) -> None:
    """paddle's own loss through the gate: the x = 0 gradient (F-PADDLE-1) and the rest fail."""
    _pinned()
    out = tmp_path / "gate.json"
    args = ["check", "paddle", "--depth", "quick", "--case", "grid_g0_a0*", "--json", str(out)]
    assert main(args) == 1
    failed = [t for t in json.loads(out.read_text())["tests"] if t["outcome"] == "failed"]
    assert any(t["check"] == "grad" and (t["worst"] or {}).get("input") == 0.0 for t in failed)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("finite", [True, False])
def test_forward_without_gradient_is_the_same_loss(dtype: str, finite: bool) -> None:
    """The forward skips the gradient passes when the input needs no gradient, and the limit
    passes when no logit is infinite: the loss must be the one the full path computes, bit for bit."""
    from focalspec.kernels import paddle_loss

    x_np = X if not finite else X[np.isfinite(X)]
    t_np = (np.arange(x_np.size) % 3 == 0).astype(np.float64)
    x, t = paddle.to_tensor(x_np).astype(dtype), paddle.to_tensor(t_np).astype(dtype)
    plain = paddle_loss.sigmoid_focal_loss(x, t, reduction="none")
    xg = x.clone()
    xg.stop_gradient = False
    with_grad = paddle_loss.sigmoid_focal_loss(xg, t, reduction="none")
    assert np.array_equal(plain.numpy(), with_grad.numpy())
    (g,) = paddle.grad(paddle.sum(with_grad), [xg])
    assert np.all(np.isfinite(g.numpy())) and np.isinf(plain.numpy()).any() == (not finite)
