"""Correct rounding to IEEE binary formats now lives in the specification (``focalspec.spec.rounding``):
the dtypes are definitions, and spec imports nothing above it.  Kept so that ``focalspec.reference.rounding``
(the name the adapters, the suite and the tests import) keeps working."""

from focalspec.spec.rounding import FORMATS, Format, get_format, round_array, round_mpf, to_dtype

__all__ = ["FORMATS", "Format", "get_format", "round_array", "round_mpf", "to_dtype"]
