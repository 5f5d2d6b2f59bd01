"""The certified golden file as data: its entries, read back, and the errata of the seed articles.

``spec/golden/golden.json`` holds every catalogue case with its certified digits and their proof
record; it is produced and checked by ``focalspec.certified.generate`` (above the reference),
while this module only reads it, so that the specification needs nothing above it.  ``errata()``
judges each number a seed article printed against its certified value.

Numbers are strings: certified values as 'd.ddd...e±XX' with the digits the two precisions
agree on (or '0', 'inf', '-inf', 'nan'); dtype values as ``repr`` of the float64 that holds the
correctly rounded dtype value (exact, round-trips).
"""

from __future__ import annotations

import decimal
import importlib.resources
import json
import math
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import mpmath
import numpy as np

from focalspec.spec.case import Case
from focalspec.spec.catalogue import get_case
from focalspec.spec.variant import SpecError

GENERATOR = "python -m focalspec.certified.generate --write"
GOLDEN_PATH = Path(__file__).with_name("golden") / "golden.json"


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class GoldenEntry:
    """One certified case, as read from the golden file."""

    case: Case
    losses: Any
    value: str | None
    grad: Any
    grad_scale: Any
    rounded: dict[str, dict[str, Any]]
    digits: int
    quantity: dict[str, Any] | None = None
    proof: dict[str, Any] | None = None  # {"status": "proven" | "agreed", "dps": n, "why": ...}

    @property
    def status(self) -> str:
        """'proven' (interval enclosures settle every stored digit) or 'agreed' (two precisions)."""
        return "proven" if self.proof and self.proof.get("status") == "proven" else "agreed"

    @property
    def id(self) -> str:
        return self.case.id

    def certified(self) -> str:
        """The headline number: the derived quantity, else the reduced value, else the loss of a
        single element (a list of losses otherwise is not a single number: SpecError)."""
        if self.quantity is not None:
            q = self.quantity["value"]
            if isinstance(q, str):
                return q
        if self.value is not None:
            return self.value
        if isinstance(self.losses, str):
            return self.losses
        raise SpecError(f"case {self.id} has {np.size(np.asarray(self.losses, dtype=object))} losses, not one number")

    def mpf(self, field: str = "losses") -> np.ndarray:
        """Certified losses / grad / grad_scale as an object array of mpf (shape of the case),
        parsed at a precision that keeps every certified digit."""
        data = getattr(self, field)
        arr = np.asarray(data, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        with mpmath.workdps(self.digits + 10):
            for idx, s in np.ndenumerate(arr):
                out[idx] = mpmath.mpf(s)
        return out

    def expected(self, dtype: str, field: str = "losses") -> np.ndarray:
        """Correctly rounded dtype values (held in float64) of losses, grad or value."""
        data = self.rounded[dtype][field]
        if data is None:
            raise SpecError(f"case {self.id} has no reduced value (reduction 'none')")
        return np.asarray(np.asarray(data, dtype=object).astype(np.float64), dtype=np.float64)



def entry_from_data(d: dict[str, Any]) -> GoldenEntry:
    """One golden case read back: its definition and every stored result (quantity, proof optional)."""
    results = {f.name: d[f.name] if f.default is MISSING else d.get(f.name) for f in fields(GoldenEntry)[1:]}
    return GoldenEntry(case=Case.from_dict(d), **results)


def golden_text() -> str:
    """The packaged golden file (importlib.resources, so it works from a wheel too)."""
    res = importlib.resources.files("focalspec.spec").joinpath("golden", "golden.json")
    try:
        return res.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"golden file missing; regenerate it with '{GENERATOR}'") from None


@lru_cache(maxsize=1)
def _loaded() -> tuple[dict[str, Any], tuple[GoldenEntry, ...]]:
    doc = json.loads(golden_text())
    return doc["provenance"], tuple(entry_from_data(d) for d in doc["cases"])


def provenance() -> dict[str, Any]:
    return dict(_loaded()[0])


def load_golden() -> list[GoldenEntry]:
    return list(_loaded()[1])


def get_entry(case_id: str) -> GoldenEntry:
    """The golden entry of a case id; SpecError with close matches otherwise."""
    for e in _loaded()[1]:
        if e.id == case_id:
            return e
    get_case(case_id)  # raises with suggestions when the id is unknown
    raise SpecError(f"case {case_id!r} is in the catalogue but not in the golden file; run '{GENERATOR}'")


def errata() -> list[Erratum]:
    """Every printed number of the seed articles checked against its certified value."""
    return [check_printed(e) for e in load_golden() if e.case.printed is not None]


# ----------------------------------------------------------------------------- errata

VERDICTS: tuple[str, ...] = ("correct", "rounding/truncation", "wrong")


@dataclass(frozen=True)
class Erratum:
    """A printed number of a seed article against its certified value.

    verdict: 'correct' -- the printed number is the certified value rounded to nearest at
    the printed number's last digit (trailing zeros of an integer are not significant, so
    '1600' claims two digits); 'rounding/truncation' -- it is the value rounded the other
    way (truncated, or rounded up), so only the last printed digit is off; 'wrong' --
    anything else, or a printed formula next to it that does not give the certified value.
    """

    case_id: str
    what: str
    printed: str
    certified: str  # the full certified value
    certified_at_printed: str  # rounded to nearest at the printed number's last digit
    verdict: str
    explanation: str
    number_verdict: str  # the number alone
    expression: str | None = None
    expression_value: str | None = None  # the printed formula evaluated exactly


def parse_printed(text: str) -> tuple[Decimal, Decimal]:
    """A number as an article prints it ('9.61E-5', '2.51*10^-7', '40,000') -> (value, quantum
    of its last significant digit)."""
    t = re.sub(r"\s+", "", text).replace(",", "")
    t = re.sub(r"(?:\*|x|×)10\^", "e", t)
    try:
        d = Decimal(t)
    except decimal.InvalidOperation:
        raise SpecError(f"cannot read the printed number {text!r}") from None
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if "." not in t and "e" not in t.lower():  # integer: trailing zeros are not significant
        digits = str(abs(int(d)))
        exp = len(digits) - len(digits.rstrip("0")) if digits != "0" else 0
    return d, Decimal(1).scaleb(exp)


_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|(ln)|([-+*/^()]))")


def parse_expression(text: str) -> Any:
    """A printed formula ('-0.25*(1-0.95)^2*ln(0.95)') as a tree of tuples.

    Grammar: + - * / with the usual precedence, right-associative ^, unary minus, ln(...).
    Numbers stay text so that they can be read as exact decimals."""
    toks: list[tuple[str, str]] = []
    pos, t = 0, text.strip()
    while pos < len(t):
        m = _TOKEN.match(t, pos)
        if not m or m.end() == pos:
            raise SpecError(f"cannot parse formula {text!r} at {t[pos:]!r}")
        num, fn, op = m.groups()
        toks.append(("num", num) if num else ("fn", fn) if fn else ("op", op))
        pos = m.end()
    toks.append(("end", ""))
    i = 0

    def peek() -> tuple[str, str]:
        return toks[i]

    def take(kind: str, val: str | None = None) -> str:
        nonlocal i
        k, v = toks[i]
        if k != kind or (val is not None and v != val):
            raise SpecError(f"cannot parse formula {text!r}: unexpected {v or 'end'!r}")
        i += 1
        return v

    def expr() -> Any:
        node = term()
        while peek() in (("op", "+"), ("op", "-")):
            node = ("add" if take("op") == "+" else "sub", node, term())
        return node

    def term() -> Any:
        node = unary()
        while peek() in (("op", "*"), ("op", "/")):
            node = ("mul" if take("op") == "*" else "div", node, unary())
        return node

    def unary() -> Any:
        if peek() == ("op", "-"):
            take("op")
            return ("neg", unary())
        if peek() == ("op", "+"):
            take("op")
            return unary()
        base = atom()
        if peek() == ("op", "^"):
            take("op")
            return ("pow", base, unary())
        return base

    def atom() -> Any:
        k, v = peek()
        if k == "num":
            take("num")
            return ("num", v)
        if k == "fn":
            take("fn")
            take("op", "(")
            node = expr()
            take("op", ")")
            return ("ln", node)
        take("op", "(")
        node = expr()
        take("op", ")")
        return node

    tree = expr()
    take("end")
    return tree


def evaluate_expression(tree: Any, num: Callable[[str], Any], ln: Callable[[Any], Any]) -> Any:
    """Evaluate a formula tree with a number type (exact decimals in mpmath, or float)."""
    op = tree[0]
    if op == "num":
        return num(tree[1])
    if op == "neg":
        return -evaluate_expression(tree[1], num, ln)
    if op == "ln":
        return ln(evaluate_expression(tree[1], num, ln))
    a, b = (evaluate_expression(t, num, ln) for t in tree[1:])
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    return a**b


def _mp_eval(tree: Any) -> Any:
    with mpmath.workdps(60):
        return evaluate_expression(tree, mpmath.mpf, mpmath.log)


def _dec(x: Any) -> Decimal:
    with mpmath.workdps(60):
        return Decimal(mpmath.nstr(x, 50, min_fixed=-mpmath.inf, max_fixed=mpmath.inf))


def _sig(d: Decimal, n: int) -> str:
    return f"{d:.{max(n, 1) - 1}e}"


def _n_sig(value: Decimal, quantum: Decimal) -> int:
    """Significant digits a printed number shows (at least 1)."""
    if value == 0:
        return 1
    return max(1, value.adjusted() - quantum.adjusted() + 1)


def _judge(printed: Decimal, q: Decimal, c: Decimal) -> tuple[str, Decimal, str]:
    """(verdict, certified rounded at the printed digit, how) for one printed number."""
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        r = c.quantize(q, decimal.ROUND_HALF_EVEN)
        rs = _sig(r, _n_sig(r, q))
        if printed == r:
            return "correct", r, "correctly rounded"
        if printed == c.quantize(q, decimal.ROUND_DOWN):
            return "rounding/truncation", r, f"truncated (correctly rounded: {rs})"
        if printed == c.quantize(q, decimal.ROUND_UP):
            return "rounding/truncation", r, f"rounded up (correctly rounded: {rs})"
        return "wrong", r, _how_wrong(printed, c, q)


def _how_wrong(printed: Decimal, c: Decimal, q: Decimal) -> str:
    if c == 0 or printed == 0:
        return "wrong"
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        units = (printed - c) / q
        if abs(printed / c - 1) < Decimal("1e-3"):
            right = _sig(c, _n_sig(printed, q))
            return f"wrong in the last digit ({float(units):+.2f} units of it; correctly rounded: {right})"
        ratio = printed / c
        if ratio > 0:
            lg = float(ratio.log10())
            k = round(lg)
            if k != 0 and abs(lg - k) < 0.05:
                return f"{10 ** abs(k)}x too {'large' if k > 0 else 'small'}"
        rel = float(ratio - 1)
        return f"off by {rel:+.1%}" if abs(rel) < 0.1 else f"off by {rel:+.0%}"


def check_printed(e: GoldenEntry) -> Erratum:
    """Judge one printed number (and the formula printed with it) against the golden entry."""
    case = e.case
    assert case.printed is not None
    what = str(case.extra.get("what", case.id))
    certified = e.certified()
    c = Decimal(certified)
    p, q = parse_printed(case.printed)
    n = _n_sig(p, q)
    number_verdict, r, how = _judge(p, q, c)
    shown = _sig(c, n + 2)
    parts = [f"{what} is {shown}; printed {case.printed} is {how}"]
    if number_verdict == "correct" and c != 0 and abs(p / c - 1) > Decimal("0.1"):
        parts.append(f"(right only at the printed precision: {_how_wrong(p, c, Decimal('1e-50'))})")
    verdict = number_verdict
    expr_text = case.extra.get("printed_expression")
    expr_value = None
    if expr_text:
        tree = parse_expression(expr_text)
        ev = _dec(_mp_eval(tree))
        expr_value = _sig(ev, 8)
        consistent = ev.quantize(q, decimal.ROUND_HALF_EVEN) == r or (c != 0 and abs(ev / c - 1) <= Decimal("0.005"))
        if not consistent:
            verdict = "wrong"
            joint = "but" if number_verdict == "correct" else "and"
            parts.append(f"{joint} the printed formula {expr_text} gives {_sig(ev, 5)}, not {_sig(c, 5)}")
            if tree[0] == "div" and e.quantity is not None:
                for side, sub in (("numerator", tree[1]), ("denominator", tree[2])):
                    want = Decimal(e.quantity[side])
                    got = _dec(_mp_eval(sub))
                    sv, _, shw = _judge(got, _quantum_of(sub), want)
                    if sv == "wrong":
                        parts.append(f"-- its {side} {_sig(got, _n_sig(got, _quantum_of(sub)))} is not "
                                     f"{_sig(want, 5)} ({shw})")
        else:
            f64 = float(evaluate_expression(tree, float, _float_ln))
            if number_verdict != "correct" and Decimal(repr(f64)).quantize(q, decimal.ROUND_HALF_EVEN) == p:
                parts.append(f"(it is the float64 evaluation of {expr_text}, {f64!r})")
    return Erratum(
        case_id=case.id,
        what=what,
        printed=case.printed,
        certified=certified,
        certified_at_printed=_like_printed(r, q, case.printed),
        verdict=verdict,
        explanation=" ".join(parts),
        number_verdict=number_verdict,
        expression=expr_text,
        expression_value=expr_value,
    )


def _like_printed(r: Decimal, q: Decimal, printed: str) -> str:
    """The rounded certified value written the way the article wrote its number."""
    if re.search(r"[eE]|\^", printed):
        return _sig(r, _n_sig(r, q))
    return format(r, "f")


def _quantum_of(tree: Any) -> Decimal:
    """The quantum of a formula's printed operand: of its single number, '3.2058*10^-7' style
    products included; 1e-50 (exact) for anything more complex."""
    try:
        text = _unparse_number(tree)
    except ValueError:
        return Decimal("1e-50")
    return parse_printed(text)[1]


def _unparse_number(tree: Any) -> str:
    if tree[0] == "num":
        return str(tree[1])
    if tree[0] == "mul" and tree[2][0] == "pow" and tree[2][1] == ("num", "10"):
        exp = tree[2][2]
        sign = "-" if exp[0] == "neg" else ""
        inner = exp[1] if exp[0] == "neg" else exp
        if tree[1][0] == "num" and inner[0] == "num":
            return f"{tree[1][1]}e{sign}{inner[1]}"
    raise ValueError("not a single printed number")


def _float_ln(x: float) -> float:
    return math.log(x)
