"""One import namespace: the top-level folders are parts of ``focalspec`` and nothing else
is installed at the top level of site-packages."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

PARTS = ("spec", "reference", "adapters", "kernels", "conformance", "reports")


def test_only_focalspec_is_a_top_level_package(tmp_path: Path) -> None:
    """Checked in a fresh interpreter started in an empty folder: a test process's own sys.path
    (pytest prepends the repository root after an in-process gate run) would hide the answer."""
    dist = metadata.distribution("focalspec")
    top = (dist.read_text("top_level.txt") or "focalspec").split()
    assert top == ["focalspec"], f"installed top-level packages: {top}"
    probe = f"import importlib.util as u; print(' '.join(n for n in {PARTS!r} if u.find_spec(n) is not None))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.split() == [], done.stdout + done.stderr


@pytest.mark.parametrize("part", PARTS)
def test_each_folder_is_a_part_of_the_namespace(part: str) -> None:
    module = importlib.import_module(f"focalspec.{part}")
    assert module.__name__ == f"focalspec.{part}"


def test_console_script_and_module_entry_point() -> None:
    eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "focalspec"]
    assert eps and eps[0].value == "focalspec.cli_main:entry"
    done = subprocess.run([sys.executable, "-m", "focalspec", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and all(name in done.stdout for name in ("golden", "check", "report", "findings"))


def test_the_fast_exit_keeps_the_output_the_exit_code_and_the_exit_handlers(tmp_path: Path) -> None:
    """``entry`` leaves by ``os._exit`` after ``main``: everything printed (more than the
    8 KiB a piped stdout buffers) still arrives, the exit code is ``main``'s, and the exit handlers have run."""
    flag = tmp_path / "handler-ran"
    code = (
        "import atexit, sys; from focalspec import cli_main; "
        f"atexit.register(lambda: open({str(flag)!r}, 'w').close()); "
        "sys.argv = ['focalspec', *sys.argv[1:]]; cli_main.entry()"
    )
    done = subprocess.run([sys.executable, "-c", code, "golden", "--list"], capture_output=True, text=True, timeout=120)
    listed = subprocess.run([sys.executable, "-c", "from focalspec.cli_main import main; main(['golden', '--list'])"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout == listed.stdout and len(done.stdout) > 8192
    assert flag.exists()
    bad = subprocess.run([sys.executable, "-c", code, "check", "no-such-adapter"], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "no adapter named 'no-such-adapter'" in bad.stderr


def test_spec_document_ships_with_the_package() -> None:
    from importlib.resources import files

    assert "Tolerance policy" in files("focalspec.spec").joinpath("SPEC.md").read_text(encoding="utf-8")
