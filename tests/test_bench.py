"""The performance harness, tested without any framework through small numpy adapters.

No timing assertions: what must hold on any machine is the schema, positive numbers, that
a deliberately wrong implementation is flagged incorrect however fast it is, and that an
implementation failing to prepare becomes an error row while the run goes on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from focalspec.adapters.base import Adapter, Output, Timed
from focalspec.benchmarks import harness as bench
from focalspec.benchmarks import inputs
from focalspec.cli_main import main
from focalspec.reference.float64 import evaluate
from focalspec.spec.variant import SpecError, Variant

TOP_KEYS = {"schema", "schema_version", "suite", "run", "ceilings", "results"}
SUITE_KEYS = {"version", "git_revision"}
RUN_KEYS = {"started", "finished", "host", "python", "platform", "command", "cpu_model", "cpu_count", "env"}
CEILING_KEYS = {"device", "device_name", "method", "bytes", "GBps", "median_s"}
RESULT_KEYS = {
    "adapter", "implementation", "framework", "framework_version", "device", "device_name", "dtype", "mode",
    "pass", "n_elements", "shape", "reps", "median_s", "iqr_s", "min_s", "elements_per_s", "GBps",
    "roofline_fraction", "compile_s", "bytes_per_element", "correct", "max_err_u", "error", "not_timed",
}  # fmt: skip
NP_TYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


# ----------------------------------------------------------------------------- test adapters


def _focal_numpy(x: np.ndarray, t: np.ndarray, v: Variant) -> tuple[float, np.ndarray]:
    """Canonical sigmoid focal loss (reduced) and its gradient, written out in float64."""
    g = v.gamma
    a = 1.0 if v.alpha is None else v.alpha * t + (1 - v.alpha) * (1 - t)
    e = np.exp(-np.abs(x))
    s_pos = np.where(x >= 0, 1 / (1 + e), e / (1 + e))  # sigmoid(x)
    s_neg = np.where(x >= 0, e / (1 + e), 1 / (1 + e))  # sigmoid(-x)
    ce = t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
    m = t * s_neg + (1 - t) * s_pos
    loss = a * m**g * ce
    dm = (1 - 2 * t) * s_pos * s_neg
    grad = a * (g * m ** (g - 1) * dm * ce + m**g * ((1 - t) * s_pos - t * s_neg))
    if v.reduction == "mean":
        return float(loss.sum() / loss.size), grad / loss.size
    return float(loss.sum()), grad


class GoodNumpyAdapter(Adapter):
    """A correct implementation: float64 arithmetic, results rounded to the dtype."""

    name = "test-numpy"
    implementation = "tests.test_bench.GoodNumpyAdapter"
    framework = "numpy"
    convention = "canonical"
    dtypes = ("float64", "float32", "bfloat16", "float16")
    modes = ("eager", "compiled")
    scale = 1.0

    def unavailable_reason(self) -> str | None:
        return None

    def framework_version(self) -> str | None:
        return np.__version__

    def devices(self) -> tuple[str, ...]:
        return ("cpu",)

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if device != "cpu":
            return "numpy runs on the CPU only"
        if variant.soft_target != "canonical" or variant.reduction not in ("sum", "mean"):
            return "canonical sigmoid with sum/mean only"
        return None

    def _eval(self, x: np.ndarray, t: np.ndarray, v: Variant, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        loss, grad = _focal_numpy(x, t, v)
        typ = NP_TYPES[dtype]
        return np.asarray(loss * self.scale).astype(typ), grad.astype(typ)

    def run(self, variant, inputs, targets, dtype, device="cpu", mode="eager", want_grad=True):  # type: ignore[no-untyped-def]
        loss, grad = self._eval(inputs, targets, variant, dtype)
        return Output(loss.astype(np.float64), grad.astype(np.float64) if want_grad else None)

    def prepare_timed(self, variant, input_sets, targets, dtype, device="cpu", mode="eager", backward=False):  # type: ignore[no-untyped-def]
        sets = [np.array(s) for s in input_sets]

        def step(i: int) -> Any:
            loss, grad = self._eval(sets[i % len(sets)], targets, variant, dtype)
            return loss, (grad if backward else None)

        def to_numpy(out: Any) -> tuple[np.ndarray, np.ndarray | None]:
            loss, grad = out
            return loss.astype(np.float64), None if grad is None else grad.astype(np.float64)

        return Timed(step=step, sync=lambda out: None, to_numpy=to_numpy, compile_seconds=0.0, ran={"mode": mode})


class WrongNumpyAdapter(GoodNumpyAdapter):
    """Fast and wrong: the loss is 1.5 times too large, beyond every dtype's budget (the
    widest, bfloat16's for a sum of 2^14 terms, is 16 + 2*14 u = 17%)."""

    name = "test-numpy-wrong"
    implementation = "tests.test_bench.WrongNumpyAdapter"
    scale = 1.5


class RaisingNumpyAdapter(GoodNumpyAdapter):
    name = "test-numpy-raising"
    implementation = "tests.test_bench.RaisingNumpyAdapter"

    def prepare_timed(self, *args: Any, **kwargs: Any) -> Timed:
        raise RuntimeError("no kernel for this dtype\nsecond line that must not appear")


class UntimedNumpyAdapter(GoodNumpyAdapter):
    """Keeps the base class's prepare_timed (no native timing path)."""

    name = "test-numpy-untimed"
    implementation = "tests.test_bench.UntimedNumpyAdapter"
    prepare_timed = Adapter.prepare_timed  # type: ignore[assignment]


class WorkerNumpyAdapter(GoodNumpyAdapter):
    """Has a timing path that does not apply in this process, as Keras on jax/torch (a worker)."""

    name = "test-numpy-worker"
    implementation = "tests.test_bench.WorkerNumpyAdapter"

    def prepare_timed(self, *args: Any, **kwargs: Any) -> Timed:
        raise NotImplementedError(f"{self.name} runs in a worker process: no native timing path")


class NanGradAdapter(GoodNumpyAdapter):
    name = "test-numpy-nangrad"
    implementation = "tests.test_bench.NanGradAdapter"

    def _eval(self, x: np.ndarray, t: np.ndarray, v: Variant, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        loss, grad = super()._eval(x, t, v, dtype)
        grad = grad.copy()
        grad.flat[7] = np.nan
        return loss, grad


class StaleNumpyAdapter(GoodNumpyAdapter):
    """Computes once on the first input set and returns that forever: right on set 0, wrong on
    the others -- what a check of anything but the last timed output would miss."""

    name = "test-numpy-stale"
    implementation = "tests.test_bench.StaleNumpyAdapter"

    def prepare_timed(self, variant, input_sets, targets, dtype, device="cpu", mode="eager", backward=False):  # type: ignore[no-untyped-def]
        inner = super().prepare_timed(variant, input_sets, targets, dtype, device, mode, backward)
        first = inner.step(0)
        return Timed(step=lambda i: first, sync=inner.sync, to_numpy=inner.to_numpy)


def _small(**changes: Any) -> bench.BenchConfig:
    base: dict[str, Any] = dict(
        devices=["cpu"], dtypes=("float32",), modes=("eager",), sizes=(2**12,), min_time=0.01, min_reps=3,
        warmup_time=0.0, quick=True,
    )  # fmt: skip
    base.update(changes)
    return bench.BenchConfig(**base)


_REAL_COPY = bench.roofline.measure_cpu_copy


@pytest.fixture(autouse=True)
def _small_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spare each run a 256 MiB copy on the shared 2-core machine: a 16 MiB one still
    exercises the measurement (its number is not what these tests check)."""
    monkeypatch.setattr(
        bench.roofline, "measure_cpu_copy", lambda *a, threads=None, **k: _REAL_COPY(16 * 2**20, 0.02, 3, threads)
    )


def _check_schema(doc: dict[str, Any]) -> None:
    json.dumps(doc, allow_nan=False)  # strict JSON
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == "focalspec-bench" and doc["schema_version"] == 1
    assert set(doc["suite"]) == SUITE_KEYS and set(doc["run"]) == RUN_KEYS
    assert doc["run"]["finished"] and doc["run"]["cpu_count"] >= 1
    for c in doc["ceilings"]:
        assert set(c) == CEILING_KEYS
        assert c["GBps"] > 0 and c["median_s"] > 0 and c["bytes"] > 0 and c["method"]
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS, set(r) ^ RESULT_KEYS
        assert r["pass"] in ("forward", "forward_backward")
        assert r["shape"][0] * r["shape"][1] == r["n_elements"] and r["shape"][1] == 80
        if r["median_s"] is not None:
            assert r["reps"] >= 3
            assert 0 < r["min_s"] <= r["median_s"] and r["iqr_s"] >= 0
            assert r["elements_per_s"] > 0 and r["GBps"] > 0 and r["roofline_fraction"] > 0
            assert r["compile_s"] >= 0
            assert math.isclose(r["elements_per_s"], r["n_elements"] / r["median_s"])
        elif r["not_timed"]:
            assert r["error"] is None and r["not_timed"].startswith("not timed: ") and r["reps"] == 0
        else:
            assert r["error"] and "\n" not in r["error"] and r["correct"] is False and r["reps"] == 0


# ----------------------------------------------------------------------------- the run


def test_numpy_adapters_graded_and_failures_recorded(tmp_path: Path) -> None:
    adapters = [RaisingNumpyAdapter(), GoodNumpyAdapter(), WrongNumpyAdapter(), UntimedNumpyAdapter()]
    config = _small(dtypes=("float32", "bfloat16", "float16"), sizes=(2**12, 2**14))
    path = tmp_path / "b.json"
    doc = bench.run_bench(config, adapters=adapters, json_path=path)
    assert json.loads(path.read_text()) == doc
    _check_schema(doc)
    rows = doc["results"]
    assert len(rows) == 4 * 3 * 2 * 2  # adapters x dtypes x sizes x passes, the run went on after errors
    by = {name: [r for r in rows if r["adapter"] == name] for name in {r["adapter"] for r in rows}}
    for r in by["test-numpy"]:
        assert r["correct"] is True and r["error"] is None, r
        assert r["max_err_u"] is not None and r["max_err_u"] <= 2.0  # rounded once from float64
        assert r["device_name"] == doc["ceilings"][0]["device_name"]
    for r in by["test-numpy-wrong"]:
        assert r["correct"] is False and r["median_s"] > 0 and r["error"].startswith("wrong loss"), r
    for r in by["test-numpy-raising"]:
        assert r["error"] == "RuntimeError: no kernel for this dtype" and r["median_s"] is None
    for r in by["test-numpy-untimed"]:
        assert r["error"] == "no native timing path (prepare_timed)" and r["median_s"] is None
    fp16 = [r for r in by["test-numpy"] if r["dtype"] == "float16"]
    assert fp16 and all(r["correct"] for r in fp16)


def test_worker_adapter_is_not_timed_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--quick listed keras-binary-jax/-torch as error rows: a path that cannot apply in this
    process is shown as not timed, in the rows, the markdown and the CLI's table."""
    from focalspec.benchmarks import cli

    doc = bench.run_bench(_small(passes=("forward",)), adapters=[WorkerNumpyAdapter(), GoodNumpyAdapter()])
    _check_schema(doc)
    (row,) = [r for r in doc["results"] if r["adapter"] == "test-numpy-worker"]
    assert row["error"] is None and row["not_timed"] == "not timed: runs in a worker process"
    text = bench.markdown(doc)
    assert "| not timed |" in text and "## Errors" not in text and "runs in a worker process" in text
    table = cli.summary_table(doc)
    assert "not timed: runs in a worker process" in table and "error" not in table


def test_nan_gradient_is_wrong() -> None:
    config = _small(passes=("forward_backward",))
    doc = bench.run_bench(config, adapters=[NanGradAdapter()])
    (r,) = doc["results"]
    assert r["correct"] is False and r["max_err_u"] is None and "wrong gradient at" in r["error"]


def test_rotation_and_check_of_the_last_timed_output() -> None:
    """Three timed repetitions after two warm-ups end on set 5 of 64: an implementation that
    does not read its input is caught; the same run with one set cannot tell."""
    config = _small(min_time=1e-9, min_reps=3, max_reps=3)
    doc = bench.run_bench(config, adapters=[StaleNumpyAdapter(), GoodNumpyAdapter()])
    stale, good = doc["results"][:2], doc["results"][2:]
    assert all(not r["correct"] and r["reps"] == 3 for r in stale), stale
    assert all(r["correct"] for r in good)
    batch = bench.make_inputs(2**12, "float32", 1, seed=0)
    timed = StaleNumpyAdapter().prepare_timed(Variant(reduction="sum"), batch.sets, batch.targets, "float32")
    timing = bench.time_timed(timed, 1, config)
    assert timing.last_set == 0 and len(timing.times) == 3


def test_threads_limit_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS", "XLA_FLAGS"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)  # restored after the test
    applied: list[int] = []
    monkeypatch.setattr(bench, "apply_thread_limit", applied.append)  # leave this process's torch alone
    doc = bench.run_bench(_small(threads=1, passes=("forward",)), adapters=[GoodNumpyAdapter()])
    env = doc["run"]["env"]
    assert env["OMP_NUM_THREADS"] == "1" and "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    assert applied == [1] and doc["ceilings"][0]["method"].startswith("numpy.copyto float32, 1 thread,")


def test_deadline_leaves_error_rows() -> None:
    config = _small(sizes=(2**12, 2**13), deadline_s=1e-9)
    doc = bench.run_bench(config, adapters=[GoodNumpyAdapter()])
    _check_schema(doc)
    assert all(r["error"].startswith("not run") for r in doc["results"])


def test_cli_with_adapter_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    spec = f"{__name__}:GoodNumpyAdapter"
    argv = ["bench", "--adapter", spec, "--device", "cpu", "--dtype", "float32", "--mode", "eager", "compiled"]
    argv += ["--sizes", "2^12,8192", "--min-time", "0.01", "--min-reps", "3", "--json", str(out)]
    assert main([*argv, "--markdown", str(md)]) == 0
    doc = json.loads(out.read_text())
    _check_schema(doc)
    assert len(doc["results"]) == 2 * 2 * 2 and all(r["correct"] for r in doc["results"])
    assert {r["n_elements"] for r in doc["results"]} == {51 * 80, 102 * 80}
    assert doc["run"]["command"].startswith("focalspec bench --adapter")
    text = md.read_text()
    assert "| test-numpy | cpu | float32 |" in text and "fastest test-numpy" in text
    assert "fastest" in capsys.readouterr().out


def test_cli_wrong_adapter_exit_code(tmp_path: Path) -> None:
    argv = ["bench", "--adapter", f"{__name__}:WrongNumpyAdapter", "--sizes", "2^12", "--dtype", "float32"]
    argv += ["--mode", "eager", "--pass", "forward", "--min-time", "0.01", "--json", str(tmp_path / "w.json")]
    assert main(argv) == 1


@pytest.mark.parametrize(
    "argv",
    [["--sizes", "2^x"], ["--sizes", "0"], ["--min-time", "-1"], ["--adapter", "no-such-adapter-anywhere"]],
)
def test_bad_arguments_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("focalspec bench: error:") and "\n" not in err


def test_unsupported_everything_is_one_line_error() -> None:
    with pytest.raises(SpecError, match="nothing to measure"):
        bench.run_bench(_small(devices=["cuda"]), adapters=[GoodNumpyAdapter()])


# ----------------------------------------------------------------------------- pieces


def test_parse_sizes() -> None:
    assert bench.parse_sizes("2^12,2^16") == (4096, 65536)
    assert bench.parse_sizes("4096, 65536") == (4096, 65536)
    assert bench.parse_sizes("2**10") == (1024,)
    with pytest.raises(SpecError):
        bench.parse_sizes("big")


def test_inputs_dtype_exact_random_and_detection_like() -> None:
    batch = bench.make_inputs(2**16, "bfloat16", 3, seed=1)
    assert batch.shape == (819, 80) and len(batch.sets) == 3
    for s in batch.sets:
        assert np.array_equal(s.astype(ml_dtypes.bfloat16).astype(np.float64), s)
        assert np.count_nonzero(s) > 0.99 * s.size
    assert not np.array_equal(batch.sets[0], batch.sets[1])
    pos_rows = np.count_nonzero(batch.targets.sum(axis=1))
    assert set(np.unique(batch.targets)) == {0.0, 1.0} and batch.targets.sum(axis=1).max() == 1
    assert 1 <= pos_rows <= 0.05 * batch.shape[0]


def test_rotation_exceeds_cache_when_affordable() -> None:
    llc = 32 * 2**20
    assert bench.rotation_count(2**12, "float32", llc) == bench.MAX_SETS
    k = bench.rotation_count(2**20, "float32", llc)
    assert k * 2**20 * 4 >= 2 * llc and k <= bench.MAX_SETS
    assert bench.rotation_count(2**26, "float32", llc) == 1
    assert bench.rotation_count(2**28, "float16", 50 * 2**20) == 1


def test_min_bytes() -> None:
    assert bench.min_bytes(1000, "float32", "forward") == 8000
    assert bench.min_bytes(1000, "bfloat16", "forward_backward") == 6000


def test_check_output_against_reference() -> None:
    batch = bench.make_inputs(2**12, "float32", 1, seed=2)
    v = Variant(reduction="sum")
    ref = evaluate(v, batch.sets[0], batch.targets)
    loss, grad = _focal_numpy(batch.sets[0], batch.targets, v)
    good = bench.check_output(np.float32(loss), grad.astype(np.float32), ref, "float32", v, batch.n, True)
    assert good.correct and good.reason is None
    bad = bench.check_output(np.float32(loss * 1.001), grad, ref, "float32", v, batch.n, False)
    assert not bad.correct and bad.max_err_u > 512
    wrong_shape = bench.check_output(np.float32(loss), grad.ravel(), ref, "float32", v, batch.n, True)
    assert not wrong_shape.correct and "shape" in wrong_shape.reason


def test_float16_sum_overflow_expects_inf() -> None:
    """A sum past 65504 is +inf in float16 (the tolerance policy): inf is right, a finite
    value is not a float16 answer."""
    batch = bench.make_inputs(2**21, "float16", 1, seed=3)
    v = Variant(reduction="sum")
    ref = evaluate(v, batch.sets[0], batch.targets)
    assert ref.value > 65504
    assert bench.check_output(np.float16(np.inf), None, ref, "float16", v, batch.n, False).correct
    assert not bench.check_output(np.float16(np.nan), None, ref, "float16", v, batch.n, False).correct


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_chunked_reference_is_the_reference(monkeypatch: pytest.MonkeyPatch, reduction: str) -> None:
    monkeypatch.setattr(inputs, "REFERENCE_CHUNK", 2**10)  # 2^14 elements: 16 pieces, the last short
    batch = bench.make_inputs(2**14 + 400, "float32", 1, seed=4)
    v = Variant(reduction=reduction)  # type: ignore[arg-type]
    direct, chunked = evaluate(v, batch.sets[0], batch.targets), bench.reference(v, batch.sets[0], batch.targets)
    assert math.isclose(chunked.value, direct.value, rel_tol=1e-14)
    assert np.array_equal(chunked.grad, direct.grad) and np.array_equal(chunked.grad_scale, direct.grad_scale)
    assert np.array_equal(chunked.losses, direct.losses)


def test_bench_variant_prefers_sum_and_mean_for_float16() -> None:
    a = GoodNumpyAdapter()
    v32, _ = bench.bench_variant(a, "float32", "cpu", "eager")
    v16, _ = bench.bench_variant(a, "float16", "cpu", "eager")
    assert v32 is not None and v32.reduction == "sum" and v32.alpha == 0.25 and v32.gamma == 2
    assert v16 is not None and v16.reduction == "mean"
    none, reason = bench.bench_variant(a, "float32", "cuda", "eager")
    assert none is None and reason == "numpy runs on the CPU only"


def test_markdown_fastest_ratio() -> None:
    def row(adapter: str, median: float, correct: bool = True) -> dict[str, Any]:
        return {
            **{k: None for k in RESULT_KEYS}, "adapter": adapter, "device": "cpu", "dtype": "float32",
            "mode": "eager", "pass": "forward", "n_elements": 4000, "shape": [50, 80], "reps": 5,
            "median_s": median, "GBps": 32000 / median / 1e9, "correct": correct, "framework": "numpy",
        }  # fmt: skip

    rows = [row("a", 2e-3), row("b", 1e-3), row("c", 4e-3), row("cheat", 1e-6, correct=False)]
    (line,) = bench.fastest(rows)
    assert "fastest b (eager)" in line and "2.00x faster than a" in line and "4.00x faster than c" in line


def test_real_cpu_ceiling_positive() -> None:
    c = _REAL_COPY(8 * 2**20, min_time=0.02, min_reps=3)
    assert c.device == "cpu" and c.GBps > 0 and c.bytes == 8 * 2**20 and "numpy.copyto" in c.method


@pytest.mark.slow
def test_quick_mode_on_the_installed_adapters(tmp_path: Path) -> None:
    """`focalspec bench --quick` on the registered framework adapters (about a minute)."""
    from focalspec.adapters.registry import all_adapters

    timed = [a for a in all_adapters() if not a.unavailable_reason() and bench.has_timing_path(a)]
    if not timed:
        pytest.skip("no installed adapter has a native timing path")
    out = tmp_path / "quick.json"
    code = main(["bench", "--quick", "--device", "cpu", "--json", str(out)])
    doc = json.loads(out.read_text())
    _check_schema(doc)
    ran = [r for r in doc["results"] if r["median_s"] is not None]
    assert ran, "no adapter produced a timing"
    assert code == (0 if all(r["correct"] for r in ran) else 1)
    assert {r["dtype"] for r in doc["results"]} == {"float32"}


# ----------------------------------------------------------------------------- peer ratios


def _ratio_row(
    adapter: str, impl: str, framework: str, mode: str, median: float | None, correct: bool = True
) -> dict[str, Any]:
    return {
        **{k: None for k in RESULT_KEYS}, "adapter": adapter, "implementation": impl, "framework": framework,
        "device": "cpu", "dtype": "float32", "mode": mode, "pass": "forward", "n_elements": 4000,
        "shape": [50, 80], "reps": 5, "median_s": median, "min_s": median and median / 2, "correct": correct,
        "GBps": median and 32000 / median / 1e9,
    }  # fmt: skip


def test_peer_ratios_pick_the_fastest_peer_of_the_framework() -> None:
    rows = [
        _ratio_row("own", "focalspec.kernels.x", "fw", "eager", 2e-3),
        _ratio_row("own", "focalspec.kernels.x", "fw", "compiled", 1e-3),
        _ratio_row("slow-ok", "lib.slow", "fw", "eager", 4e-3),
        _ratio_row("fast-wrong", "lib.fast", "fw", "eager", 1e-3, correct=False),
        _ratio_row("compiled-ok", "lib.slow", "fw", "compiled", 3e-3),
        _ratio_row("other-framework", "other.lib", "fw2", "eager", 1e-6),  # never a peer
        {**_ratio_row("other-size", "lib.x", "fw", "eager", 1e-6), "n_elements": 8000},
        {**_ratio_row("errored", "lib.y", "fw", "eager", None), "error": "boom"},
    ]
    by_mode = {e["mode"]: e for e in bench.peer_ratios(rows)}
    assert set(by_mode) == {"eager", "compiled"}
    eager = by_mode["eager"]
    assert eager["same_mode_correct"]["adapter"] == "slow-ok" and eager["same_mode_correct"]["ratio"] == 2.0
    assert eager["same_mode_any"]["adapter"] == "fast-wrong" and eager["same_mode_any"]["ratio"] == 0.5
    assert eager["same_mode_any"]["min_ratio"] == 0.5 and not eager["same_mode_any"]["correct"]
    assert eager["any_mode_correct"]["adapter"] == "compiled-ok" and eager["any_mode_correct"]["ratio"] == 1.5
    compiled = by_mode["compiled"]
    assert compiled["same_mode_correct"]["adapter"] == "compiled-ok" and compiled["same_mode_correct"]["ratio"] == 3.0
    assert compiled["any_mode_any"]["adapter"] == "fast-wrong" and compiled["any_mode_any"]["ratio"] == 1.0
    lines = bench.ratio_lines(rows, largest_only=False)
    assert any("eager forward float32 4,000: 2.000 ms" in s and "fastest correct 2.00x (min 2.00x) slow-ok" in s
               and "fastest 0.50x (min 0.50x) fast-wrong (wrong)" in s for s in lines)  # fmt: skip
    md = bench.markdown(
        {
            "run": {
                "started": "2026-01-01T00:00:00",
                "finished": None,
                "host": "h",
                "cpu_model": "c",
                "cpu_count": 2,
                "platform": "p",
                "python": "3",
                "command": "c",
            },
            "suite": {"version": "0", "git_revision": None},
            "ceilings": [],
            "results": rows,
        }
    )
    assert "## Own implementations against the fastest peer of their framework" in md
    assert "| own | float32 | eager | forward | 4,000 | 2.000 | 2.00x (min 2.00x) slow-ok |" in md


def test_peer_ratios_without_peers() -> None:
    rows = [_ratio_row("own", "focalspec.kernels.x", "fw", "eager", 2e-3)]
    (e,) = bench.peer_ratios(rows)
    assert e["same_mode_correct"] is None and e["any_mode_any"] is None
    assert bench.ratio_lines(rows) == ["own eager forward float32 4,000: no peer timed"]


class _OwnNumpyAdapter(GoodNumpyAdapter):
    name = "focalspec-numpy-test"
    implementation = "focalspec.tests.own"


class _OtherFrameworkAdapter(GoodNumpyAdapter):
    name = "test-other-framework"
    framework = "other"


def test_quick_selection_takes_every_timeable_peer_of_the_own_frameworks() -> None:
    own, good, wrong, untimed, other = (
        _OwnNumpyAdapter(), GoodNumpyAdapter(), WrongNumpyAdapter(), UntimedNumpyAdapter(), _OtherFrameworkAdapter()
    )  # fmt: skip
    chosen = bench.quick_selection([other, good, own, untimed, wrong])
    assert chosen == [own, good, wrong]  # own first; untimed and other-framework adapters left out
    assert bench.quick_selection([other, untimed]) == [other]  # no own adapter: one shipped one as before


class _ElementwiseOnlyAdapter(GoodNumpyAdapter):
    """Like optax: no reduction of its own, so the bench times and grades reduction 'none'."""

    name = "test-numpy-none"
    implementation = "tests.test_bench.ElementwiseOnly"
    scale = 1.0

    def supports(self, variant: Variant, dtype: str, device: str, mode: str) -> str | None:
        if variant.reduction != "none":
            return "elementwise loss only"
        return super().supports(variant.with_(reduction="sum"), dtype, device, mode)

    def _eval(self, x: np.ndarray, t: np.ndarray, v: Variant, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        r = evaluate(v, x, t)
        typ = NP_TYPES[dtype]
        return (r.losses * self.scale).astype(typ), r.grad.astype(typ)


class _ElementwiseWrongAdapter(_ElementwiseOnlyAdapter):
    name = "test-numpy-none-wrong"
    scale = 1.001  # 1e-3 relative: beyond float32's acceptable budget for one element


def test_elementwise_only_adapter_is_timed_with_reduction_none() -> None:
    good, wrong = _ElementwiseOnlyAdapter(), _ElementwiseWrongAdapter()
    v, _ = bench.bench_variant(good, "float32", "cpu", "eager")
    assert v is not None and v.reduction == "none"
    doc = bench.run_bench(_small(passes=("forward", "forward_backward")), adapters=[good, wrong])
    rows = {(r["adapter"], r["pass"]): r for r in doc["results"]}
    assert all(rows[("test-numpy-none", p)]["correct"] for p in bench.PASSES), rows
    bad = rows[("test-numpy-none-wrong", "forward")]
    assert not bad["correct"] and bad["error"].startswith("wrong loss at ("), bad["error"]
    n = rows[("test-numpy-none", "forward")]["n_elements"]
    assert rows[("test-numpy-none", "forward")]["GBps"] * rows[("test-numpy-none", "forward")]["median_s"] * 1e9 == (
        pytest.approx(3 * 4 * n)
    )  # reads logits and targets, writes the loss array
