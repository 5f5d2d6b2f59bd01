"""The xfail and skip files of a run: one test id or pattern a line, ``#`` comments as reasons.

The plugin marks the collected items each entry matches and reports the entries that matched
nothing or whose expected failures passed (stale).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from focalspec.spec.variant import SpecError


@dataclass
class ListEntry:
    """One line of an xfail/skip file."""

    pattern: str
    file: str
    line: int
    reason: str
    regex: re.Pattern[str]
    matched: list[str] = field(default_factory=list)
    xpassed: list[str] = field(default_factory=list)

    def matches(self, *names: str) -> bool:
        return any(self.regex.fullmatch(n) for n in names)


def read_list(path: str, kind: str) -> list[ListEntry]:
    """Entries of an xfail/skip file: one id or pattern per line (``*``/``?`` wildcards, brackets
    literal), ``#`` starts a comment, which becomes the reason."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise SpecError(f"--focal-{kind}: cannot read {path}: {exc.strerror}") from None
    out = []
    for no, raw in enumerate(lines, 1):
        text, _, comment = raw.partition("#")
        pat = text.strip()
        if not pat:
            continue
        rx = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pat)
        reason = comment.strip() or f"listed in {path}:{no}"
        out.append(ListEntry(pat, path, no, reason, re.compile(rx)))
    return out
