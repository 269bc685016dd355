"""The shape of the package: no import cycle, the CLI at the edge, r1lab's own imports at the top of modules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "r1lab")
# Function bodies that may import an r1lab module, each with its reason. None today.
FUNCTION_LEVEL_EXCEPTIONS: dict[tuple[str, str], str] = {}
# Heavy third-party libraries: the modules that import one at the top are loaded by the commands that need it.
HEAVY = ("torch", "transformers", "trl", "vllm", "datasets", "accelerate", "peft", "matplotlib", "reasoning_gym")


def _modules() -> dict[str, str]:
    """module name -> path, for every module of the package."""
    found = {}
    root = os.path.abspath(PACKAGE)
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, os.path.dirname(root))[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def _imports(path: str, modules: dict[str, str]):
    """(imported r1lab module, function name or None for the module level) for each import in the file."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def enclosing_function(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from r1lab.x import y`` imports the module r1lab.x.y when there is one, else names of r1lab.x
            targets = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "r1lab":
                yield target, enclosing_function(node)


def _graph():
    modules = _modules()
    return modules, {name: {target for target, _ in _imports(path, modules)} - {name} for name, path in modules.items()}


def test_the_import_graph_has_no_cycle():
    _, graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_only_main_imports_the_cli():
    _, graph = _graph()
    importers = sorted(name for name, targets in graph.items() if "r1lab.cli" in targets)
    assert importers == ["r1lab.__main__"], importers


def test_no_function_body_imports_an_r1lab_module():
    modules = _modules()
    found = []
    for name, path in modules.items():
        for target, function in _imports(path, modules):
            if function is not None and (name, function) not in FUNCTION_LEVEL_EXCEPTIONS:
                found.append(f"{name}.{function} imports {target}")
    assert not found, "\n".join(found)


def test_the_command_line_front_loads_no_heavy_library():
    """``r1lab --help`` and a bad argument stay fast: the CLI, the command table and the config parser import
    no torch, transformers, TRL or vLLM."""
    code = (
        "import sys, r1lab.cli, r1lab.commands, r1lab.config, r1lab.pipeline, r1lab.evaluate, r1lab.report;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", loaded
