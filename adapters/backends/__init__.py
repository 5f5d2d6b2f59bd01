"""The frameworks, once each: tensor conversion, devices, dtypes, autodiff and compiled mode.

One module per framework (``torch_backend``, ``jax_backend``, ``tf_backend``, ``paddle_backend``),
used by focalspec's own adapters, the third-party adapters (``adapters/thirdparty/``) and the
callable adapter.  Each module imports its framework on first use only: listing adapters must
not pay for four framework imports.  This package itself imports no framework.

``CallBackend`` is what the callable adapter needs of a framework: inputs in, the user's
callable, autodiff of the summed loss, numpy out, and one raw call for the contract probes.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np

from focalspec.adapters.base import AdapterError


def probe_mutable(
    call: Callable[[Any, Any], Any], x: Any, t: Any, snapshot: Callable[[], dict[str, np.ndarray]], tensor_type: type,
    tensor_name: str,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """One probing call of a framework whose tensors can be written in place (torch, paddle): the
    arguments are snapshotted before and after, for contracts.py to judge."""
    before = snapshot()
    out = call_for_probe(call, x, t)
    return out, observed(out, tensor_type, tensor_name, before, snapshot())


def tensor_loss(run: Callable[[], Any], tensor_type: type, tensor_name: str) -> Any:
    """What the callable returned (``run()``): a raise becomes one AdapterError line, and anything but
    a tensor of the framework is refused (torch, paddle: the loss comes alone, the gradient after)."""
    try:
        loss = run()
    except Exception as exc:
        raise AdapterError(describe_exc(exc)) from exc
    if not isinstance(loss, tensor_type):
        raise AdapterError(f"the callable returned {type(loss).__name__}, not a {tensor_name}")
    return loss


def not_installed(package: str, extra: str) -> str | None:
    """Why a framework cannot be used here (it is not installed), or None; found without importing it."""
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed (pip install focalspec[{extra}])"
    return None


RETURNED_DTYPE = "returned_dtype"  # Output.ran key: the callable broke the dtype contract (graded as returned)

# framework -> "module:class" of its CallBackend (imported when a callable of that framework runs)
CALL_BACKENDS: dict[str, str] = {
    "torch": "focalspec.adapters.backends.torch_backend:TorchCallBackend",
    "jax": "focalspec.adapters.backends.jax_backend:JaxCallBackend",
    "tensorflow": "focalspec.adapters.backends.tf_backend:TfCallBackend",
    "paddle": "focalspec.adapters.backends.paddle_backend:PaddleCallBackend",
}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (300 characters at most)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def call_backend(framework: str) -> CallBackend:
    """A new CallBackend of ``framework`` (imports the framework)."""
    module_name, _, cls = CALL_BACKENDS[framework].partition(":")
    made: CallBackend = getattr(importlib.import_module(module_name), cls)()
    return made


def describe_exc(exc: BaseException) -> str:
    return f"the callable raised {type(exc).__name__}: {first_line(exc)}"


class CallBackend:
    """One framework: tensors in, the callable, autodiff of the summed loss, numpy out."""

    framework = ""

    def devices(self) -> tuple[str, ...]:
        raise NotImplementedError

    def evaluate(
        self,
        call: Callable[[Any, Any], Any],
        key: Any,
        inputs: np.ndarray,
        targets: np.ndarray,
        dtype: str,
        device: str,
        mode: str,
        want_grad: bool,
        softmax: bool,
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
        raise NotImplementedError

    def probe(
        self, call: Callable[[Any, Any], Any], inputs: np.ndarray, targets: np.ndarray, dtype: str, device: str,
        softmax: bool,
    ) -> dict[str, Any]:  # fmt: skip
        raise NotImplementedError

    def warm_up_compiler(self) -> None:
        """Load the compiler, e.g. by compiling and differentiating x*x once (``CallableAdapter.warm_up``)."""


def call_for_probe(call: Callable[[Any, Any], Any], x: Any, t: Any) -> Any:
    try:
        return call(x, t)
    except Exception as exc:
        raise AdapterError(describe_exc(exc)) from exc



RETURNED_DTYPE = "returned_dtype"  # Output.ran key: the callable broke the dtype contract (graded as returned)


def returned_dtype(got: Any, want: Any, what: str = "the callable") -> dict[str, str]:
    """A dtype-contract breach, as a note rather than an error: the numbers that came back are
    still graded (exactly, in float64), so that "float64 computed in float32" can be said of them;
    the breach itself is the ``dtype_shape`` contract check's failure (conformance/suite/contracts.py)."""
    if str(got) == str(want):
        return {}
    return {RETURNED_DTYPE: f"{what} returned {got} for {want} inputs"}


def observed(
    out: Any, tensor_type: type, tensor_name: str, before: dict[str, np.ndarray], after: dict[str, np.ndarray]
) -> dict[str, Any]:
    """The framework-independent part of a probe: what type came back, the arguments before and after."""
    t = type(out)
    return {
        "type": f"{t.__module__}.{t.__qualname__}".removeprefix("builtins."),
        "tensor_type": tensor_name,
        "is_tensor": isinstance(out, tensor_type),
        "shape": tuple(getattr(out, "shape", ())) if isinstance(out, tensor_type) else None,
        "dtype": None,
        "grad_attached": False,
        "grad_fn": None,
        "value": None,
        "before": before,  # the arguments as passed and as left (contracts.py judges)
        "after": after,
    }
