"""The job server's seam, read from the source: the engine never imports the server, the server's modules import
each other without a circle, and no module outside `lm_core/serve/job.py` touches a job's private state."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from lm_core.serve import events

REPO = Path(__file__).resolve().parents[1]
SERVE = REPO / "lm_core" / "serve"
JOB = SERVE / "job.py"


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Absolute names of the lm_core modules `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("lm_core")}


def test_the_engine_never_imports_the_server() -> None:
    engine = [p for p in _sources("lm_core") if "serve" not in p.relative_to(REPO / "lm_core").parts]
    assert len(engine) > 10
    offenders = {str(p.relative_to(REPO)): sorted(n for n in _imports(p) if n.startswith("lm_core.serve"))
                 for p in engine if p.parent == REPO / "lm_core"}  # fmt: skip
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_server_modules_import_each_other_without_a_circle() -> None:
    modules = {f"lm_core.serve.{p.stem}": p for p in SERVE.glob("*.py") if p.stem != "__init__"}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for other in graph[name]:
            visit(other, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def _private_names_of_job() -> set[str]:
    """Every `_name` the Job class defines: its private attributes and methods."""
    tree = ast.parse(JOB.read_text(encoding="utf-8"))
    (job,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Job"]
    names = {n.name for n in job.body if isinstance(n, ast.FunctionDef) and n.name.startswith("_")}
    for node in ast.walk(job):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_module_outside_the_job_touches_its_private_state() -> None:
    private = _private_names_of_job()
    assert {"_lock", "_runs", "_version"} <= private
    reaches = []
    for path in _sources("lm_core", "lab_ui", "pages", "tests"):
        if path == JOB:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in private
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                reaches.append(f"{path.relative_to(REPO)}:{node.lineno}: .{node.attr}")
    assert reaches == []


@pytest.mark.parametrize("kind", [events.EpochDone, events.StatusChanged, events.RunEnded, events.JobEnded])
def test_worker_events_are_frozen_dataclasses(kind: type) -> None:
    assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen
