"""The Sphinx extension: a small project using the role, the directive and checked citations
builds; changing one hand-written digit fails the build, naming the page and the line.

Sphinx is installed by the ``tests-docs`` tox env (label ci), which sets FOCAL_REQUIRE_SPHINX=1 so
that a missing Sphinx fails there instead of skipping."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr
from pathlib import Path

import pytest

if os.environ.get("FOCAL_REQUIRE_SPHINX") != "1":
    pytest.importorskip("sphinx", reason="Sphinx is installed by the tests-docs tox env")
from sphinx.cmd.build import build_main

from focalspec.certified.api import golden

CONF = 'extensions = ["focalspec.certified.sphinx_ext"]\nproject = "t"\n'
PAGE = """\
Focal loss numbers
==================

The easy foreground example is :focal:`seed000_fl_fg_easy digits=6`.

Keras prints :focal-cite:`1.222 <x=-18.6,0.51;2.94,-12.8 y=0,1;0,0 alpha=none gamma=4 reduction=keras-sum
input_dtype=float32>` for its reduction="sum" example and
:focal-cite:`0.691 <x=-18.6,0.51,2.94,-12.8 y=0,1,0,0 alpha=none gamma=2 reduction=keras-mean input_dtype=float32>`
for its first one.

The article's FL(FG) is :focal-cite:`3.2058e-5 <seed000_fl_fg_easy>`; in float32 it is
:focal-cite:`3.2058309e-5 <x=0.95 kind=probs y=1 dtype=float32>`.

.. focal-value:: x=2,0,-1 y=0 softmax alpha=0.2,0.4,0.4
   :dtypes: float32 bfloat16
"""


def build(tmp_path: Path, page: str) -> tuple[int, str, str]:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir(exist_ok=True)
    (src / "conf.py").write_text(CONF)
    (src / "index.rst").write_text(page)
    err = io.StringIO()
    with redirect_stderr(err):
        rc = build_main(["-b", "html", "-q", "-E", str(src), str(out)])
    html = (out / "index.html").read_text() if (out / "index.html").exists() else ""
    return rc, html, err.getvalue()


def test_page_builds_with_certified_values(tmp_path: Path) -> None:
    rc, html, err = build(tmp_path, PAGE)
    assert rc == 0, err
    assert "3.20583e-05" in html  # :focal: at 6 digits
    assert "1.222" in html and "0.691" in html and "3.2058e-5" in html  # the citations, as written
    g = golden([["2", "0", "-1"]], [0], softmax=True, alpha=["0.2", "0.4", "0.4"])
    assert g.losses[0] in html and "proven" in html
    assert "focalspec golden --softmax --x 2,0,-1 --y 0 --alpha 0.2,0.4,0.4" in html


@pytest.mark.parametrize(
    "old,new,fragment",
    [
        ("`1.222 <", "`1.223 <", "index.rst:6: ERROR: hand-written 1.223"),
        ("`3.2058e-5 <", "`3.2059e-5 <", "index.rst:11: ERROR: hand-written 3.2059e-5"),
        ("`3.2058309e-5 <", "`3.2058308e-5 <", "hand-written 3.2058308e-5"),  # the float32 value's digits
        ("`3.2058e-5 <", "`3.20583089e-5 <", "3.20583089e-5 is truncated (correctly rounded: 3.20583090e-5)"),
    ],
    ids=["keras-sum", "case", "float32", "truncated"],
)
def test_one_changed_digit_fails_the_build(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    assert old in PAGE
    rc, _, err = build(tmp_path, PAGE.replace(old, new))
    assert rc != 0
    assert fragment in err, err
    assert err.count("ERROR:") == 2 and "Traceback" not in err  # that line, then the summary


def test_a_bad_query_fails_the_build(tmp_path: Path) -> None:
    rc, _, err = build(tmp_path, "T\n=\n\n:focal:`seed000_fl_fg_eazy`\n")
    assert rc != 0 and "did you mean seed000_fl_fg_easy" in err, err
