"""Load the conformance and benchmark JSON files, check their schema, and merge them.

The suite runs once per tox environment (torch, jax, tensorflow, thirdparty) and writes
one results file each; the report reads them together.  Adapters are merged by name
(an adapter usable in any environment is usable), tests are keyed by (env, nodeid) so the
same test id from two environments never overwrites the other, and a file read twice for
the same environment keeps the later run.  Anything unreadable or of an unknown or newer
schema is a one-line ``SpecError`` naming the file: a report built from half the data
would look like agreement.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from focalspec.spec.variant import SpecError

RESULTS_SCHEMA = "focalspec-results"
BENCH_SCHEMA = "focalspec-bench"
MERGED_SCHEMA = "focalspec-merged"
# newest schema_version this code understands, per schema name
SUPPORTED: dict[str, int] = {RESULTS_SCHEMA: 1, BENCH_SCHEMA: 1, MERGED_SCHEMA: 1}

OUTCOMES: tuple[str, ...] = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
FAMILIES: tuple[str, ...] = ("golden", "edge", "random", "shape", "invariant", "contract", "sweep")


@dataclass
class Loaded:
    """One input file: where it came from, the tox environment it speaks for, its content."""

    path: Path
    env: str
    doc: dict[str, Any]


@dataclass
class Inputs:
    """Everything found on the command line, sorted by kind."""

    results: list[Loaded] = field(default_factory=list)
    bench: list[Loaded] = field(default_factory=list)
    junit: list[Path] = field(default_factory=list)
    passed_over: list[Path] = field(default_factory=list)  # found in a directory, not focalspec's


# ----------------------------------------------------------------------------- loading


def to_float(v: Any) -> float | None:
    """A number from JSON: floats, ints, Python's Infinity/NaN, or the strings "inf"/"nan"."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` with its schema checked; ``SpecError`` (one line) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise SpecError(f"{path}: expected a JSON object at top level, got {type(doc).__name__}")
    check_schema(doc, str(path))
    return doc


def check_schema(doc: dict[str, Any], where: str) -> str:
    """The schema name of ``doc``; refuses unknown names and versions newer than this code."""
    name = doc.get("schema")
    if name not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise SpecError(f"{where}: unknown schema {name!r}; expected one of {known}")
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise SpecError(f"{where}: schema_version must be an integer, got {version!r}")
    if version > SUPPORTED[name]:
        raise SpecError(
            f"{where}: {name} schema_version {version} is newer than this focalspec reads "
            f"({SUPPORTED[name]}); upgrade focalspec"
        )
    required = {RESULTS_SCHEMA: ("adapters", "tests"), BENCH_SCHEMA: ("results",), MERGED_SCHEMA: ("results",)}[name]
    for key in required:
        if key not in doc:
            raise SpecError(f"{where}: {name} file has no {key!r}")
    if name == RESULTS_SCHEMA:
        _check_results(doc, where)
    elif name == BENCH_SCHEMA and not isinstance(doc["results"], list):
        raise SpecError(f"{where}: 'results' must be a list")
    return name


def _check_results(doc: dict[str, Any], where: str) -> None:
    if not isinstance(doc["tests"], list) or not isinstance(doc["adapters"], list):
        raise SpecError(f"{where}: 'tests' and 'adapters' must be lists")
    for i, t in enumerate(doc["tests"]):
        if not isinstance(t, dict) or not t.get("nodeid"):
            raise SpecError(f"{where}: tests[{i}] has no nodeid")
        if t.get("outcome") not in OUTCOMES:
            raise SpecError(f"{where}: test {t['nodeid']} has unknown outcome {t.get('outcome')!r}")
    for i, a in enumerate(doc["adapters"]):
        if not isinstance(a, dict) or not a.get("name"):
            raise SpecError(f"{where}: adapters[{i}] has no name")


def env_of(doc: dict[str, Any], path: Path) -> str:
    """The tox environment a file speaks for: ``run.env`` when it is a name (or holds
    TOX_ENV_NAME), else the file's stem without a ``results-``/``bench-`` prefix."""
    env = (doc.get("run") or {}).get("env")
    if isinstance(env, str) and env:
        return env
    if isinstance(env, dict):
        for key in ("TOX_ENV_NAME", "tox_env", "name"):
            if isinstance(env.get(key), str) and env[key]:
                return env[key]
    stem = path.stem
    for prefix in ("results-", "results_", "bench-", "bench_"):
        if stem.startswith(prefix) and len(stem) > len(prefix):
            return stem[len(prefix) :]
    if stem in ("results", "bench", "merged") and path.parent.name:  # results/torch/results.json
        return f"{path.parent.name}/{stem}"
    return stem


def _expand(paths: Iterable[str]) -> list[tuple[Path, bool]]:
    """(file, named explicitly) for every file named or found under a named directory."""
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(
                (q, False)
                for q in sorted(p.rglob("*"))
                if q.is_file() and q.suffix in (".json", ".xml") and not any(x.startswith(".") for x in q.parts[-3:])
            )
        elif p.is_file():
            found.append((p, True))
        else:
            raise SpecError(f"no such file or directory: {raw}")
    return found


def _foreign(path: Path) -> bool:
    """True for a file found in a directory that is no focalspec document at all (no
    "schema" key: a findings list, a tool's cache); such files are passed over, while one
    that claims an unknown or newer focalspec schema is still refused."""
    if path.suffix == ".xml":
        try:
            return ET.parse(path).getroot().tag not in ("testsuite", "testsuites")
        except (ET.ParseError, OSError):
            return True
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # let read_json report it
    return not isinstance(doc, dict) or "schema" not in doc


def collect(results: Sequence[str], bench: Sequence[str] = ()) -> Inputs:
    """Read every file named (directories are searched for *.json and JUnit *.xml) and sort
    them by schema, whatever option named them.  A merged file of an earlier report
    contributes its merged results and bench again."""
    out = Inputs()
    seen: set[Path] = set()
    for path, explicit in _expand([*results, *bench]):
        resolved = path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        if not explicit and _foreign(path):
            out.passed_over.append(path)
            continue
        if path.suffix == ".xml":
            out.junit.append(path)
            continue
        doc = read_json(path)
        name = doc["schema"]
        if name == MERGED_SCHEMA:
            for sub, target in ((doc.get("results"), out.results), (doc.get("bench"), out.bench)):
                if sub:
                    check_schema(sub, f"{path} (merged)")
                    for part in sub.get("merged_from") or [None]:
                        env = part["env"] if part else env_of(sub, path)
                        target.append(Loaded(path, env, _only_env(sub, env) if part else sub))
            continue
        (out.results if name == RESULTS_SCHEMA else out.bench).append(Loaded(path, env_of(doc, path), doc))
    if not out.results and not out.bench:
        raise SpecError("no focalspec results or bench files found in " + ", ".join([*results, *bench]))
    return out


def _only_env(doc: dict[str, Any], env: str) -> dict[str, Any]:
    """The part of a merged document that came from one environment."""
    part = dict(doc)
    for key in ("tests", "sweeps", "results", "minimal"):
        if isinstance(doc.get(key), list):
            part[key] = [r for r in doc[key] if r.get("env", env) == env]
    src = next((m for m in doc.get("merged_from", []) if m.get("env") == env), {})
    part["suite"] = src.get("suite", doc.get("suite"))
    part["run"] = src.get("run", doc.get("run"))
    return part


# ----------------------------------------------------------------------------- merging


def _later(a: Loaded, b: Loaded) -> bool:
    """True when b's run finished after a's (unknown times keep command-line order)."""
    fa = str((a.doc.get("run") or {}).get("finished") or "")
    fb = str((b.doc.get("run") or {}).get("finished") or "")
    return not (fa and fb) or fb >= fa


def merge_results(files: Sequence[Loaded]) -> dict[str, Any]:
    """One focalspec-results document from many; every test and sweep gains an ``env``."""
    by_env: dict[str, Loaded] = {}
    tests: dict[tuple[str, str], dict[str, Any]] = {}
    sweeps: dict[tuple[Any, ...], dict[str, Any]] = {}
    minimal: list[dict[str, Any]] = []
    adapters: dict[str, dict[str, Any]] = {}
    stale: dict[str, list[Any]] = {"xfails": [], "skips": []}
    replaced = 0
    ordered = sorted(files, key=lambda f: str((f.doc.get("run") or {}).get("finished") or ""))
    for f in ordered:
        if f.env in by_env and not _later(by_env[f.env], f):
            continue
        by_env[f.env] = f
    renamed = version_names([f for f in files if by_env[f.env] is f])
    for f in files:  # command-line order decides the order of rows and sections
        newest = by_env[f.env] is f
        names = renamed.get(f.env, {})
        for t in f.doc["tests"]:
            key = (f.env, t["nodeid"])
            if key in tests:
                replaced += 1
                if not newest:
                    continue
            tests[key] = {**t, "env": f.env, "adapter": names.get(t.get("adapter"), t.get("adapter"))}
        for s in f.doc.get("sweeps") or []:
            s = {**s, "adapter": names.get(s.get("adapter"), s.get("adapter"))}
            skey = (f.env, *(str(s.get(k)) for k in ("adapter", "device", "dtype", "mode", "gamma", "target", "alpha")))
            if skey not in sweeps or newest:
                sweeps[skey] = {**s, "env": f.env}
        if newest:
            minimal += [{**m, "env": f.env, "adapter": names.get(m.get("adapter"), m.get("adapter"))}
                        for m in f.doc.get("minimal") or []]  # fmt: skip
        for a in f.doc["adapters"]:
            if a["name"] in names:
                a = {**a, "name": names[a["name"]], "base_name": a["name"]}
            _merge_adapter(adapters, a, f.env)
        for kind in ("xfails", "skips"):
            for item in (f.doc.get("stale") or {}).get(kind) or []:
                if item not in stale[kind]:
                    stale[kind].append(item)
    first = files[0].doc if files else {}
    return {
        "schema": RESULTS_SCHEMA,
        "schema_version": SUPPORTED[RESULTS_SCHEMA],
        "suite": first.get("suite") or {},
        "run": _run_span([f.doc.get("run") or {} for f in by_env.values()]),
        "merged_from": [
            {"file": str(f.path), "env": f.env, "suite": f.doc.get("suite") or {}, "run": f.doc.get("run") or {}}
            for f in files
            if by_env[f.env] is f
        ],
        "replaced_tests": replaced,
        "adapters": list(adapters.values()),
        "tests": list(tests.values()),
        "sweeps": list(sweeps.values()),
        "minimal": minimal,
        "stale": stale,
    }


def version_names(files: Sequence[Loaded]) -> dict[str, dict[str, str]]:
    """Per env, the adapters to rename 'name (framework version)': those that ran in several
    environments under different framework versions (a CI matrix over torch releases, say),
    whose results must stay apart instead of mixing in one row."""
    versions: dict[str, dict[str, str]] = {}
    for f in files:
        for a in f.doc["adapters"]:
            if not a.get("unavailable") and a.get("framework_version"):
                versions.setdefault(a["name"], {})[f.env] = str(a["framework_version"])
    out: dict[str, dict[str, str]] = {}
    for f in files:
        for a in f.doc["adapters"]:
            seen = versions.get(a["name"], {})
            if len(set(seen.values())) > 1 and f.env in seen:
                label = f"{a.get('framework') or 'framework'} {seen[f.env]}"
                out.setdefault(f.env, {})[a["name"]] = f"{a['name']} ({label})"
    return out


def _merge_adapter(adapters: dict[str, dict[str, Any]], a: dict[str, Any], env: str) -> None:
    name = a["name"]
    if name not in adapters:
        adapters[name] = {**a, "envs": [env], "unavailable_in": {}}
        for key in ("devices", "dtypes", "modes"):
            adapters[name][key] = list(a.get(key) or [])
        if a.get("unavailable"):
            adapters[name]["unavailable_in"] = {env: a["unavailable"]}
        return
    m = adapters[name]
    if env not in m["envs"]:
        m["envs"].append(env)
    for key in ("devices", "dtypes", "modes"):
        for v in a.get(key) or []:
            if v not in m[key]:
                m[key].append(v)
    for key in ("implementation", "framework", "framework_version", "convention"):
        if not m.get(key) and a.get(key):
            m[key] = a[key]
    if a.get("unavailable"):
        m["unavailable_in"][env] = a["unavailable"]
    elif m.get("unavailable"):  # usable somewhere: usable
        m["unavailable"] = None
        m["framework_version"] = a.get("framework_version") or m.get("framework_version")
    ran = dict(m.get("ran") or {})
    ran.update(a.get("ran") or {})
    m["ran"] = ran


def _run_span(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A run record spanning several: first start, last finish, distinct hosts and commands."""

    def distinct(key: str) -> list[Any]:
        out: list[Any] = []
        for r in runs:
            if r.get(key) not in (None, "") and r[key] not in out:
                out.append(r[key])
        return out

    starts = sorted(str(r["started"]) for r in runs if r.get("started"))
    ends = sorted(str(r["finished"]) for r in runs if r.get("finished"))
    return {
        "started": starts[0] if starts else None,
        "finished": ends[-1] if ends else None,
        "host": ", ".join(map(str, distinct("host"))) or None,
        "python": ", ".join(map(str, distinct("python"))) or None,
        "platform": ", ".join(map(str, distinct("platform"))) or None,
        "command": distinct("command"),
    }


def merge_bench(files: Sequence[Loaded]) -> dict[str, Any] | None:
    """One focalspec-bench document from many (rows gain ``env``); None when there are none."""
    if not files:
        return None
    results: list[dict[str, Any]] = []
    ceilings: list[dict[str, Any]] = []
    for f in files:
        results.extend({**r, "env": f.env} for r in f.doc.get("results") or [])
        for c in f.doc.get("ceilings") or []:
            if c not in ceilings:
                ceilings.append(c)
    return {
        "schema": BENCH_SCHEMA,
        "schema_version": SUPPORTED[BENCH_SCHEMA],
        "suite": files[0].doc.get("suite") or {},
        "run": _run_span([f.doc.get("run") or {} for f in files]),
        "merged_from": [
            {"file": str(f.path), "env": f.env, "suite": f.doc.get("suite") or {}, "run": f.doc.get("run") or {}}
            for f in files
        ],
        "ceilings": ceilings,
        "results": results,
    }


def finite_or_none(v: Any) -> float | None:
    """A finite float or None (for sorting and plotting)."""
    f = to_float(v)
    return f if f is not None and math.isfinite(f) else None
