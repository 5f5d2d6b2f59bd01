"""Contract checks: what a loss function must not do besides computing the right numbers.

Each is a named check (``test_contract[...-contract_<kind>]``) of an adapter that can *probe*
its implementation: one raw call, without autodiff, that reports what came back (type, dtype,
shape, whether it carries autograd state) and whether the input tensors were changed in place.

* ``returns_tensor``    -- the result is the framework's tensor, not a float, list or numpy array
  (reductions 'none' and 'mean');
* ``dtype_shape``       -- in the input dtype, with the shape the reduction implies ('none' and 'mean');
* ``inputs_unchanged``  -- the inputs and targets are not mutated in place;
* ``deterministic``     -- two calls on the same inputs give bitwise the same loss;
* ``no_grad_leak``      -- no autograd graph is attached to a loss of inputs that require none
  (torch; JAX and TF arrays carry no such state).

The data: one fixed batch per variant flavour (sigmoid on logits, sigmoid on probabilities,
softmax with class indices), the first the adapter supports.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from focalspec.conformance.suite.families import SuiteCase
from focalspec.spec.variant import Variant

KINDS: tuple[str, ...] = ("returns_tensor", "dtype_shape", "inputs_unchanged", "deterministic", "no_grad_leak")
SECTION = "§10.6"
REDUCTIONS = ("none", "mean")  # what the probes of returns_tensor and dtype_shape ask, in order


def _batches() -> list[tuple[Variant, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20261203)
    x = np.round(rng.normal(0.0, 3.0, size=(4, 8)), 3)
    t = rng.integers(0, 2, size=(4, 8)).astype(np.float64)
    p = np.round(rng.uniform(0.02, 0.98, size=(4, 8)), 3)
    xs = np.round(rng.normal(0.0, 3.0, size=(6, 5)), 3)
    ts = rng.integers(0, 5, size=6).astype(np.float64)
    return [
        (Variant(gamma=2.0, alpha=0.25, reduction="none"), x, t),
        (Variant(gamma=2.0, alpha=0.25, input_kind="probs", reduction="none"), p, t),
        (Variant(activation="softmax", gamma=2.0, alpha=None, reduction="none"), xs, ts),
    ]


def cases() -> dict[str, list[SuiteCase]]:
    """Per kind, the candidate cases in order of preference (same id: one runs per adapter)."""
    out: dict[str, list[SuiteCase]] = {}
    for kind in KINDS:
        out[kind] = [
            SuiteCase(f"contract_{kind}", "contract", v, x, t, SECTION, compiled=False, note=f"contract: {kind}")
            for v, x, t in _batches()
        ]
    return out


def expected_shape(v: Variant, x: np.ndarray) -> tuple[int, ...]:
    if v.reduction != "none":
        return ()
    return tuple(x.shape[:-1]) if v.activation == "softmax" else tuple(x.shape)


def _type_problem(obs: dict[str, Any], reduction: str) -> str | None:
    if obs.get("is_tensor"):
        return None
    return f"returned a {obs.get('type')}, not a {obs.get('tensor_type')} (reduction {reduction!r})"


def judge(kind: str, v: Variant, x: np.ndarray, dtype: str, probes: list[dict[str, Any]]) -> str | None:
    """None when the contract holds, else the one-line finding.  ``probes``: for
    ``deterministic`` two probes of ``v``; for ``returns_tensor`` and ``dtype_shape`` probes of ``v`` and of its 'mean'
    reduction (when supported); else one."""
    first = probes[0]
    if kind == "returns_tensor":
        found = [_type_problem(obs, red) for obs, red in zip(probes, REDUCTIONS, strict=False)]
        return next((bad for bad in found if bad), None)
    if kind == "dtype_shape":
        for obs, red in zip(probes, REDUCTIONS, strict=False):
            bad = _type_problem(obs, red)
            if bad:
                return bad
            want = expected_shape(replace(v, reduction=red), x)  # type: ignore[arg-type]
            if obs["dtype"] != dtype:
                return f"returned {obs['dtype']} for {dtype} inputs (reduction {red!r})"
            if tuple(obs["shape"]) != want:
                return f"returned shape {tuple(obs['shape'])}; reduction {red!r} of inputs {x.shape} gives {want}"
        return None
    if kind == "inputs_unchanged":
        before, after = first.get("before") or {}, first.get("after") or {}
        changed = {k: d for k in before if (d := describe_changes(before[k], after[k]))}
        if not changed:
            return None
        return "mutated its arguments in place: " + "; ".join(f"{k}: {d}" for k, d in changed.items())
    if kind == "deterministic":
        a, b = (np.asarray(p.get("value"), dtype=np.float64) for p in probes[:2])
        if a.shape != b.shape:
            return f"two calls on the same inputs returned shapes {a.shape} and {b.shape}"
        differ = differing(a, b)
        if not differ.any():
            return None
        diff = np.abs(a - b)[differ]
        scale = np.maximum(np.abs(a), np.abs(b))[differ]
        rel = np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1), np.inf))
        return (
            f"two calls on the same inputs differ in {int(differ.sum())} of {a.size} elements: "
            f"max |difference| {np.max(diff):.3g}, max relative {rel:.3g}"
        )
    if kind == "no_grad_leak":
        if not first.get("grad_attached"):
            return None
        return (
            f"returned a loss that requires grad (grad_fn {first.get('grad_fn')}) although no input requires "
            "grad: it attaches a tensor of its own to the graph"
        )
    raise ValueError(f"unknown contract {kind!r}")


def differing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where two equally shaped arrays differ, NaN counting as equal to NaN."""
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def describe_changes(before: np.ndarray, after: np.ndarray) -> str:
    """'' when equal, else how many elements changed and the first one."""
    a = np.asarray(before, dtype=np.float64)
    b = np.asarray(after, dtype=np.float64)
    if a.shape != b.shape:
        return f"shape changed from {a.shape} to {b.shape}"
    differ = differing(a, b)
    if not differ.any():
        return ""
    i = tuple(int(k) for k in np.argwhere(differ)[0])
    first = f"first at {list(i)}: {float(a[i])!r} became {float(b[i])!r}"
    return f"{int(differ.sum())} of {a.size} elements changed ({first})"
