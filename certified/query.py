"""Certified values named by a one-line query, and numbers checked against them: the shared
core of the Sphinx extension (``focalspec.certified.sphinx_ext``) and of the peer errata
(``focalspec golden --peer-errata``).

A query is ``key=value`` words: a catalogue case id (first word, or ``case=ID``) or ``x=`` and
``y=`` (values comma-separated, rows ';'-separated) with any of ``kind softmax alpha gamma
variant clip_eps clip_scope label_smoothing renormalize reduction sample_weight class_weight
input_dtype round_params`` as ``focalspec.golden`` takes them (a bare ``softmax`` means
``softmax=true``), and for the output ``digits=N``, ``dtype=float32`` (the correctly rounded
dtype value instead) and ``field=value|loss|grad`` with ``index=i,j``.
"""

from __future__ import annotations

import decimal
import shlex
from functools import lru_cache
from typing import Any

from focalspec.spec.variant import SpecError

OUTPUT_KEYS = ("digits", "dtype", "field", "index")
FLAGS = ("softmax", "renormalize", "round_params")


@lru_cache(maxsize=512)
def resolve(query: str) -> dict[str, Any]:
    """The certified number a query names: {'text' (as a page shows it: at digits=, or the dtype
    value's exact decimal), 'certified', 'compare' (what a printed number is checked against),
    'status', 'command'}; with ``index=all`` 'compare' is the list of every number of the field."""
    words = shlex.split(query)
    if not words:
        raise SpecError("empty query")
    opts: dict[str, str] = {}
    case = None
    for i, w in enumerate(words):
        key, eq, val = w.partition("=")
        key = key.replace("-", "_")
        if not eq:
            if key in FLAGS:
                opts[key] = "true"
            elif i == 0:
                case = w
            else:
                raise SpecError(f"{w!r} is not KEY=VALUE")
            continue
        if key == "case":
            case = val
        else:
            opts[key] = val
    out = {k: opts.pop(k) for k in OUTPUT_KEYS if k in opts}
    field = out.get("field", "value")
    every = out.get("index") == "all"
    index = tuple(int(i) for i in out["index"].split(",")) if "index" in out and not every else ()
    digits = int(out["digits"]) if "digits" in out else None
    dtype = out.get("dtype")
    if case is not None:
        if opts:
            raise SpecError(f"a case id fixes its own inputs; {', '.join(opts)} do not apply")
        from focalspec.spec.golden import get_entry

        e = get_entry(case)
        data = {"value": e.value, "loss": e.losses, "grad": e.grad}
        rounded: dict[str, Any] = e.rounded
        status, command = e.status, f"focalspec golden {case}"
        certified = (e.certified() if field == "value" and not index and not every
                     else _pick(data, field, index, case, every))  # fmt: skip
    else:
        from focalspec.certified.api import golden

        kwargs: dict[str, Any] = {}
        for k, v in opts.items():
            if k in FLAGS:
                kwargs[k] = v.lower() in ("1", "true", "yes")
            elif k in ("x", "y"):
                kwargs[k] = _array(v, k == "y" and opts.get("softmax", "") in ("true", "1", "yes"))
            elif k in ("sample_weight", "class_weight", "alpha") and "," in v:
                kwargs[k] = v.split(",")
            else:
                kwargs[k] = v
        if "x" not in kwargs or "y" not in kwargs:
            raise SpecError("a query needs a case id, or x= and y=")
        g = golden(**kwargs)
        data = {"value": g.value, "loss": g.losses, "grad": g.grad}
        rounded = g.rounded_all
        status, command = g.status, g.command()
        certified = _pick(data, field, index, query, every)
    if dtype is not None:
        fld = {"loss": "losses"}.get(field, field)
        per = rounded.get(dtype) if isinstance(rounded.get(dtype), dict) else {}
        r = per.get(fld)
        if r is None and fld == "value":  # an unreduced single element: its loss is the value
            r = per.get("losses")
        if r is None:
            raise SpecError(f"no {dtype} value for field {field!r}")
        if every:
            from focalspec.certified.prove import flatten

            return {"compare": [_exact_decimal(v) for v in flatten(r)], "status": status, "command": command}
        text = _exact_decimal(_index(r, index, query))
    elif every:
        return {"compare": certified, "status": status, "command": command}
    else:
        text = certified if digits is None else _round(certified, digits)
    compare = text if dtype is not None else certified  # what a hand-written number is checked against
    return {"text": text, "certified": certified, "compare": compare, "status": status, "command": command}


def _array(text: str, softmax_targets: bool) -> Any:
    rows = [r.split(",") for r in text.split(";")]
    if softmax_targets and all(len(r) == 1 for r in rows):
        return [int(r[0]) for r in rows] if len(rows) > 1 else int(rows[0][0])
    if len(rows) == 1:
        return rows[0][0] if len(rows[0]) == 1 else rows[0]
    return rows


def _index(data: Any, index: tuple[int, ...], what: str) -> Any:
    for i in index:
        if not isinstance(data, list) or not -len(data) <= i < len(data):
            raise SpecError(f"index {index} does not fit {what}")
        data = data[i]
    if isinstance(data, list):
        raise SpecError(f"{what} has several numbers here; give index=")
    return data


def _pick(data: dict[str, Any], field: str, index: tuple[int, ...], what: str, every: bool = False) -> Any:
    if field not in data:
        raise SpecError(f"unknown field {field!r}; expected value, loss or grad")
    d = data[field]
    if d is None and field == "value":
        d = data["loss"]
    if every:
        from focalspec.certified.prove import flatten

        return flatten(d)
    return _index(d, index, what)


def _exact_decimal(v: Any) -> str:
    return str(decimal.Decimal(float(v)))


def _round(certified: str, digits: int) -> str:
    from focalspec.certified.api import _plain

    return _plain(certified, digits)


def check_cited(printed: str, certified: str) -> str:
    """'' when ``printed`` is ``certified`` rounded half even at the printed last digit, else why."""
    from focalspec.spec.golden import _judge, parse_printed

    p, q = parse_printed(printed)
    verdict, _, how = _judge(p, q, decimal.Decimal(certified))
    return "" if verdict == "correct" else f"{printed} is {how}" if verdict != "wrong" else f"{printed}: {how}"
