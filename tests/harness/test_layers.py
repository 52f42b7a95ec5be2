"""The harness is layered by stage: a stage imports only the stages below it, and no module imports itself back.

Stages, bottom up: ``core`` (catalogue, foundations, errors, masking), ``target`` (reaching a
target), ``tokens`` (the run's tokens), ``checking`` (what the checks lean on), ``run`` (the
run's shared state), ``reporting`` (the verdict), ``plugin`` (wiring). Imports inside
functions count too: a lazy import is still a dependency.

The reference deployment (``sts_reference``) is held to the same: no module of it imports
itself back (its relative imports are followed, and an import only for type checking counts),
and it stands apart from the harness it is measured by: neither package imports the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sts_conformance"
STAGES = ("core", "target", "tokens", "checking", "run", "reporting", "plugin")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


#: relative imports found: the stage a module belongs to is read from absolute imports only
RELATIVE: list[str] = []


def _imports(path: Path) -> set[str]:
    """Every sts_conformance module this file imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("sts_conformance"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            RELATIVE.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sts_conformance"))
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules}


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_are_absolute() -> None:
    """Imports name their stage (``sts_conformance.tokens.ledger``), so a reader sees which layer they reach."""
    assert not RELATIVE, f"relative imports: {RELATIVE}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _stage(m)))
def test_a_stage_imports_only_stages_below_it(module: str) -> None:
    """Each module of a stage imports its own stage or lower ones, never one above."""
    own = STAGES.index(_stage(module) or "")
    above = sorted(m for m in GRAPH[module] if (s := _stage(m)) and STAGES.index(s) > own)
    assert not above, f"{module} ({STAGES[own]}) imports from a stage above it: {above}"


def test_no_module_is_part_of_an_import_circle() -> None:
    """Following imports from any module never leads back to it."""
    circles = []
    for start in GRAPH:
        seen: set[str] = set()
        todo = list(GRAPH[start])
        while todo:
            current = todo.pop()
            if current == start:
                circles.append(start)
                break
            if current not in seen:
                seen.add(current)
                todo.extend(GRAPH.get(current, ()))
    assert not circles, f"modules that import themselves back: {sorted(circles)}"


def test_every_harness_module_belongs_to_a_stage() -> None:
    """Nothing is left beside the stages but the package itself and the wiring."""
    loose = sorted(m for m in GRAPH if _stage(m) is None and m != "sts_conformance")
    assert not loose, f"modules outside every stage: {loose}"


REFERENCE = PACKAGE.parent / "sts_reference"
HARNESS = "sts_conformance"


def _reference_imports(path: Path) -> set[str]:
    """Every module of ``sts_reference`` (or of the harness) this file imports, relative or absolute, at any depth."""
    package = "sts_reference"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else ""
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in ("sts_reference", "sts_conformance")}


def _reference_module(path: Path) -> str:
    rel = path.relative_to(REFERENCE.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


REFERENCE_MODULES = {_reference_module(p) for p in REFERENCE.rglob("*.py")}
REFERENCE_GRAPH = {
    _reference_module(p): {m for m in _reference_imports(p) if m in REFERENCE_MODULES or m.startswith(HARNESS)}
    for p in sorted(REFERENCE.rglob("*.py"))
}


def _circles(graph: dict[str, set[str]]) -> list[str]:
    circles = []
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            current = todo.pop()
            if current == start:
                circles.append(start)
                break
            if current not in seen:
                seen.add(current)
                todo.extend(graph.get(current, ()))
    return sorted(circles)


def test_the_reference_has_no_import_circle() -> None:
    """Following the reference server's imports from any of its modules never leads back to it."""
    assert len(REFERENCE_GRAPH) > 10, "the reference package was not found"
    assert not (circles := _circles(REFERENCE_GRAPH)), f"reference modules that import themselves back: {circles}"


def test_the_reference_and_the_harness_stand_apart() -> None:
    """The reference stands in for the product: it never leans on the harness, nor the harness on it."""
    reference_to_harness = sorted(
        f"{module} -> {imported}"
        for module, imports in REFERENCE_GRAPH.items()
        for imported in imports
        if imported.startswith("sts_conformance")
    )
    assert not reference_to_harness, f"the reference imports the harness: {reference_to_harness}"
    harness_to_reference = sorted(
        f"{p.relative_to(PACKAGE.parent)}"
        for p in PACKAGE.rglob("*.py")
        if any(m.startswith("sts_reference") for m in _reference_imports(p) if not m.startswith("sts_conformance"))
    )
    assert not harness_to_reference, f"the harness imports the reference: {harness_to_reference}"
