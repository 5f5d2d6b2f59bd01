"""Peer errata: the numbers libraries print in their own docs, checked against certified values.

Each example of ``spec/golden/peer_examples.json`` names the library's call, the same call as a
focalspec query (its inputs, its convention, its reduction, the dtype it computes in) and the
digits it prints.  A printed number is

- ``correct``: the exact value (at the dtype-rounded inputs) rounded at the printed last digit;
- ``dtype print``: not that, but the correctly rounded dtype value rounded at its last digit --
  the library printed its dtype result, and the result itself is right;
- ``dtype arithmetic``: neither, yet within ``ARITH_U`` units of the dtype's unit roundoff of
  the exact value -- the library's own rounding in the dtype shows in digits it prints beyond
  what the dtype holds;
- ``wrong``: anything else (a slip in the docs, another call's value).

Add an example by appending to the file; ``focalspec golden --peer-errata`` checks them all.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from focalspec.certified.query import check_cited, resolve
from focalspec.spec.rounding import FORMATS
from focalspec.spec.variant import SpecError

ARITH_U = 64  # |printed / exact - 1| <= ARITH_U * 2**-precision: the library's dtype arithmetic
VERDICTS = ("correct", "dtype print", "dtype arithmetic", "wrong")


@dataclass(frozen=True)
class PeerVerdict:
    """One printed number of one example."""

    example: str
    library: str
    source: str
    call: str
    printed: str
    certified: str
    dtype_value: str | None
    verdict: str
    explanation: str
    status: str  # proven / agreed, of the certified value
    command: str


def load_examples() -> list[dict[str, Any]]:
    res = importlib.resources.files("focalspec.spec").joinpath("golden", "peer_examples.json")
    return list(json.loads(res.read_text(encoding="utf-8"))["examples"])


def judge(printed: str, exact: str, dtype_value: str | None, dtype: str | None) -> tuple[str, str]:
    """(verdict, explanation) of one printed number; see the module docstring."""
    why = check_cited(printed, exact)
    if not why:
        return "correct", "the exact value, correctly rounded"
    if dtype_value is not None and not check_cited(printed, dtype_value):
        return "dtype print", f"the correctly rounded {dtype} value, rounded: {why} of the exact value"
    p, e = Decimal(printed.replace("−", "-")), Decimal(exact)
    if dtype is not None and e != 0:
        u = Decimal(2) ** -FORMATS[dtype].precision
        rel = abs(p / e - 1)
        if rel <= ARITH_U * u:
            return "dtype arithmetic", f"{why}; {float(rel / u):.1f} {dtype} unit roundoffs from the exact value"
    return "wrong", why


def check_example(ex: dict[str, Any]) -> list[PeerVerdict]:
    dtype = ex.get("dtype")
    exact = resolve(ex["query"] + " index=all")
    rounded = resolve(ex["query"] + f" index=all dtype={dtype}") if dtype else None
    printed = list(ex["printed"])
    if len(printed) != len(exact["compare"]):
        raise SpecError(f"{ex['id']}: {len(printed)} printed number(s) for {len(exact['compare'])} certified")
    out = []
    for i, p in enumerate(printed):
        d = rounded["compare"][i] if rounded else None
        verdict, how = judge(p, exact["compare"][i], d, dtype)
        if ex.get("note") and verdict == "wrong":
            how += f" -- {ex['note']}"
        out.append(PeerVerdict(ex["id"], ex["library"], ex["source"], ex["call"], p, exact["compare"][i], d,
                               verdict, how, exact["status"], exact["command"]))  # fmt: skip
    return out


def peer_errata() -> list[PeerVerdict]:
    return [v for ex in load_examples() for v in check_example(ex)]


__all__ = ["ARITH_U", "VERDICTS", "PeerVerdict", "check_example", "judge", "load_examples", "peer_errata"]
