"""One import namespace: the top-level folders are parts of ``focalspec`` and nothing else
is installed at the top level of site-packages."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata

import pytest

PARTS = ("spec", "reference", "adapters", "kernels", "conformance", "reports")


def test_only_focalspec_is_a_top_level_package() -> None:
    dist = metadata.distribution("focalspec")
    top = (dist.read_text("top_level.txt") or "focalspec").split()
    assert top == ["focalspec"], f"installed top-level packages: {top}"
    for name in PARTS:
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)


@pytest.mark.parametrize("part", PARTS)
def test_each_folder_is_a_part_of_the_namespace(part: str) -> None:
    module = importlib.import_module(f"focalspec.{part}")
    assert module.__name__ == f"focalspec.{part}"


def test_console_script_and_module_entry_point() -> None:
    eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "focalspec"]
    assert eps and eps[0].value == "focalspec.cli_main:main"
    done = subprocess.run([sys.executable, "-m", "focalspec", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "golden" in done.stdout


def test_spec_document_ships_with_the_package() -> None:
    from importlib.resources import files

    assert "Tolerance policy" in files("focalspec.spec").joinpath("SPEC.md").read_text(encoding="utf-8")
