"""Plain facts about one results entry that every part of the report needs: its HTML id, its
largest error, whether it failed.  Kept apart (and importing nothing of the report) so that the
matrix (model.py) and the first screen's severities (harm.py) can both use them without
importing each other."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from focalspec.reports.merge import to_float

FAILING = ("failed", "error", "xfailed")


def slug(*parts: Any) -> str:
    """An HTML id from arbitrary text (stable, short, unique enough with a hash)."""
    text = "-".join(str(p) for p in parts)
    clean = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60]
    return f"{clean}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def max_err(t: dict[str, Any]) -> float | None:
    """The largest error (u) of a test over value and gradient; inf for a non-finite result.

    The suite writes an infinite error as null (strict JSON), so a value/gradient summary
    whose ``max_err_u`` is null, or a worst element of a value/gradient check without
    ``err_u``, means NaN/Inf where the reference is finite.  Invariant checks have no error."""
    errs: list[float] = []
    for key in ("value", "grad"):
        summary = t.get(key)
        if isinstance(summary, dict):
            errs.append(_err(summary.get("max_err_u")))
    w = t.get("worst")
    if isinstance(w, dict) and t.get("check") != "invariant" and ("err_u" in w):
        errs.append(_err(w.get("err_u")))
    return max(errs) if errs else None


def _err(v: Any) -> float:
    f = to_float(v)
    return math.inf if f is None or math.isnan(f) else f
