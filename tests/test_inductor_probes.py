"""The remembered vector-ISA load probes (adapters/_inductor_probes.py): a probe that succeeded
for a library is not run again for it, one for a changed library or another torch is, and a
failed probe is never remembered."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from focalspec.adapters._inductor_probes import MARKER_SUFFIX, remembered


class _Probe:
    def __init__(self, answer: bool) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self, isa: Any, path: str) -> bool:
        self.calls += 1
        return self.answer


def test_a_successful_probe_is_remembered_for_that_library_and_torch(tmp_path: Path) -> None:
    lib = tmp_path / "isa.so"
    lib.write_bytes(b"\x7fELF one")
    probe = _Probe(True)
    load = remembered(probe, SimpleNamespace(__version__="2.13.0"))
    assert load(None, str(lib)) and load(None, str(lib))
    assert probe.calls == 1
    assert remembered(probe, SimpleNamespace(__version__="2.14.1"))(None, str(lib))  # another torch
    assert probe.calls == 2
    lib.write_bytes(b"\x7fELF rebuilt, longer")  # the library changed: probed again
    os.utime(lib, ns=(1, 1))
    assert load(None, str(lib)) and probe.calls == 3
    assert load(None, str(lib)) and probe.calls == 3


def test_a_failed_probe_is_asked_again_and_a_missing_library_fails(tmp_path: Path) -> None:
    lib = tmp_path / "isa.so"
    lib.write_bytes(b"not loadable")
    probe = _Probe(False)
    load = remembered(probe, SimpleNamespace(__version__="2.13.0"))
    assert not load(None, str(lib)) and not load(None, str(lib))
    assert probe.calls == 2 and not (tmp_path / ("isa.so" + MARKER_SUFFIX)).exists()
    assert not remembered(_Probe(False), SimpleNamespace(__version__="2.13.0"))(None, str(tmp_path / "gone.so"))


def test_inductor_picks_the_same_isa_with_the_remembered_probes() -> None:
    """In fresh interpreters: the ISA Inductor picks unaided, then with the probes remembered
    (first run records them, second answers from the records) -- the same each time."""
    import subprocess
    import sys

    import pytest

    pytest.importorskip("torch._inductor.cpu_vec_isa", reason="the remembered probes wrap Inductor's ISA check")
    plain = "from torch._inductor.cpu_vec_isa import pick_vec_isa; print(pick_vec_isa())"
    wrapped = (
        "import torch; from focalspec.adapters._inductor_probes import remember_isa_probes; "
        "remember_isa_probes(torch); " + plain
    )
    picks = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
        for code in (plain, wrapped, wrapped)
    ]
    assert picks[0].strip() and picks == [picks[0]] * 3, picks
