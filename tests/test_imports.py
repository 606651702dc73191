"""What `src/` imports: every third-party package declared in pyproject.toml, and no import cycle.

Both read the source with `ast`, so imports inside functions and under `TYPE_CHECKING` count: a lazy
import still needs its package installed, and still closes a cycle when the module it names imports back.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src"
PACKAGE = "genai_chatbot"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SOURCE / PACKAGE).rglob("*.py"))}


def imported_names(module: str, path: Path, known: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module name `path` imports, relative imports resolved.

    `from a import b` is `a.b` when that is one of the `known` modules (a submodule: importing it runs the
    package `a` too, but depends on nothing `a` defines), else `a`.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            submodules = [f"{origin}.{alias.name}" for alias in node.names if f"{origin}.{alias.name}" in known]
            yield from submodules
            if len(submodules) < len(node.names):
                yield origin


def declared_distributions() -> set[str]:
    """Distributions pyproject.toml declares for `src/`: the dependencies and every extra but `dev`, and the
    type-stub packages of `dev` (imported under TYPE_CHECKING only, so for mypy and never at run time)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra, listed in project["optional-dependencies"].items():
        requirements += listed if extra != "dev" else [r for r in listed if _is_type_stubs(r)]
    return {normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]) for requirement in requirements}


def _is_type_stubs(requirement: str) -> bool:
    name = normalise(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
    return name.startswith(("mypy-boto3-", "types-")) or name.endswith("-stubs")


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_every_third_party_package_src_imports_is_declared() -> None:
    providers = importlib.metadata.packages_distributions()
    undeclared: dict[str, set[str]] = {}
    declared = declared_distributions()
    for module, path in modules().items():
        for name in imported_names(module, path):
            top = name.split(".")[0]
            if not top or top == PACKAGE or top in sys.stdlib_module_names:
                continue
            distributions = {normalise(d) for d in providers.get(top, [])}
            if not distributions & declared:
                undeclared.setdefault(
                    f"{top} (from {', '.join(sorted(distributions)) or 'no installed package'})", set()
                ).add(module)
    assert not undeclared, "imported by src/ but not declared in pyproject.toml: " + "; ".join(
        f"{name} in {', '.join(sorted(users))}" for name, users in sorted(undeclared.items())
    )


def import_graph() -> dict[str, set[str]]:
    known = modules()
    names = frozenset(known)
    return {
        module: {name for name in imported_names(module, path, names) if name in known and name != module}
        for module, path in known.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_our_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_lazy_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
