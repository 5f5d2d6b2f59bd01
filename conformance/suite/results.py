"""The results JSON (schema ``focalspec-results``, version 1), read by the report builder.

Strict JSON: non-finite numbers never appear as NaN/Infinity.  Errors in u that are infinite
(a NaN or Inf where the reference is finite) are null; inputs, expected and got values of the
worst element that are not finite are the strings "inf", "-inf", "nan".  ``stale`` lists the
entries of the xfail / skip files that matched no collected test (or, for xfails, whose tests
passed), verbatim.  Every failing test carries ``cause`` (SPEC §10.7, ``causes.CAUSES``),
``cause_detail`` (one human line) and ``cause_example`` (the element that shows it); fields added
within version 1, so readers of older files classify them themselves (``causes.classify_entry``).
``minimal`` (also added within version 1; absent in older files) lists the failing elements the
run bisected to the boundary where a cause starts (conformance/suite/shrink.py), each with its
``--point`` reproducer.  ``tally`` (added within version 1) counts the tests by ``TALLY``, the
one definition that pytest's line, the gate's line and JUnit share (SPEC §10.5, ``tally``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

SCHEMA = "focalspec-results"
SCHEMA_VERSION = 1


# One tally of a run (SPEC §10.5), the same in pytest's line, the gate's line, this JSON and JUnit:
# every check counted once.  failed: missed its grade (or raised, crashed, hung) in a required
# tier -- exit 1; not required: the same in a tier not required -- reported, exit 0 (pytest and
# JUnit: skipped, type pytest.xfail, message "focalspec: not required tier T"); xfailed/xpassed:
# listed in --xfails; skipped: not run, with its reason ("not applicable: ..." where the
# implementation's declared convention does not offer it); error: a set-up or tear-down error.
TALLY: tuple[str, ...] = ("passed", "failed", "not required", "xfailed", "xpassed", "skipped", "error")


def tally_key(entry: dict[str, Any]) -> str | None:
    """The ``TALLY`` category of one test entry (None: it has not finished)."""
    outcome = entry.get("outcome")
    if outcome == "failed" and entry.get("tier_required") is False:
        return "not required"
    return outcome if outcome in TALLY else None


def tally(entries: Any) -> dict[str, int]:
    """How many tests of each ``TALLY`` category (every category present, zeros included)."""
    out = dict.fromkeys(TALLY, 0)
    for e in entries:
        key = tally_key(e)
        if key is not None:
            out[key] += 1
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


@functools.cache
def git_revision() -> str | None:
    """HEAD of the checkout the suite runs from (None for an installed wheel)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def suite_version() -> str:
    try:
        from focalspec import __version__

        return str(__version__)
    except Exception:
        return "unknown"


def adapter_entry(adapter: Any, ran: dict[str, Any] | None) -> dict[str, Any]:
    d = adapter.describe()
    return {
        "name": d.name,
        "implementation": d.implementation,
        "framework": d.framework,
        "framework_version": d.framework_version,
        "convention": d.convention,
        "devices": list(d.devices),
        "dtypes": list(d.dtypes),
        "modes": list(d.modes),
        "unavailable": d.unavailable,
        "ran": jsonable(ran or {}),
    }


def jsonable(v: Any) -> Any:
    """``v`` with strict-JSON leaves: non-finite floats as strings, unknown objects by str()."""
    if isinstance(v, dict):
        return {str(k): jsonable(u) for k, u in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(u) for u in v]
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if v is None or isinstance(v, bool | int | str):
        return v
    return str(v)


def document(
    *,
    depth: str,
    started: str,
    finished: str,
    command: str,
    adapters: list[dict[str, Any]],
    tests: list[dict[str, Any]],
    sweeps: list[dict[str, Any]],
    stale_xfails: list[str],
    stale_skips: list[str],
    status: str = "finished",
    minimal: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``status``: finished | interrupted (Ctrl-C, SIGTERM) | running (a snapshot taken during the run)."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "suite": {"version": suite_version(), "git_revision": git_revision(), "depth": depth},
        "run": {
            "started": started,
            "finished": finished,
            "host": socket.gethostname(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "command": command,
            "env": os.environ.get("TOX_ENV_NAME"),
            "status": status,
        },
        "adapters": adapters,
        "tally": {k.replace(" ", "_"): n for k, n in tally(tests).items()},
        "tests": tests,
        "sweeps": sweeps,
        # per (implementation, cause): the smallest failing input, bisected (conformance/suite/shrink.py)
        "minimal": list(minimal or []),
        "stale": {"xfails": list(stale_xfails), "skips": list(stale_skips)},
    }


def write(path: str | os.PathLike[str], doc: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename), strict JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
