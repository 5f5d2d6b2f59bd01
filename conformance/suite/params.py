"""The suite's test parameters: one check of one case on one adapter, dtype, device and mode.

``Param`` is what pytest parametrises ``focal_check`` with (its ``static`` part goes into the
results JSON); ``collapse_skips`` folds the skips of one reason into one item.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

from focalspec.adapters.base import Adapter
from focalspec.conformance.suite.cases import Evaluation, InvariantCase, SuiteCase
from focalspec.spec.variant import Variant


@dataclass(eq=False)
class Param:
    """One test parameter: what to run and what it claims."""

    adapter: Adapter
    device: str
    dtype: str
    mode: str
    case: SuiteCase | InvariantCase
    check: str
    variant: Variant | None  # resolved variant (value/grad) or the invariant's main variant
    required: str
    skip: str | None = None
    evals: list[Evaluation] = field(default_factory=list)
    members: tuple[Param, ...] = ()  # the per-case skips this one stands for (collapse_skips)

    @property
    def id(self) -> str:
        return f"{self.adapter.name}-{self.device}-{self.dtype}-{self.mode}-{self.case.id}"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.adapter.name, self.device, self.dtype, self.mode, self.case.id)

    def static(self) -> dict[str, Any]:
        v = self.variant or self.case.variant
        return {
            "adapter": self.adapter.name,
            "device": self.device,
            "dtype": self.dtype,
            "mode": self.mode,
            "case_id": self.case.id,
            "family": self.case.family,
            "check": self.check,
            "spec_section": self.case.spec_section or None,
            "variant": v.to_dict(),
            "required_grade": self.required,
            "skipped_cases": [m.case.id for m in self.members] or None,
        }


def collapse_skips(params: list[Param]) -> list[Param]:
    """One skip per (check, family, reason) of a combination instead of one per case: a skipped
    item costs pytest about what a run one does (benchmarks/PROFILE.md: 719 of the gate's 1,425
    items at quick were skips), and one skip naming its cases says as much as a hundred."""
    groups: dict[tuple[str, str, str], list[Param]] = {}
    kept: list[Param] = []
    for p in params:
        if p.skip and p.check in ("value", "grad") and isinstance(p.case, SuiteCase):
            groups.setdefault((p.check, p.case.family, p.skip), []).append(p)
        else:
            kept.append(p)
    for (check, family, reason), members in groups.items():
        if len(members) == 1:
            kept.extend(members)
            continue
        first = members[0]
        tag = hashlib.sha1(reason.encode()).hexdigest()[:6]
        case = SuiteCase(f"{family}-skipped-{tag}", family, first.case.variant, [], [], first.case.spec_section,
                         compiled=True, note=f"{len(members)} cases of {family}, skipped for one reason")  # fmt: skip
        kept.append(replace(first, case=case, check=check, skip=reason, members=tuple(members)))
    return kept
