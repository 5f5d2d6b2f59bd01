"""focalspec: the reference specification and conformance suite for focal loss.

The top-level folders of the repository are the parts of this one namespace:
``focalspec.spec``, ``focalspec.reference``, ``focalspec.adapters``,
``focalspec.conformance`` and ``focalspec.reports``.
"""

from focalspec.cli_main import main

__version__ = "0.1.0"
__all__ = ["__version__", "main"]
