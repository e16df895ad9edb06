"""Allocation rows are reached only through the randomization app and the blinding gate, and the
apps depend on each other in one direction."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ["imrtrial", "randomization", "assessments", "fidelity", "exports", "demo"]
ALLOCATION_MODELS = {"Allocation", "Stratum", "ListEntry", "HistoricalAllocation"}
# Modules outside randomization/ allowed to import allocation models, and why.
ALLOWED = {
    "tests/factories.py",  # builds allocations for tests of who may see them
    "tests/imrtrial/test_audit.py",  # proves allocation rows cannot be deleted
    "bench/randomization.py",  # counts anomalies in the allocations a benchmark made
    "bench/export.py",  # writes a synthetic trial's allocations in bulk
}
# Each app may import only the apps before it in this order.
ORDER = ["imrtrial", "randomization", "assessments", "fidelity", "exports", "demo"]


def python_files():
    for folder in APPS + ["bench", "tests"]:
        yield from (ROOT / folder).rglob("*.py")


def imports(path):
    """(module, name) for every import in the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ""


def test_allocation_models_are_imported_only_where_allowed():
    offenders = []
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("randomization/", "tests/randomization/")) or rel in ALLOWED:
            continue
        for module, name in imports(path):
            if module == "randomization.models" and (name in ALLOCATION_MODELS or name == "*"):
                offenders.append(f"{rel}: {name}")
    assert offenders == []


def test_apps_depend_on_earlier_apps_only():
    offenders = []
    for i, app in enumerate(ORDER):
        later = set(ORDER[i + 1 :])
        for path in (ROOT / app).rglob("*.py"):
            for module, _ in imports(path):
                if module.split(".")[0] in later:
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
