"""The layout holds: shared names live in common/, which imports none of the three packages;
model/ never reaches into the preprocessing package; job functions stay short enough to scan."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO

PACKAGES = ("common", "pipeline", "model", "jobs")
MAX_FUNCTION_LINES = 45  # "no function in jobs/ or pipeline/ much over 40 lines"


def _modules(package: str):
    for path in sorted((REPO / package).rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _imported_packages(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


@pytest.mark.parametrize(
    "package, forbidden",
    [("common", {"pipeline", "model", "jobs"}), ("model", {"pipeline", "jobs"})],
)
def test_shared_code_does_not_import_the_packages_built_on_it(package, forbidden):
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_packages(tree) & forbidden)
        for path, tree in _modules(package)
        if _imported_packages(tree) & forbidden
    }
    assert offenders == {}


def test_job_and_pipeline_functions_read_as_named_steps():
    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
        for package in ("jobs", "pipeline")
        for path, tree in _modules(package)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
