"""focalspec: the reference specification and conformance suite for focal loss.

The top-level folders of the repository are the parts of this one namespace:
``focalspec.spec``, ``focalspec.reference``, ``focalspec.certified``, ``focalspec.adapters``,
``focalspec.conformance`` and ``focalspec.reports``.  ``focalspec.golden(x, y, ...)`` is the
certified value of any input (``focalspec.certified.api``), loaded on first use so that
``import focalspec`` stays free of mpmath and numpy.
"""

from typing import Any

from focalspec.cli_main import main

__version__ = "0.1.0"
__all__ = ["__version__", "golden", "main"]


def __getattr__(name: str) -> Any:
    if name == "golden":
        from focalspec.certified.api import golden

        return golden
    raise AttributeError(f"module 'focalspec' has no attribute {name!r}")
