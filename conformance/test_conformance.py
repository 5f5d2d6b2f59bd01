"""The conformance suite: value, gradient, invariant and contract checks of every selected adapter.

Parametrised by the focalspec plugin (``plugin.pytest_generate_tests``) over
case x adapter x dtype x device x mode; run with ``pytest --pyargs focalspec.conformance``.
"""

from __future__ import annotations

from typing import Any

import pytest


def test_value(focal_check: Any, focal_suite: Any, request: pytest.FixtureRequest) -> None:
    """The loss (per element, per row, or reduced) against the reference at the rounded inputs."""
    focal_suite.run(focal_check, request.node)


def test_grad(focal_check: Any, focal_suite: Any, request: pytest.FixtureRequest) -> None:
    """The gradient of the reported loss through the framework's autodiff against the reference."""
    focal_suite.run(focal_check, request.node)


def test_invariant(focal_check: Any, focal_suite: Any, request: pytest.FixtureRequest) -> None:
    """An identity between evaluations of the implementation itself (``conformance/suite/invariants.py``)."""
    focal_suite.run(focal_check, request.node)


def test_contract(focal_check: Any, focal_suite: Any, request: pytest.FixtureRequest) -> None:
    """What the call must not do: mutate its inputs, return another type, dtype or shape, vary
    between identical calls, attach an autograd graph of its own (``conformance/suite/contracts.py``)."""
    focal_suite.run(focal_check, request.node)
