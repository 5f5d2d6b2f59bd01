"""Numbers a reader can compare, and the command that prints the certified one.

"1.51497e-08, expected 1.51497e-08" hides a 2.7e8 u error behind six shared digits: the page
prints an exact value and an observed one with as many significant digits as it takes for
them to differ, the magnitude of the exact value, and their relative difference.  A docs
writer who wants a number of their own gets the ``focalspec golden`` command that prints it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from focalspec.reports.merge import to_float

MIN_DIGITS = 4
MAX_DIGITS = 17  # a float64 round-trips with 17


@dataclass(frozen=True)
class Pair:
    """An exact and an observed value printed side by side."""

    exact: str
    observed: str
    magnitude: str  # "≈1e-20" of the exact value, "0" or "" when unknown
    rel: str  # the relative difference, "" when it has no meaning


def _sig(v: float, n: int) -> str:
    return f"{v:.{n - 1}e}" if v != 0 and (abs(v) < 1e-4 or abs(v) >= 1e6) else f"{v:#.{n}g}"


def _plain(v: Any) -> str:
    return "—" if v is None else str(v)


def pair(expected: Any, observed: Any) -> Pair:
    """Both values with the fewest significant digits (>= 4) at which they differ."""
    e, o = to_float(expected), to_float(observed)
    if e is None or o is None or not (math.isfinite(e) and math.isfinite(o)):
        shown = [_sig(v, MAX_DIGITS) if v is not None and math.isfinite(v) and v != 0 else _plain(raw)
                 for v, raw in ((e, expected), (o, observed))]  # fmt: skip
        return Pair(shown[0], shown[1], magnitude(e), "")
    n = MIN_DIGITS
    while n < MAX_DIGITS and _sig(e, n) == _sig(o, n):
        n += 1
    rel = f"{abs(o - e) / abs(e):.1e}" if e != 0 else ""
    return Pair(_sig(e, n), _sig(o, n), magnitude(e), rel)


def magnitude(v: float | None) -> str:
    """The order of magnitude of ``v``: '≈1e-20', '0', or '' when unknown."""
    if v is None or not math.isfinite(v):
        return ""
    if v == 0:
        return "0"
    return f"≈1e{math.floor(math.log10(abs(v)))}"


# ----------------------------------------------------------------------------- focalspec golden


def _num(v: Any) -> str | None:
    f = to_float(v)
    if f is None or not math.isfinite(f):
        return None
    return repr(f) if f != int(f) or abs(f) >= 1e16 else str(int(f))


def golden_command(variant: dict[str, Any] | None, x: Any, target: Any, dtype: str | None,
                   grad: bool = False) -> str | None:
    """The ``focalspec golden`` call that prints the certified value of one element (a softmax
    row: ``x`` its class logits, ``target`` the class), or None where the element cannot be
    stated on the command line (a reduced check, a non-finite input, soft softmax targets).
    A negative number is written ``--x=-1.5`` (argparse would read ``--x -1.5`` as an option)."""
    v = variant or {}
    if str(v.get("reduction") or "none") != "none":
        return None
    softmax = v.get("activation") == "softmax"
    if softmax:
        row = [_num(z) for z in x] if isinstance(x, list | tuple) and x else [None]
        ys = _num(target)
        if None in row or ys is None or "." in ys:
            return None
        parts = ["focalspec golden", "--softmax", f"--x={','.join(str(z) for z in row)}", f"--y={ys}"]
    else:
        xs, ys = _num(x), _num(target)
        if xs is None or ys is None:
            return None
        parts = ["focalspec golden", f"--x={xs}", f"--y={ys}"]
    if v.get("input_kind") == "probs":
        parts.append("--kind=prob")
    alpha = v.get("alpha")
    parts.append("--alpha=none" if alpha is None else f"--alpha={_num(alpha)}")
    if v.get("gamma") is not None:
        parts.append(f"--gamma={_num(v['gamma'])}")
    if not softmax and ys not in ("0", "1"):
        parts.append("--soft")
    if v.get("soft_target") not in (None, "canonical"):
        parts.append(f"--variant={v['soft_target']}")
    if v.get("clip_eps") is not None:
        parts.append(f"--clip-eps={_num(v['clip_eps'])}")
        if v.get("clip_scope") not in (None, "all"):
            parts.append(f"--clip-scope={v['clip_scope']}")
    if to_float(v.get("label_smoothing")):
        parts.append(f"--label-smoothing={_num(v['label_smoothing'])}")
    if dtype and dtype != "-":
        parts.append(f"--dtype={dtype}")
    if grad:
        parts.append("--grad")
    return " ".join(parts)


def case_command(case_id: str | None, dtype: str | None = None, grad: bool = False) -> str | None:
    """``focalspec golden CASE_ID``: the certified values of a catalogue case."""
    if not case_id:
        return None
    return " ".join(["focalspec golden", case_id] + ([f"--dtype={dtype}"] if dtype and dtype != "-" else [])
                    + (["--grad"] if grad else []))  # fmt: skip
