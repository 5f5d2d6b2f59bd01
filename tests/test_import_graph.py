"""The import graph: no cycle between files anywhere in the package folders, none between
top-level folders, and spec/ at the bottom (it imports no other folder).

Every ``import focalspec...`` / ``from focalspec... import`` is an edge, the lazy ones inside
functions included: a cycle through a lazy import still means two files that cannot be read,
tested or moved apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package -> folder (pyproject.toml's package-dir); "focalspec" itself is cli/
FOLDERS = {
    "focalspec.spec": "spec",
    "focalspec.reference": "reference",
    "focalspec.certified": "certified",
    "focalspec.adapters": "adapters",
    "focalspec.kernels": "kernels",
    "focalspec.conformance": "conformance",
    "focalspec.benchmarks": "benchmarks",
    "focalspec.reports": "reports",
    "focalspec": "cli",
}
# Cycles allowed: none.
KNOWN_FOLDER_CYCLES: set[tuple[str, ...]] = set()
KNOWN_FILE_CYCLES: set[tuple[str, ...]] = set()


def module_file(module: str) -> Path | None:
    """The file of a focalspec module (a package's __init__.py), None when there is none."""
    for package, folder in FOLDERS.items():
        if module == package or module.startswith(package + "."):
            rest = module[len(package) :].lstrip(".").split(".") if module != package else []
            base = ROOT / folder / Path(*rest) if rest else ROOT / folder
            if base.with_suffix(".py").is_file():
                return base.with_suffix(".py")
            if (base / "__init__.py").is_file():
                return base / "__init__.py"
            return None
    return None


def imports_of(path: Path) -> set[Path]:
    """The focalspec files ``path`` imports (``from pkg import mod`` resolves to mod's file, and pkg's)."""
    out: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        for name in names:
            if not name.startswith("focalspec"):
                continue
            target = module_file(name)
            if target is not None and target != path:
                out.add(target)
    return out


def graph(files: list[Path]) -> dict[Path, set[Path]]:
    return {f: imports_of(f) for f in files}


def cycles(edges: dict[Path, set[Path]]) -> list[list[Path]]:
    """One cycle per strongly connected component of more than one node (Tarjan)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on: set[Path] = set()
    found: list[list[Path]] = []

    def visit(v: Path) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def test_the_graph_sees_real_edges() -> None:
    """The parser finds a known import, lazy ones included (or the cycle test could pass vacuously)."""
    callable_adapter = ROOT / "adapters" / "callable_adapter.py"
    assert ROOT / "adapters" / "backends" / "__init__.py" in imports_of(callable_adapter)
    assert ROOT / "adapters" / "callable_convention.py" in imports_of(callable_adapter)
    made = {Path("a"): {Path("b")}, Path("b"): {Path("a")}, Path("c"): set()}
    assert cycles(made) == [[Path("a"), Path("b")]]


def package_files() -> list[Path]:
    """Every .py file of the package folders (a virtual environment inside one excluded)."""
    return sorted(
        f for folder in dict.fromkeys(FOLDERS.values()) for f in (ROOT / folder).rglob("*.py")
        if not any(part.startswith(".") for part in f.relative_to(ROOT).parts)
    )  # fmt: skip


def test_no_cycle_between_files() -> None:
    """No two files of cli, spec, reference, adapters, kernels, conformance, benchmarks, reports
    import each other, directly or around a loop (lazy imports included)."""
    found = {tuple(map(rel, c)) for c in cycles(graph(package_files()))}
    assert found == KNOWN_FILE_CYCLES, "import cycles between files: " + "; ".join(
        " <-> ".join(c) for c in sorted(found)
    )


def folder_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {folder: set() for folder in FOLDERS.values()}
    for folder in FOLDERS.values():
        for f in (ROOT / folder).rglob("*.py"):
            for target in imports_of(f):
                other = target.relative_to(ROOT).parts[0]
                if other != folder:
                    edges[folder].add(other)
    return edges


def test_no_cycle_between_top_level_folders() -> None:
    edges = folder_edges()
    as_paths = {Path(k): {Path(v) for v in vs} for k, vs in edges.items()}
    found = {tuple(str(p) for p in c) for c in cycles(as_paths)}
    assert found == KNOWN_FOLDER_CYCLES, f"import cycles between folders: {sorted(found)}; edges {edges}"


def test_spec_is_at_the_bottom() -> None:
    """spec/ is what every other folder is checked against: it imports none of them."""
    edges = folder_edges()
    assert not edges["spec"], f"spec/ imports {sorted(edges['spec'])}"


def test_no_cycle_between_the_rooms_of_conformance() -> None:
    """conformance/ is rooms -- the suite, the gate, the diagnosis -- that import one way only: the gate
    drives the suite, the suite asks the diagnosis; the diagnosis reads neither (what it needs of an
    adapter's claims lives in adapters/, the required tiers in spec/)."""
    base = ROOT / "conformance"
    rooms = sorted(p.name for p in base.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    edges: dict[Path, set[Path]] = {Path(r): set() for r in rooms}
    for room in rooms:
        for f in (base / room).rglob("*.py"):
            for target in imports_of(f):
                parts = target.relative_to(ROOT).parts
                if parts[0] == "conformance" and len(parts) > 2 and parts[1] != room:
                    edges[Path(room)].add(Path(parts[1]))
    assert {"suite", "gate", "diagnosis"} <= set(rooms), rooms
    found = [tuple(str(p) for p in c) for c in cycles(edges)]
    assert not found, f"import cycles between the rooms of conformance/: {found}; edges {edges}"
