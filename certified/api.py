"""``focalspec.golden(...)``: the certified focal loss of any input, for a docs writer to cite.

What is exact: inputs ``x``, targets ``y`` and weights given as strings are exact decimals
(``"0.95"`` is 95/100); Python floats are their exact binary value (``0.95`` is the float64
nearest to 0.95), ints are exact.  Parameters (``alpha``, ``gamma``, ``clip_eps``,
``label_smoothing``) are float64, as SPEC.md defines them: ``alpha="0.1"`` means
``float(0.1)``.  ``input_dtype="float32"`` rounds the inputs, soft targets and weights to
float32 first (what a library computing in float32 is handed), and ``round_params=True``
the parameters too (a library that casts them to the input dtype).

>>> import focalspec
>>> g = focalspec.golden("0.95", 1, kind="probs", alpha=0.25, gamma=2)
>>> g.value                       # 34 significant digits, each one proven
'3.205830899221908339137259015917952e-05'
>>> g.status, g.digits
('proven', 34)
>>> g.rounded["float32"], g.rounded["bfloat16"]    # correctly rounded, held in a float64
(3.205830944352783e-05, 3.1948089599609375e-05)
>>> g.grad                        # d loss / d p
'-1.940227096530868598812798343209286e-03'

Keras' ``BinaryFocalCrossentropy(gamma=4, from_logits=True, reduction="sum")`` docstring
example -- its "sum" is a sum of per-sample means over the last axis, on float32 inputs:

>>> k = focalspec.golden([["-18.6", "0.51"], ["2.94", "-12.8"]], [[0, 1], [0, 0]], alpha=None,
...                      gamma=4, reduction="keras-sum", input_dtype="float32")
>>> k.at(3)                       # the certified value at 3 significant digits
'1.22'
>>> print(k.command())  # doctest: +ELLIPSIS
focalspec golden --x=-18.6,0.51 --x 2.94,-12.8 --y 0,1 --y 0,0 --alpha none --gamma 4 --reduction keras-sum ...
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import mpmath
import numpy as np

from focalspec.certified.certify import GUARD, _evaluator, certify
from focalspec.certified.prove import Disproved, flatten, prove_fn
from focalspec.spec.reductions import LIBRARY_REDUCTIONS, LibraryReduction
from focalspec.spec.rounding import FORMATS, round_mpf
from focalspec.spec.variant import REDUCTIONS, SpecError, Variant

Number = str | float | int


# ----------------------------------------------------------------------------- exact input handling


def exact_text(what: str, v: Any) -> str:
    """A number as the exact decimal the reference reads: strings validated, floats exactly."""
    if isinstance(v, bool):
        raise SpecError(f"{what} must be a number, got {v!r}")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if not np.isfinite(v) else str(Decimal(v))
    if isinstance(v, str):
        t = v.strip()
        try:
            d = Decimal(t)
        except InvalidOperation:
            raise SpecError(f"malformed number for {what}: {v!r}") from None
        if d.is_snan():
            raise SpecError(f"{what} must be a number, got {v!r}")
        return t
    raise SpecError(f"{what} must be a number or a decimal string, got {type(v).__name__}")


def round_to_dtype(text: str, dtype: str) -> float:
    """The exact decimal ``text`` correctly rounded to ``dtype`` (one rounding: the decimal is
    first held with more bits than any decimal of its length needs to stay off a dtype tie)."""
    d = Decimal(text)
    if not d.is_finite():
        return float(text)
    tup = d.as_tuple()
    assert isinstance(tup.exponent, int)
    bits = 128 + 4 * (len(tup.digits) + abs(tup.exponent))
    with mpmath.workprec(bits):
        return round_mpf(mpmath.mpf(text), dtype)


def _param(what: str, v: Any) -> float:
    """A parameter as SPEC reads it: float64."""
    if isinstance(v, str):
        return float(Decimal(exact_text(what, v)))
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SpecError(f"{what} must be a number, got {v!r}")
    return float(v)


def _check_dtype(dtype: str | None) -> None:
    if dtype is not None and dtype not in FORMATS:
        raise SpecError(f"unknown dtype {dtype!r}; expected one of {', '.join(FORMATS)}")


def _nested(what: str, data: Any, conv: Any) -> Any:
    if isinstance(data, list | tuple | np.ndarray):
        return [_nested(what, d, conv) for d in data]
    return conv(what, data)


# ----------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class Request:
    """A fully resolved question: the variant, the exact inputs and targets as the reference
    reads them, and a library reduction if one is named."""

    variant: Variant
    inputs: Any
    targets: Any
    reduction: LibraryReduction | None = None
    argv: tuple[str, ...] = field(default=(), compare=False)  # the equivalent `focalspec golden` words


def request(
    x: Any,
    y: Any,
    *,
    kind: str = "logits",
    softmax: bool = False,
    alpha: Any = 0.25,
    gamma: Any = 2.0,
    variant: str = "canonical",
    clip_eps: Any = None,
    clip_scope: str = "all",
    label_smoothing: Any = 0.0,
    renormalize: bool = False,
    reduction: str = "none",
    sample_weight: Sequence[Number] | None = None,
    class_weight: Sequence[Number] | None = None,
    input_dtype: str | None = None,
    round_params: bool = False,
) -> Request:
    """Validate and resolve the arguments of ``golden`` (SpecError, one line, on bad input)."""
    _check_dtype(input_dtype)
    if round_params and input_dtype is None:
        raise SpecError("round_params needs input_dtype (the dtype the parameters are rounded to)")
    if kind not in ("logits", "probs", "prob"):
        raise SpecError(f"unknown input kind {kind!r}; expected logits or probs")

    def rp(v: float) -> float:
        return round_mpf(mpmath.mpf(v), input_dtype) if round_params and input_dtype else v

    if alpha is None or (isinstance(alpha, str) and alpha.strip().lower() == "none"):
        a: Any = None
    elif isinstance(alpha, list | tuple) or (isinstance(alpha, str) and "," in alpha):
        items = alpha.split(",") if isinstance(alpha, str) else alpha
        a = tuple(rp(_param("alpha", s)) for s in items)
        if len(a) == 1:
            a = a[0]
    else:
        a = rp(_param("alpha", alpha))
    lib = None
    if reduction in LIBRARY_REDUCTIONS:
        def conv(w: Any) -> str:  # the exact decimal of the dtype value (a repr would be read as its digits)
            return exact_text("weight", round_to_dtype(exact_text("weight", w), input_dtype)) if input_dtype else w


        def weights(ws: Any) -> tuple[str, ...] | None:
            if ws is None:
                return None
            items = ws.split(",") if isinstance(ws, str) else list(ws)
            return tuple(conv(exact_text("weight", w)) for w in items)

        lib = LibraryReduction(reduction, weights(sample_weight), weights(class_weight))
        reduction = "none"
    elif reduction not in REDUCTIONS:
        names = ", ".join((*REDUCTIONS, *LIBRARY_REDUCTIONS))
        raise SpecError(f"unknown reduction {reduction!r}; expected one of {names}")
    elif sample_weight is not None or class_weight is not None:
        raise SpecError(f"sample and class weights go with a library reduction ({', '.join(LIBRARY_REDUCTIONS)})")
    v = Variant(
        activation="softmax" if softmax else "sigmoid",
        input_kind="probs" if kind in ("prob", "probs") else "logits",
        gamma=rp(_param("gamma", gamma)),
        alpha=a,
        soft_target=variant,  # type: ignore[arg-type]
        clip_eps=None if clip_eps is None else rp(_param("clip_eps", clip_eps)),
        clip_scope=clip_scope,  # type: ignore[arg-type]
        label_smoothing=rp(_param("label_smoothing", label_smoothing)),
        reduction=reduction,  # type: ignore[arg-type]
        renormalize=renormalize,
    )

    def value(what: str, s: Any) -> Any:
        t = exact_text(what, s)
        return round_to_dtype(t, input_dtype) if input_dtype else t

    inputs = _nested("x", x, value)
    if softmax and _is_index_targets(y):
        targets = _nested("y", y, lambda w, s: int(exact_text(w, s)))
    else:
        targets = _nested("y", y, value)
    argv = _argv(x, y, kind, softmax, alpha, gamma, variant, clip_eps, clip_scope, label_smoothing, renormalize,
                 lib.name if lib else reduction, sample_weight, class_weight, input_dtype, round_params)  # fmt: skip
    return Request(v, inputs, targets, lib, argv)


def _is_index_targets(y: Any) -> bool:
    """softmax targets are class indices when they are ints (or integer strings) one level
    shallower than the logits; a list of C values per row is a distribution."""
    arr = np.asarray(y, dtype=object)
    return all(isinstance(v, int) and not isinstance(v, bool) for v in arr.ravel()) if arr.size else False


def _words(v: Any) -> list[str]:
    """One ``--x``-style word per row: 'a,b,c'."""
    if isinstance(v, list | tuple) and v and isinstance(v[0], list | tuple):
        return [w for row in v for w in _words(row)]
    if isinstance(v, list | tuple):
        return [",".join(exact_text("x", s) for s in v)]
    return [exact_text("x", v)]


def _argv(x: Any, y: Any, kind: str, softmax: bool, alpha: Any, gamma: Any, variant: str, clip_eps: Any,
          clip_scope: str, ls: Any, renormalize: bool, reduction: str, sw: Any, cw: Any, input_dtype: str | None,
          round_params: bool) -> tuple[str, ...]:  # fmt: skip
    out = ["focalspec", "golden"]
    if softmax:
        out.append("--softmax")
    for opt, v in (("--x", x), ("--y", y)):
        for w in _words(v):
            out.extend([f"{opt}={w}"] if w.startswith("-") else [opt, w])
    if kind != "logits":
        out.extend(["--kind", "probs"])
    if alpha is None:
        out.extend(["--alpha", "none"])
    elif not (isinstance(alpha, int | float) and alpha == 0.25):
        out.extend(["--alpha", ",".join(str(a) for a in alpha) if isinstance(alpha, list | tuple) else str(alpha)])
    if not (isinstance(gamma, int | float) and gamma == 2):
        out.extend(["--gamma", str(gamma)])
    for opt, val, default in (("--variant", variant, "canonical"), ("--clip-eps", clip_eps, None),
                              ("--clip-scope", clip_scope, "all"), ("--label-smoothing", ls, 0.0),
                              ("--reduction", reduction, "none")):  # fmt: skip
        if val != default and not (default == 0.0 and isinstance(val, str) and float(val) == 0):
            out.extend([opt, str(val)])
    if renormalize:
        out.append("--renormalize")
    for opt, ws in (("--sample-weight", sw), ("--class-weight", cw)):
        if ws is not None:
            out.extend([opt, ws if isinstance(ws, str) else ",".join(exact_text("weight", w) for w in ws)])
    if input_dtype:
        out.extend(["--input-dtype", input_dtype])
    if round_params:
        out.append("--round-params")
    return tuple(out)


# ----------------------------------------------------------------------------- the answer


@dataclass(frozen=True)
class Golden:
    """A certified answer.

    value: the headline number (the reduced value, or the loss of a single element; None for
    several unreduced losses) as a ``d.ddd...e±XX`` string of ``digits`` significant digits;
    losses / grad: every loss and the gradient of the headline (or of each element's own loss)
    with respect to each input, nested like the inputs; rounded: the headline correctly rounded
    to each dtype (held in a float64); rounded_all: the same for losses, value and grad;
    status: 'proven' (interval arithmetic settles every digit and dtype entry) or 'agreed' (two
    precisions agree; ``why`` says what the intervals could not settle)."""

    value: str | None
    losses: Any
    grad: Any
    digits: int
    rounded: dict[str, float | None]
    rounded_all: dict[str, dict[str, Any]]
    status: str
    why: str
    request: Request

    @property
    def proven(self) -> bool:
        return self.status == "proven"

    def __float__(self) -> float:
        r = self.rounded["float64"]
        if r is None:
            raise SpecError("several unreduced losses are not one number; see .losses")
        return r

    def at(self, sig: int) -> str:
        """The headline correctly rounded to ``sig`` significant digits, in plain notation when
        that is how a page would print it (from the certified digits: sig < digits)."""
        if self.value is None:
            raise SpecError("several unreduced losses are not one number; see .losses")
        if not 1 <= sig < self.digits:
            raise SpecError(f"ask for 1 to {self.digits - 1} significant digits, got {sig}")
        return _plain(self.value, sig)

    def command(self) -> str:
        """The ``focalspec golden`` command that prints this value."""
        return " ".join(shlex.quote(w) if not w.startswith("--x=") else w for w in self.request.argv)


def _plain(certified: str, sig: int) -> str:
    """A certified string rounded (half even, exact decimal arithmetic) to sig digits."""
    from decimal import ROUND_HALF_EVEN, localcontext

    d = Decimal(certified)
    if not d.is_finite() or d == 0:
        return str(d)
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = sig, ROUND_HALF_EVEN
        r = +d
    if -4 <= r.adjusted() < 6:  # plain where %g would be
        return format(r, "f")
    mant, exp = f"{r:.{sig - 1}e}".split("e")
    return f"{mant}e{int(exp):+03d}"


def golden(x: Any, y: Any, *, digits: int = 34, prove: bool = True, **options: Any) -> Golden:
    """The certified focal loss of inputs ``x`` and targets ``y`` (see the module docstring for
    what is exact and ``request`` for the options: kind, softmax, alpha, gamma, variant,
    clip_eps, clip_scope, label_smoothing, renormalize, reduction -- a variant reduction or a
    library one such as 'keras-mean' --, sample_weight, class_weight, input_dtype,
    round_params).  ``prove=False`` skips the interval proof (status 'agreed')."""
    req = request(x, y, **options)
    return answer(req, digits, prove)


def answer(req: Request, digits: int = 34, prove: bool = True) -> Golden:
    """Certify (and prove) a resolved request."""
    if not 1 <= digits <= 1000:
        raise SpecError(f"digits must be between 1 and 1000, got {digits}")
    cert = certify(req.variant, req.inputs, req.targets, digits, req.reduction)
    status, why = "agreed", "not proven (prove=False)"
    if prove:
        fn, _ = _evaluator(req.variant, req.inputs, req.targets, req.reduction)
        stored = {"losses": flatten(cert.losses), "value": flatten(cert.value), "grad": flatten(cert.grad),
                  "grad_scale": flatten(cert.grad_scale)}  # fmt: skip
        rounded = {t: {k: flatten(r[k]) for k in ("losses", "value", "grad")} for t, r in cert.rounded.items()}
        try:
            proof = prove_fn(fn, stored, rounded, cert.digits + GUARD)
        except Disproved as exc:  # two precisions agreed on digits an enclosure excludes: a bug, said loudly
            raise SpecError(f"certification is inconsistent with its proof: {exc}") from None
        status, why = proof.status, proof.why
    headline = cert.value if cert.value is not None else (cert.losses if isinstance(cert.losses, str) else None)

    def floats(d: Any) -> Any:
        return None if d is None else [floats(v) for v in d] if isinstance(d, list) else float(d)

    rounded_all = {t: {k: floats(v) for k, v in r.items()} for t, r in cert.rounded.items()}
    rounded = {
        t: (r["value"] if r["value"] is not None else r["losses"] if not isinstance(r["losses"], list) else None)
        for t, r in rounded_all.items()
    }
    return Golden(headline, cert.losses, cert.grad, cert.digits, rounded, rounded_all, status, why, req)


__all__ = ["Golden", "Request", "answer", "exact_text", "golden", "request", "round_to_dtype"]
