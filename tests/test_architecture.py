"""The house's rules, checked: which room may import which, no cycles, a lean serving path."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Each room and the rooms its modules may import at module level. An import inside a function
# (training from `TopicModel.fit`) is a lazy
# dependency, taken only when that call is made, and is not listed here.
ALLOWED: dict[str, set[str]] = {
    "models.core": set(),
    "models.data": {"models.core"},
    "models.training": {"models.core", "models.data"},
    "models.offline": {"models.core", "models.data"},
    "models.store": {"models.core"},
    # the lab: a top-level folder of the checkout, not installed; nothing installed imports it
    "lab": {"models.core", "models.data", "models.training"},
    "service.client": set(),
    "service.jobs": {"models.core", "models.data", "models.store", "service.base"},
    "service.serving": {
        "models.core",
        "models.store",
        "service.base",
        "service.client",
        "service.jobs",
    },
    "service.cli": {
        "models.core",
        "models.data",
        "models.errors",
        "service.base",
        "service.client",
    },
}
SHARED = {"models.errors"}  # plain exceptions, importable from anywhere


def room(module: str) -> str:
    parts = module.removeprefix("topicproj.").split(".")
    if parts[0] == "lab":
        return "lab"
    if parts[0] == "service" and len(parts) == 2 and not (REPO / "service" / parts[1]).is_dir():
        return "service.base"  # settings, errors, metrics: shared by the service's rooms
    return ".".join(parts[:2])


def module_imports(path: Path, module: str) -> set[str]:
    """First-party modules imported at module level (not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
    first_party = ("topicproj.models", "topicproj.service", "lab.")
    return {n for n in found if n == "lab" or n.startswith(first_party)}


def all_modules() -> dict[str, Path]:
    out = {}
    for top in ("models", "service"):
        for path in (REPO / top).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[f"topicproj.{name}"] = path
    for path in (REPO / "lab").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_rooms_import_only_the_rooms_below_them():
    wrong = []
    for module, path in sorted(all_modules().items()):
        here = room(module)
        if here not in ALLOWED:
            continue
        for target in module_imports(path, module):
            there = room(target)
            if there in (here, *SHARED) or target in SHARED or there in ALLOWED[here]:
                continue
            wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_models_never_imports_service_grpc_or_prometheus():
    for module, path in all_modules().items():
        if module.startswith("topicproj.models"):
            text = path.read_text(encoding="utf-8")
            banned_names = ("import grpc", "from grpc", "prometheus_client", "topicproj.service")
            for banned in banned_names:
                assert banned not in text, f"{module}: {banned}"


def test_the_room_graph_has_no_cycle():
    edges: dict[str, set[str]] = {}
    for module, path in all_modules().items():
        for target in module_imports(path, module):
            if room(target) != room(module):
                edges.setdefault(room(module), set()).add(room(target))
    seen: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for node in sorted(edges):
        if node not in seen:
            visit(node, [])


def every_import(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """The first-party modules `module` imports anywhere: at module level, inside a function or
    under TYPE_CHECKING. `from pkg import name` counts pkg (whose __init__ runs first) and
    pkg.name where that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def owner(name: str) -> str | None:  # the longest prefix that is one of our modules
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(parts + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [source, *(f"{source}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {o for n in names if (o := owner(n)) and o != module}
    return found


def import_circles(modules: dict[str, Path]) -> list[list[str]]:
    """Each set of modules that import one another, round a circle (Tarjan's strongly
    connected components of the import graph, those with more than one module)."""
    graph = {m: sorted(every_import(p, m, modules)) for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def first_party_modules() -> dict[str, Path]:
    """Every module of the repository's importable code: the installed package's three folders
    and the lab."""
    out = all_modules()
    for path in (REPO / "proto" / "topicproj").rglob("*.py"):
        parts = path.relative_to(REPO / "proto").with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def test_no_module_imports_itself_round_a_circle():
    circles = import_circles(first_party_modules())
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_finder_sees_a_lazy_import(tmp_path):
    """The finder itself: a circle closed by an import inside a function, or under
    TYPE_CHECKING, is a circle."""
    (tmp_path / "a.py").write_text("import topicproj.models.b\n")
    (tmp_path / "b.py").write_text("def f():\n    from topicproj.models import a\n")
    (tmp_path / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import D\n"
    )
    (tmp_path / "d.py").write_text("from topicproj.models.c import C\n")
    modules = {f"topicproj.models.{n}": tmp_path / f"{n}.py" for n in "abcd"}
    assert sorted(import_circles(modules)) == [
        ["topicproj.models.a", "topicproj.models.b"],
        ["topicproj.models.c", "topicproj.models.d"],
    ]


def test_nothing_installed_imports_the_lab():
    """The package never names the lab in an import (anywhere in a module); the command line
    loads it by path from a checkout, in one place (service/cli/lab.py), for its lab commands."""
    modules = first_party_modules()
    wrong = [
        f"{module} imports {target}"
        for module, path in sorted(modules.items())
        if room(module) != "lab"
        for target in every_import(path, module, modules)
        if target == "lab" or target.startswith("lab.")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_serving_path_loads_no_research_or_training_code(tmp_path):
    """A server process imports, loads a model and projects without the lab or the trainer."""
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.synthetic import make_synthetic_catalog

    items = make_synthetic_catalog(n_items=200, n_topics=4, keywords_per_topic=6).catalog
    TopicModel(4, min_df=2, max_epochs=2, device="cpu").fit(items.keywords).save(tmp_path / "m")
    script = f"""
import sys
import topicproj.service.cli.main, topicproj.service.serving.process
import topicproj.service.serving.workers
from topicproj.models.core.topic_model import TopicModel
model = TopicModel.load({str(tmp_path / "m")!r}, device="cpu")
model.transform([["alien", "space"], ["love", "paris"]])
print(sorted(n for n in sys.modules if n == "lab" or n.startswith(
    ("lab.", "topicproj.models.training",
     "topicproj.models.data.synthetic", "matplotlib", "ray"))))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
