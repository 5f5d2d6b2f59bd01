"""Sphinx extension: certified focal-loss values in documentation, and a check on hand-written ones.

In ``conf.py``: ``extensions = ["focalspec.certified.sphinx_ext"]``.  Then, in a page:

``:focal:`QUERY``` inserts the certified value, e.g. ``:focal:`seed000_fl_fg_easy digits=6```
or ``:focal:`x=0.95 kind=probs y=1 digits=6```.

``:focal-cite:`0.691 <QUERY>``` keeps the number as written -- the page shows ``0.691`` -- and
fails the build (a one-line error at the page and line, then a failing exit status) unless it
is the certified value correctly rounded at its own last digit.  A page that copies a number from a library's
docstring, or types one by hand, is checked on every build.

``.. focal-value:: QUERY`` inserts a small block: the value, each dtype asked for, whether it
is proven, and the ``focalspec golden`` command that prints it.

QUERY is ``key=value`` words: a catalogue case id (first word, or ``case=ID``) or ``x=``/``y=``
(values comma-separated, rows ';'-separated) with any of ``kind softmax alpha gamma variant
clip_eps clip_scope label_smoothing renormalize reduction sample_weight class_weight
input_dtype round_params`` (as ``focalspec.golden`` takes them; a bare ``softmax`` means
``softmax=true``), and for the output ``digits=N`` (significant digits), ``dtype=float32``
(the correctly rounded dtype value instead) and ``field=value|loss|grad`` with ``index=i,j``.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import ReferenceRole, SphinxRole

from focalspec.certified.query import check_cited, resolve
from focalspec.spec.variant import SpecError

logger = logging.getLogger(__name__)


def _fail(inliner_or_state: Any, lineno: int, msg: str) -> None:
    """Report one failure as a one-line error at the page and line, and record it so that the
    build ends with a failing status (build-finished)."""
    env = inliner_or_state.document.settings.env
    logger.error(msg, location=(env.docname, lineno), type="focalspec")
    failures = env.__dict__.setdefault("focal_failures", {})
    failures.setdefault(env.docname, []).append(f"{env.docname}:{lineno}: {msg}")


def _purge(app: Sphinx, env: Any, docname: str) -> None:
    env.__dict__.get("focal_failures", {}).pop(docname, None)


def _merge(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    mine = env.__dict__.setdefault("focal_failures", {})
    for doc, msgs in other.__dict__.get("focal_failures", {}).items():
        if doc in docnames:
            mine[doc] = msgs


def _finish(app: Sphinx, exception: BaseException | None) -> None:
    failures = [m for msgs in app.env.__dict__.get("focal_failures", {}).values() for m in msgs]
    if exception is None and failures:
        logger.error("focalspec: %d certified-value check(s) failed", len(failures), type="focalspec")
        app.statuscode = 1


class FocalRole(SphinxRole):
    """``:focal:`QUERY``` -> the certified value."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        try:
            res = resolve(self.text)
        except SpecError as exc:
            _fail(self.inliner, self.lineno, f":focal:`{self.text}`: {exc}")
            return [nodes.literal(self.rawtext, self.text, classes=["focal-error"])], []
        return [nodes.literal(self.rawtext, res["text"], classes=["focal-value", f"focal-{res['status']}"])], []


class FocalCiteRole(ReferenceRole):
    """``:focal-cite:`NUMBER <QUERY>``` -> NUMBER as written, checked against the certified value."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        printed, query = self.title.strip(), self.target
        node = nodes.inline(self.rawtext, printed, classes=["focal-cited"])
        if not self.has_explicit_title:
            _fail(self.inliner, self.lineno, f":focal-cite:`{self.text}` needs the form `NUMBER <QUERY>`")
            return [node], []
        where = " ".join(query.split())
        try:
            res = resolve(query)
            why = check_cited(printed, res["compare"])
        except SpecError as exc:
            _fail(self.inliner, self.lineno, f":focal-cite: {printed} <{where}>: {exc}")
            return [node], []
        if why:
            _fail(self.inliner, self.lineno, f"hand-written {why}; certified {res['compare']} ({where})")
        return [node], []


class FocalValueDirective(Directive):
    """``.. focal-value:: QUERY`` with ``:dtypes: float32 bfloat16``: value, dtypes, status, command."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"dtypes": directives.unchanged}  # noqa: RUF012 (docutils' own class attribute)

    def run(self) -> list[nodes.Node]:
        query = self.arguments[0]
        try:
            res = resolve(query)
            rows = [("value", res["text"])]
            for dt in (self.options.get("dtypes") or "").split():
                rows.append((dt, resolve(f"{query} dtype={dt}")["text"]))
        except SpecError as exc:
            _fail(self.state, self.lineno, f"focal-value {query}: {exc}")
            return []
        rows.append(("status", res["status"]))
        block = nodes.literal_block("", "\n".join(f"{k:<9} {v}" for k, v in rows) + f"\n$ {res['command']}")
        block["classes"].append("focal-value")
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_role("focal", FocalRole())
    app.add_role("focal-cite", FocalCiteRole())
    app.add_directive("focal-value", FocalValueDirective)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("build-finished", _finish)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
