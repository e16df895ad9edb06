"""Allocation rows are reached only through the randomization app and the blinding gate."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ["imrtrial", "randomization", "assessments", "fidelity", "exports"]
# Modules outside randomization/ allowed to import allocation models, and why.
ALLOWED = {
    "tests/factories.py",  # builds allocations for tests of who may see them
    "tests/imrtrial/test_audit.py",  # proves allocation rows cannot be deleted
}
IMPORT = re.compile(
    r"^\s*(from\s+randomization\.models\s+import|import\s+randomization\.models)", re.M
)


def python_files():
    for app in APPS + ["bench"]:
        yield from (ROOT / app).rglob("*.py")
    yield from (ROOT / "tests").rglob("*.py")


def test_allocation_models_are_imported_only_where_allowed():
    offenders = []
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        if (
            rel.startswith("randomization/")
            or rel in ALLOWED
            or rel.startswith("tests/randomization/")
        ):
            continue
        if IMPORT.search(path.read_text()):
            offenders.append(rel)
    assert offenders == []


def test_core_app_depends_on_no_other_app():
    pattern = re.compile(
        r"^\s*(from|import)\s+(randomization|assessments|fidelity|exports)\b", re.M
    )
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "imrtrial").rglob("*.py")
        if pattern.search(p.read_text())
    ]
    assert offenders == []
