"""One check's record: what the runner found and what pytest's phases said, typed.

The runner fills a ``CheckRecord`` while it grades a call (``Suite.run``); the plugin keeps one
per node id, merges the runner's findings into it (``take_graded``) and the outcome of every
pytest phase, and writes it with ``to_json`` -- the test entry of the results JSON (schema
focalspec-results v1, ``results.document``), whose keys and order this class is the one place
of.  Under pytest-xdist the entry travels as that JSON and comes back with ``from_json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# what the runner decides of a check (the rest is pytest's: outcome, duration, skip reason ...)
GRADED: tuple[str, ...] = ("grade", "value", "grad", "worst", "reproducer", "failure_tier", "fault", "cause",
                           "cause_detail", "cause_example")  # fmt: skip


@dataclass
class CheckRecord:
    """One test entry of the results JSON; ``static`` is the parameter's part (``Param.static``
    and its ``tier``), written right after the node id."""

    nodeid: str
    static: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    grade: str | None = None
    value: dict[str, Any] | None = None
    grad: dict[str, Any] | None = None
    worst: dict[str, Any] | None = None
    message: str | None = None
    reproducer: str | None = None
    duration_s: float = 0.0
    skip_reason: str | None = None
    failure_tier: str | None = None
    tier_required: bool | None = None
    fault: str | None = None
    cause: str | None = None
    cause_detail: str | None = None
    cause_example: dict[str, Any] | None = None
    # the runner's note of a dtype-contract breach (callable_adapter.RETURNED_DTYPE): not in the JSON
    returned_dtype: str | None = field(default=None, metadata={"json": False})

    def to_json(self) -> dict[str, Any]:
        """The results JSON's test entry: node id, the static part, then the fields in order."""
        out: dict[str, Any] = {"nodeid": self.nodeid, **self.static}
        for f in _JSON_FIELDS:
            out[f] = getattr(self, f)
        return out

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> CheckRecord:
        """A record from its JSON entry (a pytest-xdist worker's, carried on its report)."""
        own = {k: entry[k] for k in _JSON_FIELDS if k in entry}
        static = {k: v for k, v in entry.items() if k != "nodeid" and k not in _JSON_FIELDS}
        return cls(nodeid=str(entry.get("nodeid")), static=static, **own)

    def take_graded(self, graded: CheckRecord) -> None:
        """The runner's findings of this check (``GRADED``; its message only when it has one)."""
        for name in GRADED:
            setattr(self, name, getattr(graded, name))
        if graded.message:
            self.message = graded.message

    @property
    def tier(self) -> str | None:
        """The tier of the check's inputs (its parameter's, ``tiers.param_tier``)."""
        return self.static.get("tier")


_JSON_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(CheckRecord) if f.name not in ("nodeid", "static") and f.metadata.get("json", True)
)
