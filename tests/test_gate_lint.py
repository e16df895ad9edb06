"""Nothing goes around the gate (imrtrial.access), checked on the source the way Zulip lints its
access functions: a rule reached through one function is only safe if nothing can reach the
same data another way.

- Permission names are `Perm` members. A codename typed as a string would not fail at import
  (a typo silently denies, or in an `or` grants): string literals equal to a codename are
  allowed only where the names are defined.
- Allocation-revealing models (the allocation and its sequence; IMR groups, sessions,
  attendance, fidelity) are imported only by their own app and by the modules listed here, each
  with the reason it may.
"""

import ast
from pathlib import Path

from imrtrial.models import Perm

ROOT = Path(__file__).resolve().parents[1]
APPS = [
    "imrtrial",
    "randomization",
    "assessments",
    "fidelity",
    "safety",
    "signoff",
    "monitoring",
    "registers",
    "exports",
    "quality",
    "api",
    "staff",
    "selfreport",
    "demo",
]

# Where permission codenames may be string literals, and why.
PERMISSION_NAMES_ALLOWED = {
    "imrtrial/models.py",  # where Perm is defined
}

# Allocation-revealing models, by the module that defines them.
REVEALING = {
    "randomization.models": {"Allocation", "Stratum", "ListEntry", "HistoricalAllocation"},
    "fidelity.models": {
        "ImrGroup",
        "GroupMembership",
        "Session",
        "Attendance",
        "FollowUpCall",
        "FidelityAssessment",
        "FidelityRating",
        "AttendanceReminder",
    },
    # An event's relatedness to the intervention, and its words, tell the arm.
    "safety.models": {"SafetyEvent", "HistoricalSafetyEvent"},
}
# Modules outside the owning app allowed to import them, and why.
REVEALING_ALLOWED = {
    "exports/released.py",  # the key and the process dataset: key holder, after lock
    "exports/reports.py",  # fidelity per group and the by-arm CONSORT: unblinded readers only
    "tests/factories.py",  # builds allocations for tests of who may see them
    "tests/assessments/test_dashboard.py",  # swaps two arms: the dashboard does not change
    "tests/assessments/test_response_report.py",  # swaps the arms: the report does not change
    "tests/quality/test_pages.py",  # swaps two arms: the rules page does not change
    "tests/registers/test_pages.py",  # swaps two arms: the register pages do not change
    "tests/registers/test_export_and_config.py",  # swaps two arms: nor do their export files
    "tests/imrtrial/test_audit.py",  # proves allocation rows cannot be deleted
    "tests/faults/scenario_redis_outage.py",  # attendance reminders survive a Redis outage
    "tests/browser/test_attendance.py",  # a facilitator logs attendance in a browser
    "tests/assessments/test_reminders_gate.py",  # no blinded recipient's digest names a group
    "tests/imrtrial/test_outbox.py",  # every outbox's lines pass the send-time check
    "demo/seed.py",  # the demo's groups, sessions and ratings; its clock moves allocation dates
    "tests/demo/test_seed.py",  # the demo holds groups, sessions and a fidelity consensus
    "tests/browser/test_demo_story.py",  # demo users log a session and agree a fidelity rating
    "bench/randomization.py",  # counts anomalies in the allocations a benchmark made
    "bench/export.py",  # writes a synthetic trial's allocations in bulk
}


def python_files(folders):
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def permission_literals(source):
    """[(line, text)] of string literals naming a permission ("x" or "imrtrial.x")."""
    names = {p.value for p in Perm}
    tree = ast.parse(source)
    # A URL's name ("randomize") is not a permission, whatever it spells.
    url_names = {
        id(k.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg == "name"
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in url_names:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value.removeprefix("imrtrial.")
            if value in names:
                found.append((node.lineno, node.value))
    return found


def revealing_imports(source):
    """[(line, model)] of allocation-revealing models imported by the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in REVEALING:
            for alias in node.names:
                if alias.name in REVEALING[node.module]:
                    found.append((node.lineno, alias.name))
                elif alias.name == "*":
                    found.append((node.lineno, f"{node.module}.*"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name in REVEALING]
    return found


def test_permission_names_are_never_string_literals():
    offenders = []
    for path in python_files([*APPS, "bench"]):
        rel = path.relative_to(ROOT).as_posix()
        if rel in PERMISSION_NAMES_ALLOWED:
            continue
        offenders += [
            f"{rel}:{line}: {text!r}" for line, text in permission_literals(path.read_text())
        ]
    assert offenders == [], "Name permissions as imrtrial.models.Perm members:\n" + "\n".join(
        offenders
    )


def test_templates_do_not_name_permissions():
    """Templates get what the view asked the gate; `perms.imrtrial.x` would be a second rule."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "templates").rglob("*.html")
        if "perms.imrtrial" in path.read_text()
    ]
    assert offenders == []


def _owner(name):
    """The app that defines the revealing model (or module) `name`."""
    for module, names in REVEALING.items():
        if name in names or name in (module, f"{module}.*"):
            return module.split(".")[0]
    raise LookupError(name)


def test_allocation_revealing_models_are_imported_only_where_allowed():
    offenders = []
    for path in python_files([*APPS, "bench", "tests"]):
        rel = path.relative_to(ROOT).as_posix()
        if rel in REVEALING_ALLOWED:
            continue
        for line, name in revealing_imports(path.read_text()):
            owner = _owner(name)
            if rel.startswith((f"{owner}/", f"tests/{owner}/")):
                continue
            offenders.append(f"{rel}:{line}: {name}")
    assert offenders == []


def test_the_lint_catches_a_planted_permission_string_and_import():
    """The checks can fail: each finds what is planted in a source it is shown."""
    planted = (
        "from randomization.models import Allocation\n"
        "from fidelity.models import Attendance as A\n"
        "import fidelity.models\n"
        "def f(user, trial):\n"
        "    return access.has(user, 'view_unblinded', trial)"
        " or user.has_perm('imrtrial.randomize')\n"
    )
    assert [t for _, t in permission_literals(planted)] == [
        "view_unblinded",
        "imrtrial.randomize",
    ]
    assert [m for _, m in revealing_imports(planted)] == [
        "Allocation",
        "Attendance",
        "fidelity.models",
    ]
    assert permission_literals("x = 'view_unblinded_somewhere'\ny = Perm.RANDOMIZE\n") == []
    assert permission_literals("path('x/', view, name='randomize')\n") == []
