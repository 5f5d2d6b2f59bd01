"""Requirement tiers (SPEC.md §10.5): element tiers, failure tiers from the evidence, --require parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from focalspec.conformance.suite import tiers
from focalspec.spec.variant import SpecError


def test_saturation_bound_is_where_sigmoid_rounds_to_one() -> None:
    for dtype in ("float64", "float32", "float16", "bfloat16"):
        b = tiers.saturation_bound(dtype)
        p = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}[dtype]
        # 1 - sigma(b) = sigma(-b) ~ e^-b is half a unit below 1: 2^-(p+1)
        assert math.isclose(math.exp(-b), 2.0 ** -(p + 1))


def test_element_tiers_of_logits_and_probabilities() -> None:
    x = np.array([0.0, -16.0, 18.0, -100.0, np.inf, np.nan])
    assert tiers.element_tiers(x, "logits", "float32").tolist() == [0, 0, 1, 1, 2, 2]
    assert tiers.element_tiers(x, "logits", "float64").tolist() == [0, 0, 0, 1, 2, 2]
    p = np.array([0.5, 0.0, 1.0, 1.5, np.nan])
    assert tiers.element_tiers(p, "probs", "float32").tolist() == [0, 1, 1, 2, 2]
    assert tiers.input_tier(np.zeros((0,)), "logits", "float32") == "extended"


def test_failure_tier_follows_the_failing_elements_not_the_case() -> None:
    x = np.array([1.0, np.inf, -100.0])
    assert tiers.check_tier(x, "logits", "float32", "eager") == "extended"
    assert tiers.failure_tier(x, "logits", "float32", "eager", np.array([False, True, False])) == "extended"
    # a NaN at a finite saturated input in a case that also holds +inf is a saturation failure
    assert tiers.failure_tier(x, "logits", "float32", "eager", np.array([False, True, True])) == "saturation"
    assert tiers.failure_tier(x, "logits", "float32", "eager", np.array([True, True, True])) == "finite"
    assert tiers.failure_tier(x, "logits", "float32", "compiled", np.array([True, False, False])) == "compile"
    assert tiers.failure_tier(x, "logits", "float32", "compiled", np.array([False, True, False])) == "extended"
    # no element evidence (a raised call, a reduced value): the check's tier
    assert tiers.failure_tier(x, "logits", "float32", "eager", None) == "extended"
    # softmax rows: a row's tier is its highest element tier
    rows = np.array([[0.0, 1.0], [0.0, np.inf]])
    assert tiers.failure_tier(rows, "logits", "float32", "eager", np.array([False, True]), softmax=True) == "extended"


def test_require_parsing() -> None:
    assert tiers.parse_require(None) == ("finite", "saturation", "compile")
    assert tiers.parse_require("finite, extended") == ("finite", "extended")
    with pytest.raises(SpecError, match="unknown tier bogus"):
        tiers.parse_require("finite,bogus")
