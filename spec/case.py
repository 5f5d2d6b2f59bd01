"""A conformance case as data: the variant, the inputs, the targets, and why it exists.

Cases are plain frozen values so that the catalogue, the golden file, the pytest ids and
the report all speak of the same thing.  Inputs are strings or floats: strings are exact
decimals (worked examples of the articles), floats are exact binary values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from focalspec.spec.variant import Variant

TAGS: tuple[str, ...] = (
    "worked-example",  # from a seed article; carries the printed number
    "ratio",  # a ratio printed in an article
    "saturation",  # |x| at or beyond a dtype's saturation point
    "underflow",  # result underflows a dtype to subnormal or zero
    "overflow",  # exp overflow point of float32 / float64
    "nan-hazard",  # naive evaluation gives NaN (0 * inf, 0 ** (gamma - 1) ...)
    "infinite",  # +-inf or NaN input
    "soft-target",
    "soft-convention",  # the declared non-canonical soft-target conventions
    "probs",
    "clip",
    "label-smoothing",
    "softmax",
    "reduction",
    "empty",
    "gamma-grid",
    "alpha-grid",
    "invariant",
)


@dataclass(frozen=True)
class Case:
    """One catalogue entry.

    ``inputs``/``targets`` are nested lists (shape = nesting), scalars for shape ().
    ``printed`` holds what a seed article printed for this case (value or ratio, as text),
    compared with the certified value by ``focalspec golden --errata``.
    ``spec_section`` names the SPEC.md section the case tests.
    """

    id: str
    variant: Variant
    inputs: Any
    targets: Any
    tags: tuple[str, ...] = ()
    note: str = ""
    spec_section: str = ""
    printed: str | None = None
    source: str | None = None  # seed file and the sentence it comes from
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.tags) - set(TAGS)
        if unknown:
            raise ValueError(f"case {self.id}: unknown tag(s) {sorted(unknown)}")
