"""The documentation is whole and self-contained: every link between the README and docs/ lands on a file
and a heading that exist, and nothing in the repository points at a document outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# The folders and files a clone holds (not .venv, data/ or test artefacts).
SOURCES = ["functions", "shared", "worker", "deploy", "hooks", "tests", "bench", "docs", ".ci"]
TOP_FILES = ["README.md", "Makefile", "pyproject.toml"]
TEXT_SUFFIXES = {".py", ".md", ".mjs", ".js", ".json", ".toml", ".sh", ".plist", ".service", ".timer", ".target",
                 ".conf", ".html", ".css", ".txt", ""}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# The reference files that sat beside the checkout while the project was written, by the names code used to cite.
OUTSIDE = re.compile(r"\b(?:EVENTS|ARCHITECTURE|STYLE|REFERENCE)\.md\b|\.\./shared/")


def github_anchor(title: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in document.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.*)", line)):
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)  # a code block's brackets are not links
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def repository_files() -> list[Path]:
    files = [REPO / name for name in TOP_FILES]
    for folder in SOURCES:
        files += [path for path in (REPO / folder).rglob("*") if path.is_file() and path.suffix in TEXT_SUFFIXES
                  and "node_modules" not in path.parts and "__pycache__" not in path.parts]
    return files


def test_the_readme_links_every_document_in_docs():
    readme_links = {target.partition("#")[0] for target in links(REPO / "README.md")}
    assert {f"docs/{path.name}" for path in DOCUMENTS[1:]} <= readme_links


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_relative_link_lands_on_a_file_and_heading_that_exist(document: Path):
    broken = []
    for target in links(document):
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    assert broken == []


def test_nothing_cites_a_document_outside_the_repository():
    citing = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
              for path in repository_files()
              for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
              if OUTSIDE.search(line)]
    assert citing == []
