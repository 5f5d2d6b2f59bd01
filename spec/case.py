"""A conformance case as data: the variant, the inputs, the targets, and why it exists.

Cases are plain frozen values so that the catalogue, the golden file, the pytest ids and
the report all speak of the same thing.  Inputs are strings or floats: strings are exact
decimals (worked examples of the articles), floats are exact binary values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from focalspec.spec.variant import Variant

# Topic -> SPEC.md section; one place to keep in step with the specification text.
SECTIONS: dict[str, str] = {
    "sigmoid": "§1",
    "limits": "§1.1",  # infinite and NaN inputs, alpha_t = 0, gamma = 0, underflow
    "symmetry": "§1.2",
    "soft": "§2.1",
    "soft_conventions": "§2.2",
    "probs": "§3",
    "clip": "§3",
    "alpha_gamma": "§4",
    "softmax": "§5",
    "label_smoothing": "§6",
    "reduction": "§7",
}

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

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON data (what the golden file stores and its checksum covers)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return dict(d, variant=self.variant.to_dict(), tags=list(self.tags))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        """The case back from :meth:`to_dict`'s data (extra keys, a golden entry's results, ignored)."""
        kw = {f.name: d[f.name] for f in fields(cls)}
        return cls(**dict(kw, variant=Variant.from_dict(d["variant"]), tags=tuple(d["tags"])))
