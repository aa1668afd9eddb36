"""Every document the repository cites is in the repository (issue 15).

Scans the project's ``*.py``, ``*.md``, ``*.yaml``/``*.yml`` and ``*.sh`` files for

* references to design notes that live outside the repository (``shared/docs``, ``ops-notes``);
* ``<name>.md`` / ``docs/<name>.md`` references that resolve to no file (relative to the citing file, to the
  repository root, or to ``docs/``);
* a bare "rule N" that does not say which section it belongs to (write ``docs/domain.md §5 rule N``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".sh"}
SKIPPED_DIRS = {".git", ".venv", ".nox", "node_modules", "var", "reports", "staticfiles", "__pycache__"}
SKIPPED_DIRS |= {".pytest_cache", ".ruff_cache", ".hypothesis", "migrations"}
# Files the code writes, not documents it cites (the load suite's report next to report.json).
GENERATED = {"report.md"}
SELF = Path(__file__).resolve()  # this file spells the patterns it looks for

_OUTSIDE = re.compile(r"shared/docs|ops-notes")
_MD = re.compile(r"(?<![\w/.:-])((?:\.\./|\./)?(?:[\w.-]+/)*[\w-]+\.md)(?![\w/])")
_BARE_RULE = re.compile(r"(?<!§\d )(?<!§\d\d )\brule \d")


def project_files() -> list[Path]:
    """Source and documentation files of the project, skipping virtualenvs, caches and generated output."""
    found = []
    for directory, subdirectories, names in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED_DIRS]
        found += [Path(directory, name) for name in names if Path(name).suffix in SUFFIXES]
    return sorted(path for path in found if path != SELF)


def resolves(citing: Path, reference: str) -> bool:
    """True when ``reference`` names an existing file, read as the citing file, the root or ``docs/`` would."""
    if Path(reference).name in GENERATED:
        return True
    candidates = (citing.parent / reference, ROOT / reference, ROOT / "docs" / reference)
    # Inside the repository only: a clone may sit beside other folders (CI has a copy of shared/ next to it).
    return any(candidate.is_file() and candidate.resolve().is_relative_to(ROOT) for candidate in candidates)


def problems_in(path: Path, text: str) -> list[str]:
    """``path:line: problem`` for every reference in ``text`` (the content of ``path``) to a document the
    repository does not hold."""
    relative = path.relative_to(ROOT).as_posix()
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _OUTSIDE.finditer(line):
            found.append(f"{relative}:{number}: cites {match.group(0)!r}, which is outside the repository")
        for match in _MD.finditer(line):
            if "://" not in line[max(0, match.start() - 80) : match.start()] and not resolves(path, match.group(1)):
                found.append(f"{relative}:{number}: cites {match.group(1)}, which does not exist")
        if _BARE_RULE.search(line):
            found.append(f"{relative}:{number}: a bare 'rule N'; name the document and section (docs/domain.md §5)")
    return found


def test_the_scan_sees_the_project():
    names = {path.relative_to(ROOT).as_posix() for path in project_files()}
    assert {"README.md", "docs/domain.md", "docs/serving.md", "coffee_payment/orders/state.py"} <= names
    assert not any(name.startswith(".venv/") for name in names)


def test_every_cited_document_is_in_the_repository():
    problems = [
        problem
        for path in project_files()
        for problem in problems_in(path, path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("see ../shared/docs/ops-notes.md", 3),  # outside twice over, and the file does not resolve
        ("(ops-notes 'Django under ASGI')", 1),
        ("per docs/nowhere.md §3", 1),
        ("per missing.md", 1),
        ("per docs/domain.md §5 rule 4", 0),
        ("per domain.md §1", 0),  # a bare name resolves in docs/
        ("the make is sent (rule 4)", 1),
        ("https://example.com/spec.md", 0),
        ("writes report.md next to report.json", 0),
    ],
)
def test_problems_are_found(line, expected):
    citing = ROOT / "coffee_payment" / "probe.py"
    assert len(problems_in(citing, line)) == expected, problems_in(citing, line)
