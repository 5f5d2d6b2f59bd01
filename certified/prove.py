"""Proven digits: the reference's own formulas evaluated in interval arithmetic.

``certify`` shows that two precisions agree; this module proves the printed digits.  The
reference (``focalspec.reference.exact``) is run unchanged with its mpmath context swapped for
``IntervalContext``: every number becomes an interval ``[lo, hi]`` that encloses the exact
value (mpmath's ``iv`` context rounds every endpoint outward), the inputs' decimal strings
included, so the proof covers 0.95 itself and not the binary float nearest to it.  A stored
string is *proven* when every point of the final interval rounds (half even, at the string's
own number of significant digits) to that string; a dtype entry when both endpoints round to
the same dtype value.  Rounding is monotone, so the endpoints decide for the whole interval.

What cannot be proven says why: an interval that straddles a rounding boundary even at the
highest precision tried (the value sits on a tie, or is an exact zero reached through a
difference), or a branch of the reference that compares a computed interval with a bound it
overlaps (``Undecided``: the branch taken could be the wrong one, so nothing is claimed).

Elementary functions are mpmath's ``iv`` ones (exp, log, power: directed-rounded), except
``log1p`` and ``expm1``, which ``iv`` evaluates as ``x - x^2/2`` for tiny ``x`` without the
remainder: here tiny arguments get that series with a bound on its remainder, and larger
ones ``log(1 + x)`` / ``exp(x) - 1`` at a precision raised by the bits that 1 + x would lose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import mpmath
from mpmath.ctx_iv import ivmpf

from focalspec.reference import exact as ref
from focalspec.spec.rounding import round_mpf

iv = mpmath.iv
MAX_DOUBLINGS = 2  # precisions tried: dps, 2 dps, 4 dps


class Undecided(ArithmeticError):
    """A comparison of intervals that overlap: the reference's branch is not determined."""


# ----------------------------------------------------------------------------- comparisons


def _ends(x: Any) -> tuple[Any, Any]:
    """Exact endpoints (mpf) of an interval, or of a plain number taken as a point."""
    if isinstance(x, ivmpf):
        lo, hi = x._mpi_
        return mpmath.mp.make_mpf(lo), mpmath.mp.make_mpf(hi)
    v = mpmath.mp.mpf(x) if not isinstance(x, mpmath.mpf) else x
    return v, v


def _cmp(a: Any, b: Any) -> int:
    """-1, 0 or 1 when every point of a is below / equal to / above every point of b;
    Undecided otherwise (a NaN compares as neither, like IEEE: callers test isnan first)."""
    if a is b:  # one number compared with itself (equal inputs share one interval: IntervalContext.mpf)
        return 0
    (alo, ahi), (blo, bhi) = _ends(a), _ends(b)
    with mpmath.mp.workprec(max(mpmath.mp.prec, iv.prec) + 64):
        if ahi < blo:
            return -1
        if alo > bhi:
            return 1
        if alo == ahi == blo == bhi:
            return 0
    raise Undecided(f"cannot order the intervals {mpmath.nstr(alo, 8)}..{mpmath.nstr(ahi, 8)} and "
                    f"{mpmath.nstr(blo, 8)}..{mpmath.nstr(bhi, 8)}")  # fmt: skip


def _has_nan(*xs: Any) -> bool:
    return any(mpmath.mp.isnan(e) for x in xs for e in _ends(x))


_STRICT = {
    "__lt__": lambda a, b: False if _has_nan(a, b) else _cmp(a, b) < 0,
    "__le__": lambda a, b: False if _has_nan(a, b) else _cmp(a, b) <= 0,
    "__gt__": lambda a, b: False if _has_nan(a, b) else _cmp(a, b) > 0,
    "__ge__": lambda a, b: False if _has_nan(a, b) else _cmp(a, b) >= 0,
    "__eq__": lambda a, b: False if _has_nan(a, b) else _cmp(a, b) == 0,
    "__ne__": lambda a, b: True if _has_nan(a, b) else _cmp(a, b) != 0,
}


@contextlib.contextmanager
def strict_comparisons() -> Iterator[None]:
    """Interval comparisons that answer only when the answer holds for every point (mpmath's
    return None, which a branch reads as False, or compare endpoints for ==)."""
    saved = {name: ivmpf.__dict__.get(name) for name in _STRICT}
    try:
        for name, fn in _STRICT.items():
            setattr(ivmpf, name, fn)
        yield
    finally:
        for name, fn in saved.items():
            if fn is None:
                delattr(ivmpf, name)
            else:
                setattr(ivmpf, name, fn)


# ----------------------------------------------------------------------------- the context


class IntervalContext:
    """The slice of mpmath's ``mp`` API that the reference uses, over mpmath's ``iv``."""

    zero = iv.zero
    one = iv.one
    inf = iv.inf
    nan = iv.nan

    @staticmethod
    @contextlib.contextmanager
    def workdps(dps: int) -> Iterator[None]:
        saved = iv.prec
        iv.dps = dps
        try:
            yield
        finally:
            iv.prec = saved

    _decimals: dict[tuple[str, int], Any] = {}  # noqa: RUF012 (a cache, shared on purpose)

    @classmethod
    def mpf(cls, x: Any) -> Any:
        """An interval enclosing x; equal decimal strings give the same interval object, so that
        two equal inputs compare equal (their enclosures overlap, and nothing else would say so)."""
        if isinstance(x, ivmpf):
            return x
        if not isinstance(x, str):
            return iv.mpf(x)
        key = (x.strip(), iv.prec)
        if key not in cls._decimals:
            if len(cls._decimals) > 100_000:
                cls._decimals.clear()
            cls._decimals[key] = iv.mpf(key[0])
        return cls._decimals[key]

    exp = staticmethod(iv.exp)
    log = staticmethod(iv.log)

    @staticmethod
    def fsum(terms: Any) -> Any:
        total = iv.zero
        for t in terms:
            if _has_nan(t):
                return iv.nan
            total = total + t
        return total

    @staticmethod
    def isnan(x: Any) -> bool:
        return _has_nan(x)

    @staticmethod
    def isinf(x: Any) -> bool:
        lo, hi = _ends(x)
        return bool(lo == hi and mpmath.mp.isinf(lo))

    @staticmethod
    def nstr(x: Any, n: int = 8) -> str:
        return iv.nstr(x, n)

    @staticmethod
    def log1p(x: Any) -> Any:
        return _monotone(x, _log1p_point)

    @staticmethod
    def expm1(x: Any) -> Any:
        return _monotone(x, _expm1_point)


def _monotone(x: Any, point: Callable[[Any], Any]) -> Any:
    """An increasing function of an interval: [f(lo) enclosure's lo, f(hi) enclosure's hi]."""
    lo, hi = _ends(IntervalContext.mpf(x))
    flo, fhi = point(lo), point(hi)
    return iv.mpf([_ends(flo)[0], _ends(fhi)[1]])


def _extra_bits(y: Any) -> int:
    return 0 if y == 0 else max(0, -int(mpmath.mp.mag(y))) + 16


def _log1p_point(y: Any) -> Any:
    if mpmath.mp.isnan(y) or y <= -1:
        return iv.log(1 + iv.mpf(y))
    if mpmath.mp.isinf(y) or y == 0:
        return iv.mpf(y)
    x = iv.mpf(y)
    if abs(y) < mpmath.mpf(2) ** -(iv.prec // 2 + 8):  # x - x^2/2 + r, |r| <= |x|^3/(3 (1-|x|)) < 2^-prec |x|
        r = abs(x) ** 3 / (3 * (1 - abs(x)))
        return x - x * x / 2 + iv.mpf([-_ends(r)[1], _ends(r)[1]])
    saved = iv.prec
    try:
        iv.prec = saved + _extra_bits(y)
        out = iv.log(1 + x)
    finally:
        iv.prec = saved
    return out


def _expm1_point(y: Any) -> Any:
    if mpmath.mp.isnan(y) or mpmath.mp.isinf(y) or y == 0:
        return iv.exp(iv.mpf(y)) - 1 if y != 0 else iv.zero
    x = iv.mpf(y)
    if abs(y) < mpmath.mpf(2) ** -(iv.prec // 2 + 8):  # x + x^2/2 + r, |r| <= |x|^3/3 < 2^-prec |x|
        r = abs(x) ** 3 / 3
        return x + x * x / 2 + iv.mpf([-_ends(r)[1], _ends(r)[1]])
    saved = iv.prec
    try:
        iv.prec = saved + _extra_bits(y)
        out = iv.exp(x) - 1
    finally:
        iv.prec = saved
    return out


INTERVALS = IntervalContext()


@contextlib.contextmanager
def reference_in_intervals() -> Iterator[None]:
    """Run focalspec.reference.exact over intervals (its ``mp`` swapped for ``IntervalContext``)."""
    saved = ref.mp
    ref.mp = INTERVALS  # type: ignore[assignment]
    try:
        with strict_comparisons():
            yield
    finally:
        ref.mp = saved


# ----------------------------------------------------------------------------- rounding


def _fraction(v: Any) -> Fraction:
    """The exact value of a finite mpf."""
    sign, man, exp, _ = v._mpf_
    man, exp = (-1 if sign else 1) * int(man), int(exp)
    return Fraction(man * 2**exp) if exp >= 0 else Fraction(man, 2**-exp)


def round_sig(v: Any, k: int) -> str:
    """An mpf, exactly, rounded half even to k significant digits in ``format_sig``'s form."""
    if mpmath.mp.isnan(v):
        return "nan"
    if mpmath.mp.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    f = _fraction(v)
    sign, a = ("-" if f < 0 else ""), abs(f)
    with mpmath.mp.workprec(64):
        e = int(mpmath.mp.floor(mpmath.mp.log10(abs(v))))
    while True:  # e = floor(log10 a), fixed up from the estimate
        if a >= Fraction(10) ** (e + 1):
            e += 1
        elif a < Fraction(10) ** e:
            e -= 1
        else:
            break
    scaled = a * Fraction(10) ** (k - 1 - e)
    n = round(scaled)  # Fraction.__round__: half to even
    if n >= 10**k:
        e, n = e + 1, round(a * Fraction(10) ** (k - 2 - e))
    d = str(n)
    mant = d[0] + ("." + d[1:] if k > 1 else "")
    return f"{sign}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _sig_digits(s: str) -> int:
    from focalspec.certified.certify import sig_digits

    return sig_digits(s)


# ----------------------------------------------------------------------------- verdicts


@dataclass
class Proof:
    """The outcome for one set of stored numbers: proven, or the first reason it is not."""

    proven: bool
    dps: int  # the precision of the interval evaluation that decided it
    why: str = ""  # empty when proven
    counts: dict[str, int] = field(default_factory=dict)  # numbers proven per kind

    @property
    def status(self) -> str:
        return "proven" if self.proven else "agreed"


class Disproved(AssertionError):
    """An enclosure excludes a stored value: the stored digits are wrong (a bug, never a verdict)."""


def check_string(name: str, stored: str, enclosure: Any) -> str:
    """'' when every point of the enclosure rounds to ``stored`` (at its own digits), else why."""
    lo, hi = _ends(enclosure)
    if stored == "nan":
        return "" if mpmath.mp.isnan(lo) and mpmath.mp.isnan(hi) else f"{name}: stored nan, enclosure is not NaN"
    if mpmath.mp.isnan(lo) or mpmath.mp.isnan(hi):
        return f"{name}: the enclosure is NaN"
    if stored in ("0", "inf", "-inf"):
        want = mpmath.mp.mpf(stored)
        if lo == hi == want:
            return ""
        if lo <= want <= hi:
            return f"{name}: {stored} lies in the enclosure [{mpmath.nstr(lo, 5)}, {mpmath.nstr(hi, 5)}], which " \
                   "is not that point (an exact {stored} reached through arithmetic)"  # fmt: skip
        raise Disproved(f"{name}: stored {stored} but the value lies in [{mpmath.nstr(lo, 8)}, {mpmath.nstr(hi, 8)}]")
    k = _sig_digits(stored)
    rlo, rhi = round_sig(lo, k), round_sig(hi, k)
    if rlo == rhi == stored:
        return ""
    if stored not in (rlo, rhi) and (rlo == rhi or _outside(stored, lo, hi)):
        raise Disproved(f"{name}: stored {stored} but the value lies in [{rlo}, {rhi}] at {k} digits")
    return f"{name}: the enclosure straddles a rounding boundary at {k} digits ({rlo} .. {rhi})"


def _outside(stored: str, lo: Any, hi: Any) -> bool:
    with mpmath.mp.workprec(4000):
        v = mpmath.mp.mpf(stored)
    k = _sig_digits(stored)
    half = abs(v) * mpmath.mpf(10) ** (1 - k)  # generous: a whole unit in the last place
    return bool(v + half < lo or v - half > hi)


def check_dtype(name: str, stored: str, dtype: str, enclosure: Any) -> str:
    """'' when both endpoints round to the stored dtype value (held as a float64 repr)."""
    lo, hi = _ends(enclosure)
    if mpmath.mp.isnan(lo) or mpmath.mp.isnan(hi):
        return "" if stored == "nan" else f"{name} {dtype}: the enclosure is NaN"
    with mpmath.mp.workprec(max(mpmath.mp.prec, iv.prec) + 64):
        rlo, rhi = round_mpf(lo, dtype), round_mpf(hi, dtype)
    want = float(stored)
    if rlo == rhi == want and (want != 0 or str(rlo) == str(want)):
        return ""
    if want not in (rlo, rhi):
        raise Disproved(f"{name} {dtype}: stored {stored} but the enclosure rounds to {rlo!r} .. {rhi!r}")
    return f"{name} {dtype}: the enclosure straddles a {dtype} rounding boundary ({rlo!r} .. {rhi!r})"


def flatten(data: Any) -> list[Any]:
    """Nested lists (or a scalar, or None) -> flat list in C order, like ``np.ravel``."""
    if data is None:
        return []
    if isinstance(data, list):
        return [v for d in data for v in flatten(d)]
    return [data]


def prove_fn(
    fn: Callable[[int], dict[str, list[Any]]],
    stored: dict[str, list[str]],
    rounded: dict[str, dict[str, list[str]]],
    dps: int,
) -> Proof:
    """Prove the stored strings and dtype values of ``fn``'s numbers (flat, by name).

    ``fn(dps)`` is run over intervals at dps, 2 dps, 4 dps until everything is proven; a
    straddle or an undecided branch at the last precision is the reason given.  A stored value
    that an enclosure excludes raises Disproved."""
    why = ""
    for level in range(MAX_DOUBLINGS + 1):
        d = dps * 2**level
        try:
            with reference_in_intervals():
                nums = fn(d)
                why = _first_failure(nums, stored, rounded)
        except Undecided as exc:
            why = f"a branch of the reference is undecided: {exc}"
        except (ArithmeticError, TypeError, ValueError) as exc:  # a proof attempt never breaks a lookup
            why = f"the interval evaluation failed: {type(exc).__name__}: {exc}"
        if not why:
            counts = {name: len(v) for name, v in stored.items()}
            counts.update({f"{t}:{n}": len(v) for t, r in rounded.items() for n, v in r.items()})
            return Proof(True, d, "", counts)
    return Proof(False, d, f"{why} (intervals at {dps}..{d} digits)")


def _first_failure(nums: dict[str, list[Any]], stored: dict[str, list[str]], rounded: dict) -> str:
    for name, strings in stored.items():
        for i, (s, enc) in enumerate(zip(strings, nums[name], strict=True)):
            why = check_string(f"{name}[{i}]", s, enc)
            if why:
                return why
    for dtype, fields in rounded.items():
        for name, strings in fields.items():
            for i, (s, enc) in enumerate(zip(strings, nums[name], strict=True)):
                why = check_dtype(f"{name}[{i}]", s, dtype, enc)
                if why:
                    return why
    return ""


__all__ = [
    "INTERVALS",
    "Disproved",
    "IntervalContext",
    "Proof",
    "Undecided",
    "check_dtype",
    "check_string",
    "flatten",
    "prove_fn",
    "reference_in_intervals",
    "round_sig",
    "strict_comparisons",
]
