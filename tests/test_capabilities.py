"""Declared capabilities (adapters/capabilities.py) and the registry's environment tags.

The refusals are derived from the declarations; the tox conformance envs take their adapter
lists from the registry (``focalspec adapters --env ENV``), so a library is added in one place.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from focalspec.adapters.capabilities import Capabilities, refusal
from focalspec.adapters.registry import BUILTIN, adapters_of_env, all_adapters, third_party_adapters
from focalspec.cli_main import main
from focalspec.spec.conventions import CONVENTIONS
from focalspec.spec.variant import Variant

ROOT = Path(__file__).resolve().parents[1]
KORNIA_LIKE = Capabilities(
    "lib", activations=("softmax",), reductions=("none", "sum"), reduction_notes={"mean": "mean is over N*C"}
)


@pytest.mark.parametrize(
    ("caps", "variant", "words"),
    [
        (Capabilities("lib"), Variant(), None),
        (Capabilities("lib"), Variant(activation="softmax"), "lib is a sigmoid focal loss; softmax is not offered"),
        (Capabilities("lib"), Variant(input_kind="probs"), "lib takes logits only"),
        (Capabilities("lib", input_notes={"probs": "clamps apart"}), Variant(input_kind="probs"), "clamps apart"),
        (Capabilities("lib", input_kinds=("logits", "probs")), Variant(input_kind="probs", clip_eps=1e-7),
         "no probability-clipping"),
        (Capabilities("lib", input_kinds=("logits", "probs"), clip_inputs=("probs",)),
         Variant(input_kind="probs", clip_eps=1e-7), None),
        (Capabilities("lib"), Variant(label_smoothing=0.1), "lib has no label smoothing"),
        (Capabilities("lib", soft_targets=("canonical",)), Variant(soft_target="margin"), "canonical soft-target"),
        (Capabilities("lib"), Variant(soft_target="margin"), None),
        (Capabilities("lib"), Variant(reduction="normalized"), "no reduction 'normalized' (offers none, sum, mean)"),
        (KORNIA_LIKE, Variant(activation="softmax", reduction="mean"), "mean is over N*C"),
        (Capabilities("lib", alpha_off=False), Variant(alpha=None), "always applies alpha"),
        (Capabilities("lib", alpha_off=False), Variant(alpha=0.25), None),
        (Capabilities("lib", alpha_on=False), Variant(alpha=0.25), "alpha=None only"),
        (Capabilities("lib", alpha_on=False, alpha_note="pos_weight"), Variant(alpha=0.25), "only (pos_weight)"),
    ],
)  # fmt: skip
def test_refusal_follows_the_declaration(caps: Capabilities, variant: Variant, words: str | None) -> None:
    reason = refusal(caps, variant)
    if words is None:
        assert reason is None
    else:
        assert reason is not None and words in reason and "\n" not in reason


def test_an_unknown_convention_is_refused_at_declaration() -> None:
    with pytest.raises(KeyError, match="unknown convention"):
        Capabilities("lib", convention="no.such.loss")


def test_every_third_party_adapter_declares_what_it_accepts() -> None:
    """Each library's refusals come from its declaration; a named convention is the spec's entry
    for that very implementation (spec/conventions.py is the one source)."""
    for a in third_party_adapters():
        if a.name == "fvcore-star" or a.implementation.startswith("focalspec."):
            continue  # FL* is no focal loss of the spec (refuses every variant itself); focalspec's own claim all
        assert a.capabilities is not None, a.name
        conv = a.capabilities.convention
        if conv is not None:
            assert conv in CONVENTIONS and conv == a.implementation, (a.name, conv)


def tox_envs() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    return {s.removeprefix("testenv:"): parser[s].get("commands", "") for s in parser.sections()}


def test_tox_conformance_envs_take_their_lists_from_the_registry() -> None:
    envs = tox_envs()
    tagged = {a.env for a in all_adapters(include_entry_points=False) if a.env}
    assert tagged <= set(envs), f"adapters tagged with envs tox.ini lacks: {tagged - set(envs)}"
    for env, commands in envs.items():
        if "focalspec.conformance" not in commands:
            continue
        assert f"focalspec adapters --env {env})" in commands, env
        assert not re.search(r"--focal-adapters [a-z]", commands), f"{env} types an adapter list again"
        assert env in tagged, f"tox env {env} runs conformance but no adapter is tagged with it"


def test_adapters_env_prints_the_registry_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "--env", "jax"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(a.name for a in adapters_of_env("jax"))
    assert {"focalspec-jax", "optax"} <= set(a.name for a in adapters_of_env("jax"))
    assert main(["adapters", "--env", "no-such-env"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-env" in err[0] and "thirdparty" in err[0]


def test_one_registry_line_tags_a_library() -> None:
    """Adapters take the environment of their registry line unless they declare their own."""
    lines = dict(BUILTIN)
    assert lines["focalspec.adapters.thirdparty.kornia_adapter:adapters"] == "thirdparty"
    kornia = [a for a in adapters_of_env("thirdparty") if a.name.startswith("kornia")]
    assert [a.name for a in kornia] == ["kornia-binary", "kornia-multiclass"]
    assert "fvcore-star" not in {a.name for a in adapters_of_env("thirdparty")}  # declares env ""
    assert {a.name for a in adapters_of_env("keras-jax")} == {"keras-binary-jax", "keras-categorical-jax"}
