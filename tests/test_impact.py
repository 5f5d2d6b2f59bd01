"""Impact on realistic workloads (SPEC §10.9): the workloads are the stated ones, the rounding
floor admits a careful implementation and rejects a planted defect, NaN gradients and a diverging
training run are counted where the arithmetic puts them, and the CLI refuses bad input in one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from focalspec.conformance.diagnosis import impact, severity

ROOT = Path(__file__).resolve().parent.parent
BY_NAME = {w.name: w for w in impact.WORKLOADS}


@pytest.mark.parametrize("w", impact.WORKLOADS, ids=lambda w: w.name)
def test_the_workloads_are_the_stated_deterministic_batches(w: impact.Workload) -> None:
    x, t = w.data()
    x2, t2 = w.data()
    assert np.array_equal(x, x2) and np.array_equal(t, t2)
    k = round(w.n * w.positives)
    if w.classes == 1:
        assert x.shape == (w.n,) and int(t.sum()) == k
        pos, neg = x[t == 1], x[t == 0]
    else:
        assert x.shape == (w.n, w.classes) and int(np.count_nonzero(t)) == k
        mask = np.ones(x.shape, bool)
        mask[np.arange(w.n), t] = False
        pos, neg = x[~mask], x[mask]
    # the sample moments are the stated ones (a few standard errors)
    for sample, (mean, sd) in ((pos, w.pos), (neg, w.neg)):
        assert abs(sample.mean() - mean) < 5 * sd / math.sqrt(sample.size)
        assert abs(sample.std() - sd) < 5 * sd / math.sqrt(2 * sample.size)


def test_the_detection_batches_are_the_issue_s() -> None:
    early, late = BY_NAME["detection-early-g2"], BY_NAME["detection-late-g0.5"]
    assert (early.n, early.positives, early.pos, early.neg, early.alpha) == (100_000, 0.001, (1, 2), (-4, 2), 0.25)
    assert (late.neg, late.gamma) == ((-10, 3), 0.5)


# ----------------------------------------------------------------------------- planted implementations

torch = pytest.importorskip("torch")


def _callable(name: str) -> impact.Adapter:
    from focalspec.adapters import callable_adapter as ca

    return ca.make_callable_adapter(f"broken_impls.focal:{name}", ca.Convention(framework="torch"))


@pytest.fixture(scope="module")
def careful() -> impact.Adapter:
    return _callable("careful")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_careful_implementation_stays_within_every_floor(careful: impact.Adapter, dtype: str) -> None:
    """The floor is not too tight: stable forms computed in the dtype never exceed it."""
    for name in ("detection-late-g0.5", "segmentation-sigmoid"):
        b = impact.measure_batch(careful, BY_NAME[name], dtype)
        assert b["nonfinite_grad"] == 0 and b["zero_grad"] == 0, b
        assert not b["exceeds_floor"], b
        assert b["loss_rel"] <= b["floor_loss"] and b["grad_rel"] <= b["floor_grad"], b


def test_float32_arithmetic_under_float64_inputs_moves_a_batch_beyond_the_float64_floor() -> None:
    b = impact.measure_batch(_callable("float32_inside"), BY_NAME["detection-early-g2"], "float64")
    assert b["exceeds_floor"] and b["nonfinite_grad"] == 0
    # float32 rounding of each element, ~1e-8 relative, against a float64 floor of ~1e-14
    assert b["grad_rel"] > 1e-9 and b["floor_grad"] < 1e-13 and b["grad_ratio"] > 1e4


def test_one_minus_p_at_gamma_below_one_gives_nan_gradients_where_sigma_rounds_1_minus_p_to_1() -> None:
    """1 - p_t = 1 - (1 - p) is 0 once fl(1 - p) = 1, i.e. fl32(σ(x)) <= 2^-25 on a negative, and
    autodiff of 0^0.5 is NaN there: absent early in training, hundreds per batch later."""
    adapter = _callable("one_minus_p")
    early = impact.measure_batch(adapter, BY_NAME["detection-early-g0.5"], "float32")
    late = impact.measure_batch(adapter, BY_NAME["detection-late-g0.5"], "float32")
    assert early["nonfinite_grad"] == 0
    x, t = BY_NAME["detection-late-g0.5"].data()
    x32 = impact.rounded(x, "float32")
    sigma = np.exp(-np.logaddexp(0.0, -x32))  # σ(x) in float64 at the float32 input
    predicted = int(np.count_nonzero((t == 0) & (sigma.astype(np.float32) <= np.float32(2.0**-25))))
    assert predicted > 100 and abs(late["nonfinite_grad"] - predicted) <= 0.02 * predicted
    assert late["grad_rel"] == math.inf and math.isfinite(late["loss_rel"])
    # the NaNs are counted apart: the finite part of the gradient is what the floor judges
    assert math.isfinite(late["grad_rel_finite"])


def test_the_training_run_diverges_with_the_nan_gradient_and_not_without_it(careful: impact.Adapter) -> None:
    tr = next(t for t in impact.TRAININGS if t.gamma == 0.5)
    bad = impact.measure_training(_callable("one_minus_p"), tr, "float32")
    good = impact.measure_training(careful, tr, "float32")
    assert bad["first_nonfinite_step"] is not None and bad["final_loss"] is None
    assert bad["spec_first_nonfinite_step"] is None and bad["spec_final_loss"] > 0
    assert good["first_nonfinite_step"] is None and good["final_loss_rel"] < 1e-4
    # the run reaches the later stage of training: negatives far beyond float32's σ-saturation
    assert good["min_logit"] < -17.3


# ----------------------------------------------------------------------------- severity from the numbers

ENTRY = {
    "adapter": "x",
    "dtypes": {
        "float32": {
            "summary": {
                "exceeds_floor": False,
                "nonfinite_grad": 734,
                "nonfinite_workload": "detection-late-g0.5",
                "first_nonfinite_step": 19,
                "first_nonfinite_training": "train-detection-g0.5",
                "max_floor_ratio": 0.2,
            }
        },
        "float64": {
            "summary": {
                "exceeds_floor": True,
                "nonfinite_grad": 0,
                "nonfinite_workload": None,
                "first_nonfinite_step": None,
                "first_nonfinite_training": None,
                "max_floor_ratio": 3e5,
            }
        },
    },
}


def test_a_precision_cause_is_minor_only_where_every_measured_dtype_stays_within_the_floor() -> None:
    assert impact.exceeds_floor(ENTRY, ["float32"]) is False
    assert impact.exceeds_floor(ENTRY, ["float64", "float32"]) is True
    assert impact.exceeds_floor(ENTRY, ["bfloat16"]) is None and impact.exceeds_floor(None, ["float32"]) is None
    level = severity.severity("one_minus_p_cancellation", impact_exceeds_floor=impact.exceeds_floor(ENTRY, ["float32"]))
    assert level == "minor"


def test_the_impact_line_names_nan_counts_for_a_critical_cause_and_the_floor_for_a_precision_one() -> None:
    line = impact.impact_line(ENTRY, "nonfinite_at_finite", ["float32"])
    assert "734 non-finite gradients per batch (detection-late-g0.5)" in line and "step 19" in line
    assert "within the rounding floor" in impact.impact_line(ENTRY, "bce_cancellation", ["float32"])
    assert "beyond the rounding floor" in impact.impact_line(ENTRY, "bce_cancellation", ["float64"])
    assert "not measured" in impact.impact_line(None, "bce_cancellation", ["float32"])


# ----------------------------------------------------------------------------- the committed results


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads((ROOT / "reports" / "impact.json").read_text(encoding="utf-8"))


def test_the_committed_results_measure_the_spec_workloads(committed: dict) -> None:
    assert committed["schema"] == impact.SCHEMA and committed["schema_version"] == impact.SCHEMA_VERSION
    assert [w["name"] for w in committed["workloads"]] == [w.name for w in impact.WORKLOADS]
    names = {a["adapter"] for a in committed["adapters"]}
    assert {"torchvision", "optax", "keras-binary-tf", "focalspec-torch"} <= names


def test_focalspecs_own_implementations_stay_within_every_floor(committed: dict) -> None:
    for a in committed["adapters"]:
        if not a["adapter"].startswith("focalspec-") or a.get("unavailable"):
            continue
        for d, r in a["dtypes"].items():
            s = r["summary"]
            assert s["nonfinite_grad"] == 0 and s["first_nonfinite_step"] is None, (a["adapter"], d)
            if d in ("float64", "float32"):
                assert s["exceeds_floor"] is False, (a["adapter"], d, s)


def test_torchvisions_committed_nan_gradient_is_where_the_late_batch_puts_it(committed: dict) -> None:
    tv = next(a for a in committed["adapters"] if a["adapter"] == "torchvision")
    s = tv["dtypes"]["float32"]["summary"]
    assert s["nonfinite_workload"] == "detection-late-g0.5" and s["nonfinite_grad"] > 100
    assert s["first_nonfinite_training"] == "train-detection-g0.5" and s["exceeds_floor"] is False


# ----------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["impact", "no-such-adapter"], "no adapter named 'no-such-adapter'"),
        (["impact", "torchvision", "--dtype", "float8"], "--dtype float8"),
        (["impact", "broken_impls.focal:careful"], "needs --framework"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    from focalspec.cli_main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
