"""The dependency rule of ``src/obs``, checked on the source: every import, function-level ones
included (only ``if TYPE_CHECKING:`` blocks are left out, since they never run).

Layers, lowest first; a module may import its own layer and the ones below, never above, and
the import graph has no cycle:

    exceptions, selfreport, config, private_files, escaping, _gunicorn_compat  <-  prometheus/  <-  metrics (the catalogue),
    multiprocess  <-  logs/  <-  profiling/  <-  http/  <-  integrations.asgi_routes (and the
    frameworks' private names it reads, integrations._compat)  <-  asgi, wsgi
    <-  integrations/, django, gunicorn  <-  dashboards/  <-  demo/, the commands, ``obs`` itself

A name with a leading underscore is private to its package: no module outside that package
imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "obs.exceptions",
        "obs.selfreport",
        "obs.config",
        "obs.private_files",
        "obs.escaping",
        "obs._gunicorn_compat",
    ),
    ("obs.prometheus",),
    ("obs.metrics", "obs.multiprocess"),
    ("obs.logs",),
    ("obs.profiling",),
    ("obs.http",),
    ("obs.integrations.asgi_routes", "obs.integrations._compat"),
    ("obs.asgi", "obs.wsgi"),
    ("obs.integrations", "obs.django", "obs.gunicorn"),
    ("obs.dashboards",),
    (
        "obs",
        "obs.__main__",
        "obs.cli",
        "obs.demo",
        "obs.profiling.cli",
        "obs.dashboards.cli",
        "obs.doctor",
    ),
)


def module_names() -> dict[str, Path]:
    out = {}
    for path in (SRC / "obs").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_names()


def layer_of(module: str) -> int:
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "obs" and module.startswith(prefix + "."))
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return best


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(module: str) -> list[tuple[str, str, int]]:
    """``(imported obs module, imported name or "", line)`` for every runtime import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "obs" or alias.name.startswith("obs."):
                    found.append((alias.name, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base != "obs" and not base.startswith("obs."):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return found


def test_every_module_is_in_a_layer() -> None:
    assert len(MODULES) > 50
    assert {layer_of(module) for module in MODULES} == set(range(len(LAYERS)))


def test_no_module_imports_a_higher_layer() -> None:
    violations = []
    for module in sorted(MODULES):
        for target, _, line in imports_of(module):
            if target in MODULES and layer_of(target) > layer_of(module):
                where = f"{MODULES[module].relative_to(SRC)}:{line}"
                violations.append(f"{where}: {module} imports {target}")
    assert not violations, "lower layers must not import higher ones:\n" + "\n".join(violations)


def test_the_import_graph_has_no_cycle() -> None:
    graph = {m: {t for t, _, _ in imports_of(m) if t in MODULES and t != m} for m in MODULES}
    # A package's __init__ that re-exports its own modules is not a cycle of theirs: the edge
    # from a submodule to its own package is the implicit parent import, so it is left out.
    for module, targets in graph.items():
        targets -= {p for p in targets if module.startswith(p + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def test_private_names_stay_in_their_package() -> None:
    violations = []
    for module in sorted(MODULES):
        for target, name, line in imports_of(module):
            if name.startswith("__"):  # dunders (__all__, __version__) are public
                continue
            if name.startswith("_"):  # a private name of module or package *target*
                owner = _package_of(target) if target in MODULES else target
            elif any(part.startswith("_") for part in target.split(".")[1:]):
                owner = target.rpartition(".")[0]  # a private module of its package
            else:
                continue
            if not (module == owner or module.startswith(owner + ".")):
                what = f"{target}.{name}" if name else target
                violations.append(
                    f"{MODULES[module].relative_to(SRC)}:{line}: {module} imports {what}"
                )
    assert not violations, "private names used outside their package:\n" + "\n".join(violations)


def test_the_checker_sees_function_level_imports() -> None:
    # asgi's default route reader and HttpObserver's lazy profiler import are both found.
    targets = {t for t, _, _ in imports_of("obs.http.observer")}
    assert "obs.profiling.request" in targets
    assert layer_of("obs.profiling.request") < layer_of("obs.http.observer")
    assert layer_of("obs.cli") > layer_of("obs.asgi") > layer_of("obs.http.observation")
