"""Grading of third-party focal losses against ``reference.exact``, shared by
tests/test_thirdparty.py and tests/test_findings.py, and the sweep behind reports/FINDINGS.md.

An input is first rounded to the dtype (inputs and soft targets: the implementation sees
dtype values, the reference is evaluated at exactly those values); the error of each
element is ``spec.tolerance.error_in_u`` against the certified value, with the reference's
gradient scale as the denominator of gradient errors.  Nothing here computes a loss in
numpy: expected values come only from mpmath.

Also run as a script (once per environment: /work/venv-tv for the torch libraries,
/work/venv for TensorFlow/JAX):

    python tests/thirdparty_support.py sweep OUT.json      # every failure on the focused grid
    python tests/thirdparty_support.py findings            # (re)measure reports/findings_verified.json entries

"shipped" implementations (torchvision, optax, Keras) are called directly here through
``Direct*`` callers with the adapter interface; their own adapters are written elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpmath
import numpy as np

from focalspec.adapters.base import AdapterError, Output
from focalspec.conformance.suite import grading
from focalspec.reference import exact as mpref
from focalspec.reference.rounding import get_format, round_array, round_mpf
from focalspec.spec.tolerance import budget
from focalspec.spec.variant import Variant

ROOT = Path(__file__).resolve().parent.parent
FINDINGS_JSON = ROOT / "reports" / "findings_verified.json"

HARD_X = [-1e4, -100.0, -40.0, -17.0, -5.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 5.0, 17.0, 40.0, 100.0, 1e4]
GAMMAS = [0.0, 0.5, 1.0, 2.0, 5.0]
ALPHAS: list[float | None] = [None, 0.25]
SOFT_T = [0.1, 0.3, 0.9]
DTYPES = ["float32", "float64"]


# ----------------------------------------------------------------------------- rounding


def dtype_round(a: Any, dtype: str) -> np.ndarray:
    """float64 array of the values rounded (to nearest) to ``dtype``."""
    arr = np.asarray(a, dtype=np.float64)
    return arr.astype(get_format(dtype).numpy_type).astype(np.float64)


def exact_float(values: np.ndarray, dtype: str) -> np.ndarray:
    """Certified mp values as float64, infinite where they overflow ``dtype``."""
    out = round_array(values, "float64")
    over = np.vectorize(lambda v: math.isinf(round_mpf(v, dtype)), otypes=[bool])(values) if values.size else out > 0
    return np.where(over & np.isfinite(out), np.sign(out) * np.inf, out)


def prepare(variant: Variant, inputs: Any, targets: Any, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and float targets rounded to the dtype (integer labels pass through)."""
    x = dtype_round(inputs, dtype)
    t = np.asarray(targets)
    if t.dtype.kind == "f":
        t = dtype_round(t, dtype)
    return x, t


# ----------------------------------------------------------------------------- grading


@dataclass
class Graded:
    """One run graded by the suite's own comparison (``conformance.suite.grading.measure``)."""

    variant: Variant  # the declared variant the reference was evaluated for
    inputs: np.ndarray
    targets: np.ndarray
    output: Output
    expected: grading.Expected
    value: grading.Measure
    grad: grading.Measure | None


def flagged(m: grading.Measure) -> bool:
    """Beyond the 'acceptable' budget, or non-finite where the reference is finite."""
    return not m.passed


def declared(adapter: Any, variant: Variant, inputs: np.ndarray) -> Variant:
    n_classes = int(inputs.shape[-1]) if variant.activation == "softmax" and inputs.ndim else None
    return adapter.declared_variant(variant, n_classes=n_classes)


def grade(
    adapter: Any,
    variant: Variant,
    inputs: Any,
    targets: Any,
    dtype: str,
    want_grad: bool = True,
    reference: Variant | None = None,
) -> Graded:
    """Run ``adapter`` on the dtype-rounded inputs and grade it, as the suite grades a third-party
    implementation ('acceptable'), against the mp reference of its declared variant (or of
    ``reference`` when given).  The budget counts the terms of a reduced value, for the gradient too."""
    x, t = prepare(variant, inputs, targets, dtype)
    ref_variant = reference or declared(adapter, variant, x)
    exp = grading.expected(ref_variant, x, t, dtype)
    out = adapter.run(variant, x, t, dtype, want_grad=want_grad)
    bud = budget(dtype, variant.gamma, 1 if variant.reduction == "none" else max(1, x.size))
    value = grading.measure("value", np.asarray(out.loss, dtype=np.float64), exp.value, np.abs(exp.value), dtype, bud,
                            grading.THIRD_PARTY_GRADE)  # fmt: skip
    grad = None
    if want_grad and out.grad is not None:
        grad = grading.measure("grad", np.asarray(out.grad, dtype=np.float64), exp.grad, exp.grad_scale, dtype, bud,
                               grading.THIRD_PARTY_GRADE)  # fmt: skip
    return Graded(ref_variant, x, t, out, exp, value, grad)


def margin_allowance(variant: Variant, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Extra error (in u) that the margin convention's own conditioning allows: its
    1 - p_t = sigmoid(-x (2t - 1)) has condition number ~|x m| in m = 2t - 1, which an
    implementation forms with a rounding (see reference/float64.py margin_bound)."""
    if variant.soft_target != "margin" or variant.activation != "sigmoid":
        return np.zeros(np.shape(x))
    return 2 * variant.gamma * np.abs(x * (2 * t - 1)) + 2


# ----------------------------------------------------------------------------- direct callers


Call = Callable[[Variant, np.ndarray, np.ndarray, str], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Direct:
    """A shipped implementation called directly, with the subset of the adapter interface
    the grading needs.  Used for findings only; the project's own adapters for these live
    in adapters/thirdparty/torchvision_adapter.py, thirdparty/optax_adapter.py and thirdparty/keras_adapter.py."""

    name: str
    implementation: str
    package: str
    module: str
    framework: str  # the module whose __version__ pins a finding, next to the package's
    call: Call  # (variant, x, t, dtype) -> (elementwise loss, gradient of its sum)
    convention: str = ""

    def framework_version(self) -> str | None:
        try:
            return str(importlib.import_module(self.framework).__version__)
        except Exception:
            return None

    def unavailable_reason(self) -> str | None:
        try:
            importlib.import_module(self.module)
            return None
        except Exception as exc:
            return f"{self.package} is not installed here ({type(exc).__name__})"

    def package_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return variant

    def supports(self, variant: Variant, dtype: str, device: str = "cpu", mode: str = "eager") -> str | None:
        reason = self.unavailable_reason()
        if reason:
            return reason
        if variant.activation != "sigmoid" or variant.input_kind != "logits" or variant.reduction != "none":
            return f"{self.name} direct caller: sigmoid logits, reduction none only"
        if variant.label_smoothing or variant.clip_eps is not None or variant.soft_target != "canonical":
            return f"{self.name} direct caller: canonical only"
        return None

    def run(self, variant: Variant, inputs: np.ndarray, targets: np.ndarray, dtype: str, **kw: Any) -> Output:
        reason = self.supports(variant, dtype)
        if reason:
            raise AdapterError(reason)
        try:
            loss, grad = self.call(variant, inputs, targets, dtype)
        except Exception as exc:
            raise AdapterError(f"{self.name}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        return Output(loss=loss, grad=grad, ran={"package_version": self.package_version()})

def _torchvision(variant: Variant, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from torchvision.ops import sigmoid_focal_loss

    dt = getattr(torch, dtype)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dt).requires_grad_(True)
    tt = torch.from_numpy(np.ascontiguousarray(t, dtype=np.float64)).to(dt)
    alpha = -1.0 if variant.alpha is None else float(variant.alpha)  # type: ignore[arg-type]
    loss = sigmoid_focal_loss(xt, tt, alpha=alpha, gamma=variant.gamma, reduction="none")
    (g,) = torch.autograd.grad(loss.sum(), xt)
    return loss.detach().double().numpy(), g.double().numpy()


def _optax(variant: Variant, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    xj = jnp.asarray(x, dtype=dtype)
    tj = jnp.asarray(t, dtype=dtype)

    def f(z: Any) -> Any:
        return optax.losses.sigmoid_focal_loss(z, tj, alpha=variant.alpha, gamma=variant.gamma)

    loss = f(xj)
    g = jax.grad(lambda z: jnp.sum(f(z)))(xj)
    return np.asarray(loss, dtype=np.float64), np.asarray(g, dtype=np.float64)


def _keras(variant: Variant, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """keras.losses.binary_focal_crossentropy(from_logits=True) on (n, 1) so that its mean
    over the last axis is the identity.  On the TensorFlow backend the BCE is computed from
    the logits that ``ops.sigmoid`` attaches to its output (``_get_logits``), so the 1e-7
    clip of the probability BCE does not apply; the modulating factor uses the unclipped
    sigmoid.  Findings recorded for Keras are non-finite results only (convention-free)."""
    import keras
    import tensorflow as tf

    xt = tf.constant(np.asarray(x).reshape(-1, 1), dtype=dtype)
    tt = tf.constant(np.asarray(t, dtype=np.float64).reshape(-1, 1), dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = keras.losses.binary_focal_crossentropy(
            tt,
            xt,
            apply_class_balancing=variant.alpha is not None,
            alpha=0.25 if variant.alpha is None else float(variant.alpha),  # type: ignore[arg-type]
            gamma=variant.gamma,
            from_logits=True,
        )
        total = tf.reduce_sum(loss)
    g = tape.gradient(total, xt)
    shape = np.shape(x)
    return np.asarray(loss.numpy(), np.float64).reshape(shape), np.asarray(g.numpy(), np.float64).reshape(shape)


DIRECT: dict[str, Direct] = {d.name: d for d in (
    Direct("direct:torchvision", "torchvision.ops.sigmoid_focal_loss", "torchvision", "torchvision.ops", "torch",
           _torchvision),
    Direct("direct:optax", "optax.losses.sigmoid_focal_loss", "optax", "optax", "jax", _optax),
    Direct("direct:keras", "keras.losses.binary_focal_crossentropy", "keras", "keras", "tensorflow", _keras),
)}  # fmt: skip


class Sam3Finding:
    """A SAM3 Triton adapter (adapters/thirdparty/sam3_adapter.py) with the interface the findings need:
    the sam3 package pins a finding; on CPU it runs under the Triton interpreter."""

    package = "sam3"

    def __init__(self, name: str) -> None:
        from focalspec.adapters.thirdparty.sam3_adapter import Sam3Adapter

        self.adapter = Sam3Adapter(reduced=name.endswith("-sum"))
        if self.adapter.name != name:
            raise KeyError(name)
        self.name = name

    def unavailable_reason(self) -> str | None:
        return self.adapter.unavailable_reason()

    def package_version(self) -> str | None:
        from focalspec.adapters.thirdparty.sam3_adapter import sam3_version

        return sam3_version()

    def framework_version(self) -> str | None:
        import torch

        return str(torch.__version__)

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return variant

    def run(self, variant: Variant, x: Any, t: Any, dtype: str, want_grad: bool = True) -> Any:
        from focalspec.adapters.own_triton import INTERPRET

        device = "cuda" if "cuda" in self.adapter.devices() and INTERPRET not in self.adapter.modes else "cpu"
        mode = self.adapter.modes[0] if device == "cuda" else INTERPRET
        return self.adapter.run(variant, x, t, dtype, device, mode, want_grad)


class KerasFinding:
    """A Keras adapter (adapters/thirdparty/keras_adapter.py) with the interface the findings need: the
    keras package pins a finding, its backend is the framework.  Findings through it are
    stated for Keras's declared variant (its 1e-7 clip), so they are defects, not conventions."""

    package = "keras"

    def __init__(self, name: str) -> None:
        from focalspec.adapters.thirdparty.keras_adapter import keras_adapters

        self.adapter = {a.name: a for a in keras_adapters()}[name]
        self.name = name
        self.implementation = self.adapter.implementation
        self.framework = self.adapter.backend

    def unavailable_reason(self) -> str | None:
        return self.adapter.unavailable_reason()

    def package_version(self) -> str | None:
        try:
            return importlib.metadata.version("keras")
        except importlib.metadata.PackageNotFoundError:
            return None

    def framework_version(self) -> str | None:
        return self.adapter.framework_version()

    def declared_variant(self, variant: Variant, n_classes: int | None = None) -> Variant:
        return self.adapter.declared_variant(variant)

    def run(self, variant: Variant, *args: Any, **kwargs: Any) -> Output:
        """Run what Keras computes for the finding's variant (binary: its clip in the BCE only)."""
        return self.adapter.run(self.adapter.declared_variant(variant), *args, **kwargs)


def get_impl(name: str) -> Any:
    """The adapter (or direct caller) called ``name``; AdapterError when it is unknown."""
    if name in DIRECT:
        return DIRECT[name]
    if name.startswith("sam3-"):
        try:
            return Sam3Finding(name)
        except KeyError:
            raise AdapterError(f"unknown implementation {name!r}") from None
    if name.startswith("keras-"):
        try:
            return KerasFinding(name)
        except KeyError:
            raise AdapterError(f"unknown implementation {name!r}") from None
    from focalspec.adapters.registry import third_party_adapters

    for adapter in third_party_adapters():
        if adapter.name == name:
            return adapter
    raise AdapterError(f"unknown implementation {name!r}")


def impl_version(impl: Any) -> str | None:
    return impl.package_version()


# ----------------------------------------------------------------------------- sweep


def _sigmoid_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    xs = np.array(HARD_X)
    cases = [("hard", np.concatenate([xs, xs]), np.concatenate([np.zeros_like(xs), np.ones_like(xs)]))]
    for ts in SOFT_T:
        cases.append((f"soft{ts:g}", xs.copy(), np.full_like(xs, ts)))
    return cases


def _softmax_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    xs = np.array(HARD_X)
    rows = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], axis=-1)
    return [("label0", rows, np.zeros(len(xs), dtype=np.int64)), ("label1", rows, np.ones(len(xs), dtype=np.int64))]


def sweep(names: list[str]) -> list[dict[str, Any]]:
    """Every flagged element of every implementation on the focused grid."""
    rows: list[dict[str, Any]] = []
    for name in names:
        impl = get_impl(name)
        if impl.unavailable_reason():
            print(f"{name}: unavailable: {impl.unavailable_reason()}", file=sys.stderr)
            continue
        for dtype in DTYPES:
            for gamma in GAMMAS:
                for alpha in ALPHAS:
                    for act in ("sigmoid", "softmax"):
                        v = Variant(activation=act, gamma=gamma, alpha=alpha)  # type: ignore[arg-type]
                        if impl.supports(v, dtype, "cpu", "eager"):
                            continue
                        cases = _sigmoid_cases() if act == "sigmoid" else _softmax_cases()
                        for kind, x, t in cases:
                            rows.extend(_sweep_one(impl, v, kind, x, t, dtype))
        print(f"{name}: done, {sum(r['impl'] == name for r in rows)} flagged elements", file=sys.stderr)
    return rows


def _sweep_one(impl: Any, v: Variant, kind: str, x: np.ndarray, t: np.ndarray, dtype: str) -> list[dict[str, Any]]:
    base = {"impl": impl.name, "dtype": dtype, "gamma": v.gamma, "alpha": v.alpha, "kind": kind}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = grade(impl, v, x, t, dtype)
    except AdapterError as exc:
        return [{**base, "error": str(exc)}]
    found = []
    extra = margin_allowance(g.variant, g.inputs, g.targets) if g.targets.dtype.kind == "f" else 0
    for chk, exp, got in ((g.value, g.expected.value, g.output.loss), (g.grad, g.expected.grad, g.output.grad)):
        if chk is None:
            continue
        err = chk.err
        lim = chk.budget.acceptable + (extra if np.shape(extra) == err.shape else 0)
        bad = ~(err <= lim)
        for idx in zip(*np.nonzero(bad), strict=False):
            found.append(
                {
                    **base,
                    "check": chk.which,
                    "x": g.inputs[idx[0]].tolist(),
                    "t": g.targets[idx[0]].tolist(),
                    "expected": float(exp[idx]),
                    "observed": float(np.asarray(got)[idx]),
                    "err_u": float(err[idx]),
                    "acceptable": chk.budget.acceptable,
                }
            )
    return found


# ----------------------------------------------------------------------------- findings


def measure_finding(f: dict[str, Any]) -> dict[str, Any]:
    """(Re)measure one finding: expected, observed, err_u at its exact input."""
    impl = get_impl(f["adapter"])
    variant = Variant.from_dict(f["variant"])
    targets = np.asarray(f["targets"], dtype=np.int64 if f.get("integer_targets") else np.float64)
    inputs = np.asarray(f["inputs"], dtype=np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = grade(impl, variant, inputs, targets, f["dtype"])
    except AdapterError as exc:
        x, t = prepare(variant, inputs, targets, f["dtype"])
        ref = mpref.evaluate(declared(impl, variant, x), x, t)
        vals = ref.losses if ref.value is None else np.array(ref.value, dtype=object)
        return {
            "expected_digits": [mpmath.nstr(v, 20) for v in np.ravel(vals)],
            "expected": exact_float(vals, "float64").tolist(),
            "observed": f"error: {exc}",
            "err_u": math.inf,
        }
    value = f["check"] == "value"
    chk = g.value if value else g.grad
    assert chk is not None
    ref = mpref.evaluate(g.variant, g.inputs, g.targets)  # the certified digits, beyond float64
    certified = (ref.losses if ref.value is None else [ref.value]) if value else ref.grad
    return {
        "expected_digits": [mpmath.nstr(v, 20) for v in np.ravel(np.asarray(certified, dtype=object))],
        "expected": (g.expected.value if value else g.expected.grad).tolist(),
        "observed": np.asarray(g.output.loss if value else g.output.grad, dtype=np.float64).tolist(),
        "err_u": chk.max_err,
        "acceptable": chk.budget.acceptable,
        "flagged": flagged(chk),
    }


def _json_float(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # "inf", "nan": JSON has no literal for them
    if isinstance(v, list):
        return [_json_float(e) for e in v]
    return v


def update_findings() -> int:
    """Re-measure every finding whose implementation is available here and write the file."""
    data = json.loads(FINDINGS_JSON.read_text())
    for f in data:
        impl = get_impl(f["adapter"])
        if impl.unavailable_reason():
            continue
        f["version"] = impl_version(impl)
        f["framework"] = impl.framework
        f["framework_version"] = impl.framework_version()
        m = measure_finding(f)
        f.update({k: _json_float(v) for k, v in m.items() if k in ("expected", "expected_digits", "observed", "err_u")})
        print(f"{f['id']}: err_u={m['err_u']:.4g} flagged={m.get('flagged', True)}", file=sys.stderr)
    FINDINGS_JSON.write_text(json.dumps(data, indent=1) + "\n")
    return 0


def sweep_names() -> list[str]:
    """The third-party adapters a CPU sweep can run, from the registry: those a conformance env tests
    (not fvcore-star, which refuses every variant), not focalspec's own, not CUDA-only (mmcv)."""
    from focalspec.adapters.registry import third_party_adapters

    return [
        a.name
        for a in third_party_adapters()
        if a.env and not a.implementation.startswith("focalspec.") and not getattr(a, "cuda_only", False)
    ]


def main(argv: list[str]) -> int:
    if argv[:1] == ["sweep"]:
        names = argv[2:] or [*sweep_names(), *DIRECT]
        Path(argv[1]).write_text(json.dumps(sweep(names), indent=0))
        return 0
    if argv[:1] == ["findings"]:
        return update_findings()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
