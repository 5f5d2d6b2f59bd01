"""Reading the committed impact results (SPEC.md §10.9; measured by impact.py): the file, whether a
defect moves a realistic batch beyond its rounding floor (severity's ``impact_exceeds_floor``), and
the one line of impact numbers the findings print beside a cause."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCHEMA = "focalspec-impact"
SCHEMA_VERSION = 1
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "reports" / "impact.json"
IMPACT_DTYPES: tuple[str, ...] = ("float64", "float32", "bfloat16", "float16")


def load(path: Path | str | None = None) -> dict[str, Any]:
    """The committed impact results by adapter name ({} when the file is absent or unreadable)."""
    p = Path(path) if path else DEFAULT_FILE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return {}
    return {str(a.get("adapter")): a for a in doc.get("adapters") or [] if isinstance(a, dict)}


def exceeds_floor(entry: dict[str, Any] | None, dtypes: list[str] | tuple[str, ...] | set[str]) -> bool | None:
    """Whether any measured dtype among ``dtypes`` moves a realistic batch beyond its floor
    (None where none of them was measured): the ``impact_exceeds_floor`` of severity()."""
    if not entry:
        return None
    found = [entry.get("dtypes", {}).get(d, {}).get("summary", {}).get("exceeds_floor") for d in dtypes]
    found = [f for f in found if f is not None]
    return any(found) if found else None


def impact_line(entry: dict[str, Any] | None, cause: str, dtypes: list[str] | tuple[str, ...] | set[str]) -> str:
    """One line of impact numbers for a cause of an implementation in ``dtypes``."""
    if cause == "nonfinite_input_policy":
        return "impact: ±∞/NaN inputs only (extended tier), which a finite network does not produce"
    if not entry or not entry.get("dtypes"):
        return "impact: not measured (focalspec impact NAME)"
    parts = []
    for d in sorted(dtypes, key=lambda s: IMPACT_DTYPES.index(s) if s in IMPACT_DTYPES else 9):
        s = entry["dtypes"].get(d, {}).get("summary")
        if not s:
            continue
        if cause in ("nonfinite_at_finite", "fault"):
            nf = (f"{s['nonfinite_grad']} non-finite gradients per batch ({s['nonfinite_workload']})"
                  if s["nonfinite_grad"] else "no non-finite gradient on the workloads")  # fmt: skip
            tr = (f"training diverges at step {s['first_nonfinite_step']} ({s['first_nonfinite_training']})"
                  if s["first_nonfinite_step"] is not None else "training runs stay finite")  # fmt: skip
            parts.append(f"{d}: {nf}; {tr}")
        else:
            r = s.get("max_floor_ratio")
            where = "beyond" if s.get("exceeds_floor") else "within"
            parts.append(f"{d}: {where} the rounding floor (largest change {_fmt_ratio(r)} the floor)")
    return "impact: " + ("; ".join(parts) if parts else f"not measured in {', '.join(sorted(dtypes))}")


def _finite_number(r: Any) -> bool:
    return isinstance(r, int | float) and math.isfinite(r)


def _fmt_ratio(r: float | str | None) -> str:
    """A ratio as read back from JSON, where ∞ is the string "inf"."""
    if r in ("inf", math.inf):
        return "∞×"
    return f"{r:.2g}×" if _finite_number(r) else "?×"
