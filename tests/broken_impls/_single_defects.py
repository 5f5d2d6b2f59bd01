"""The planted defects of single_defect_{torch,jax,tf}.py: one table, installed per framework.

Each entry: the keyword options of the framework's ``_focal`` that plant it, its cause
(conformance.causes.CAUSES) and a one-line description.
"""

from __future__ import annotations

from typing import Any

DEFECTS: dict[str, tuple[dict[str, Any], str, str]] = {
    "one_minus_p": ({"factor": "one_minus_p"}, "one_minus_p_cancellation",
                    "1 − p_t formed as 1 − p from a rounded σ (with a bounded power)."),
    "naive_log": ({"ce": "naive_log"}, "bce_cancellation", "−log(σ(x)) and −log(1 − σ(x)) of a rounded σ."),
    "eps_in_log": ({"ce": "eps"}, "clip_epsilon", "−log(σ + 1e-6): the 'safe log'."),
    "naive_pow": ({"power": "autodiff"}, "nonfinite_at_finite",
                  "Autodiff through (1 − p_t)**γ: NaN for 0 < γ < 1 once 1 − p_t underflows to 0."),
    "float32_inside": ({"compute": "float32"}, "low_precision_compute", "Computes float64 inputs in float32."),
    "clamped_logits": ({"clamp": 20.0}, "clip_epsilon", "Logits clamped to [−20, 20]."),
    "wrong_alpha_side": ({"alpha_side": "wrong"}, "convention", "α on the negatives."),
    "detached_factor": ({"detach": True}, "convention", "The factor detached (stop_gradient/.detach())."),
}  # fmt: skip


def install(namespace: dict[str, Any], focal: Any, extra: dict[str, tuple[dict[str, Any], str, str]]) -> dict[str, str]:
    """Define ``careful`` and one function per defect in ``namespace``; return {name: planted cause}."""

    def make(opts: dict[str, Any], doc: str) -> Any:
        def f(x: Any, t: Any, alpha: float | None = 0.25, gamma: float = 2.0) -> Any:
            return focal(x, t, alpha, gamma, **opts)

        f.__doc__ = doc
        return f

    namespace["careful"] = make({}, "The careful form: no defect.")
    planted = {}
    for name, (opts, cause, doc) in {**DEFECTS, **extra}.items():
        namespace[name] = make(opts, doc)
        namespace[name].__name__ = name
        planted[name] = cause
    return planted
