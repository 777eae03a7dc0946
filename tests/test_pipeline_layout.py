"""The pipeline's layout rules, read from the source: the framework imports no built-in, reading imports no torch, no cycles.

Every import counts, those inside functions and under TYPE_CHECKING included, so a
lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwdaemon"
AREA = ("hwdaemon.pipeline", "hwdaemon.builtins", "hwdaemon.modelfolder", "hwdaemon.training")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports: hwdaemon modules by their own name, others by their top-level name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            )
    return {name if name in known else name.split(".")[0] for name in found}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, set(modules)) for name, path in modules.items() if name.startswith(AREA)}


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_framework_imports_no_built_in_piece_and_no_training() -> None:
    for module, imported in _graph().items():
        if _in(module, "hwdaemon.pipeline"):
            assert not [
                name for name in imported if _in(name, "hwdaemon.builtins") or _in(name, "hwdaemon.training")
            ], module


def test_the_model_folder_format_imports_neither_side() -> None:
    imported = _graph()["hwdaemon.modelfolder"]
    assert not [name for name in imported if name.startswith(AREA)]
    assert not {"torch", "onnxruntime"} & imported


def test_only_training_imports_torch_at_module_level() -> None:
    """Reading pages must not cost torch's start-up and memory; a built-in may import it inside a function only."""
    for module, path in _modules().items():
        if not module.startswith(AREA) or _in(module, "hwdaemon.training"):
            continue
        body = ast.parse(path.read_text(encoding="utf-8")).body
        top_level = {alias.name for node in body if isinstance(node, ast.Import) for alias in node.names}
        top_level |= {node.module for node in body if isinstance(node, ast.ImportFrom) and node.module}
        assert not [name for name in top_level if _in(name, "torch") or _in(name, "hwdaemon.training")], module


def test_no_import_cycles_among_the_pipeline_the_built_ins_the_model_folder_and_training() -> None:
    graph = _graph()
    edges = {
        module: {name for name in imported if name in graph and name != module} for module, imported in graph.items()
    }
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, " → ".join([*visiting[visiting.index(module) :], module])
        if module in done:
            return
        visiting.append(module)
        for name in sorted(edges[module]):
            visit(name)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
