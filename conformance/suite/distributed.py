"""The conformance suite under pytest-xdist (``-n auto``): who runs what, and how every
worker's results reach the one results JSON the controller writes.

* Scheduling: checks are sent to workers in groups of one (adapter, device, dtype, mode),
  so each worker compiles, warms up and sweeps its own combinations once, and no two
  workers compute the same sweep.
* Results: a worker attaches each check's entry to its test report (xdist carries a
  report's attributes to the controller), and at its end puts the adapters it ran, its
  sweeps and its xfail/skip-list matches into ``workeroutput``.  Only the controller writes
  the JSON and JUnit; workers never touch those paths.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

ENTRY_ATTR = "focalspec_entry"
OUTPUT_KEY = "focalspec"

_DEVICES = "cpu|cuda"
_DTYPES = "float64|float32|float16|bfloat16"


def is_worker(config: pytest.Config) -> bool:
    """This process is an xdist worker (it runs checks; it does not write results)."""
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """This process is the xdist controller (it collects nothing and runs nothing)."""
    return not is_worker(config) and config.pluginmanager.has_plugin("dsession")


def combination_of(nodeid: str) -> str | None:
    """'adapter-device-dtype' of a conformance test's node id plus its mode, or None for other tests."""
    m = _COMBO.search(nodeid)
    return m.group("combo") if m else None


def _modes() -> str:
    from focalspec.adapters.base import MODES

    return "|".join(re.escape(m) for m in sorted(MODES, key=len, reverse=True))


_COMBO = re.compile(rf"::test_\w+\[(?P<combo>.+?-(?:{_DEVICES})-(?:{_DTYPES})-(?:{_modes()}))-")


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """LoadScope scheduling with one scope per (adapter, device, dtype, mode)."""
    from xdist.scheduler import LoadScopeScheduling

    class ByCombination(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return combination_of(nodeid) or nodeid.rsplit("::", 1)[0]

    return ByCombination(config, log)


# ----------------------------------------------------------------------------- results


def worker_output(
    adapters: list[dict[str, Any]],
    sweeps: list[dict[str, Any]],
    lists: dict[str, list[Any]],
    minimal: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What one worker hands the controller at its end (plain data: execnet carries it).
    ``lists``: its xfail and skip-file entries, with the node ids each matched and xpassed."""
    matched = {
        kind: [{"at": f"{e.file}:{e.line}", "matched": list(e.matched), "xpassed": list(e.xpassed)} for e in entries]
        for kind, entries in lists.items()
    }
    return plain({"adapters": adapters, "sweeps": sweeps, "lists": matched, "minimal": list(minimal or [])})


def plain(data: Any) -> Any:
    """``data`` as JSON types only (execnet refuses e.g. torch's TorchVersion, a str subclass)."""
    from focalspec.conformance.suite.results import jsonable

    return json.loads(json.dumps(jsonable(data), allow_nan=False))


class Collected:
    """The controller's merge of its workers' outputs."""

    def __init__(self) -> None:
        self.adapters: dict[str, dict[str, Any]] = {}
        self.sweeps: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.minimal: list[dict[str, Any]] = []

    def add(self, output: dict[str, Any] | None, lists: dict[str, list[Any]]) -> None:
        """Merge one worker's output; its list matches go onto the controller's own ``lists`` entries."""
        if not output:
            return
        for a in output.get("adapters", []):
            have = self.adapters.get(a["name"])
            if have is None:
                self.adapters[a["name"]] = dict(a)
            elif not have.get("ran") and a.get("ran"):
                have["ran"] = a["ran"]
        for s in output.get("sweeps", []):
            key = tuple(str(s.get(k)) for k in ("adapter", "device", "dtype", "mode", "gamma", "target"))
            self.sweeps.setdefault(key, s)
        self.minimal += output.get("minimal", [])
        for kind, entries in lists.items():
            by_place = {f"{e.file}:{e.line}": e for e in entries}
            for got in output.get("lists", {}).get(kind, []):
                e = by_place.get(got["at"])
                if e is not None:
                    e.matched.extend(got["matched"])
                    e.xpassed.extend(got["xpassed"])
