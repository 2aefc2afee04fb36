"""The packages of neox_metala import each other in one direction only (ops at the bottom, the entry points at
the top), counting imports inside functions too; and no file grows past the house limit."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neox_metala"
MAX_LINES = 400


def _unit(module: str) -> str | None:
    """neox_metala.config.args -> "config" (a subpackage or a top-level module); None outside the package."""
    parts = module.split(".")
    return parts[1] if parts[0] == "neox_metala" and len(parts) > 1 else None


def _imported_modules(path: Path) -> set[str]:
    module_parts = ["neox_metala", *path.relative_to(PACKAGE).with_suffix("").parts]
    if module_parts[-1] == "__init__":
        module_parts.pop()
    package_parts = module_parts if path.name == "__init__.py" else module_parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package_parts[: len(package_parts) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import ops` names a package
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "hf_model" in path.parts:  # shipped with an export; imports only its own siblings
            continue
        source = _unit("neox_metala." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if source is None or source == "__init__":
            continue
        for module in _imported_modules(path):
            target = _unit(module)
            if (
                target is not None
                and target != source
                and (PACKAGE / target).exists() | (PACKAGE / f"{target}.py").exists()
            ):
                graph.setdefault(source, set()).add(target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_packages_import_each_other_without_cycles():
    graph = import_graph()
    assert graph["config"] >= {"shape", "ops"} and "config" in graph["launch"]  # the walk sees real edges
    cycle = _find_cycle(graph)
    assert cycle is None, f"import cycle between packages: {' -> '.join(cycle)}"


def test_no_file_over_the_house_limit():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"files over {MAX_LINES} lines: {long}"
