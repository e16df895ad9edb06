"""The apps depend on each other in one direction, and no module imports itself through others.
(Who may import allocation-revealing models: tests/test_gate_lint.py.)"""

import ast
from pathlib import Path

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
# Each app may import only the apps before it in this order.
ORDER = APPS


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


def test_apps_depend_on_earlier_apps_only():
    offenders = []
    for i, app in enumerate(ORDER):
        later = set(ORDER[i + 1 :])
        for path in (ROOT / app).rglob("*.py"):
            for module, _ in imports(path):
                if module.split(".")[0] in later:
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules():
    return {module_name(path): path for app in APPS for path in (ROOT / app).rglob("*.py")}


def imported_modules(name, path, modules):
    """The project modules the module `name` imports, at the top or inside a function alike:
    a late import is still a dependency, only hidden until the function runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name inside a module, or not ours
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def find_cycle(graph):
    """One import cycle of the graph {module: modules it imports} as [a, b, ..., a], or None."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == "open":
                return [*path[path.index(following) :], following]
            if following not in state and (cycle := visit(following)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_project_module_imports_itself_through_others():
    """E.g. services queue a task by name rather than import the tasks module that imports them
    (exports.services, randomization.services)."""
    modules = project_modules()
    graph = {name: set(imported_modules(name, path, modules)) for name, path in modules.items()}
    assert graph["exports.tasks"] == {"exports.services"}  # the graph sees relative imports
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)
