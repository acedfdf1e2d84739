"""The import rules that keep the rooms apart, read from the source with `ast`:

- a function (`functions/<name>/`) imports from `shared/` and from itself, never another function,
  `worker/` or `deploy/` (only the mount in `deploy/` sees every function);
- `shared/` imports from itself only: no function, no `worker/`, no `deploy/`;
- `worker/` imports from `shared/` and itself, never a function or `deploy/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = ("functions", "shared", "worker", "deploy", "tests", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports (relative imports resolved), with its line."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from functions import events` imports functions.events: the name may be a module
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def project_imports(room: str) -> list[tuple[str, int, str]]:
    return [(module_name(path), line, imported)
            for path in sorted((REPO / room).rglob("*.py"))
            for line, imported in imported_modules(path)
            if imported.split(".")[0] in PROJECT]


def owner(module: str) -> str:
    """The room a module belongs to: `functions.<name>` for a function, else its top-level package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "functions" and len(parts) > 1 else parts[0]


def test_the_rules_see_every_room():
    assert {owner(module) for module, _, _ in project_imports("functions")} >= {
        "functions.events", "functions.sse", "functions.agents", "functions.auth", "functions.linear_sync",
        "functions.linear_webhook", "functions.dashboard"}
    assert project_imports("shared") and project_imports("worker")


def test_a_function_imports_only_shared_and_itself():
    crossing = [f"{module}:{line} imports {imported}" for module, line, imported in project_imports("functions")
                if owner(imported) not in ("shared", owner(module))]
    assert crossing == [], "a function may import only shared/ and its own modules; deploy/ composes them"


@pytest.mark.parametrize("room, allowed", [("shared", {"shared"}), ("worker", {"shared", "worker"})])
def test_shared_and_the_worker_import_no_function(room, allowed):
    crossing = [f"{module}:{line} imports {imported}" for module, line, imported in project_imports(room)
                if imported.split(".")[0] not in allowed]
    assert crossing == []
