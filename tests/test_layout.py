"""The layout holds: each stage in its package, imports only in the direction of the flow
(raw data -> dataset -> model -> evaluation -> scoring -> monitoring), thin entry points in
jobs/, and test modules that mirror the packages."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import PACKAGES, REPO

# What each package may import of ours. Nothing imports jobs/ (the entry points).
ALLOWED = {
    "common": set(),
    "pipeline": {"common", "model"},  # labelled images: the scorer's own normalisation
    "model": {"common"},
    "monitoring": {"common", "model"},  # scoring and training record its histograms
    "training": {"common", "model", "monitoring"},
    "evaluation": {"common", "model"},
    "scoring": {"common", "model", "monitoring"},
    "review": {"common", "model"},
    "jobs": set(PACKAGES) - {"jobs"},
}
MAX_FUNCTION_LINES = 45  # stages read as named steps
MAX_JOB_FUNCTION_LINES = 15  # an entry point only parses, calls the stage and reports
OPTION_BUILDERS = ("parse_", "_parser", "add_", "_add_")
PLUMBING = ("cli.py", "exits.py", "options.py")  # shared by every entry point
# Libraries that do the work: a job module leaves them to its stage.
WORK_LIBRARIES = {"numpy", "tensorflow", "keras", "apache_beam", "PIL", "matplotlib"}


def _modules(package: str):
    for path in sorted((REPO / package).rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _length(node) -> int:
    return node.end_lineno - node.lineno + 1


def test_the_rules_name_every_package():
    assert set(ALLOWED) == set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_comes_before_it_in_the_flow(package):
    offenders = {
        str(path.relative_to(REPO)): sorted(wrong)
        for path, tree in _modules(package)
        if (wrong := (_imports(tree) & set(PACKAGES)) - ALLOWED[package] - {package})
    }
    assert offenders == {}


def test_only_the_entry_points_parse_options():
    parsing = [
        str(path.relative_to(REPO))
        for package in PACKAGES
        if package != "jobs"
        for path, tree in _modules(package)
        if "argparse" in _imports(tree)
    ]
    assert parsing == []


def test_every_job_module_is_thin():
    """Options -> typed config -> the stage; the work lives in the stage's package."""
    heavy, long = [], []
    for path, tree in _modules("jobs"):
        name = str(path.relative_to(REPO))
        if path.name != "options.py" and (used := _imports(tree) & WORK_LIBRARIES):
            heavy.append(f"{name}: {sorted(used)}")
        long += [
            f"{name}:{node.lineno} {node.name} ({_length(node)})"
            for node in _functions(tree)
            if path.name not in PLUMBING
            and not node.name.startswith(OPTION_BUILDERS)
            and _length(node) > MAX_JOB_FUNCTION_LINES
        ]
    assert heavy == [] and long == []


def test_every_job_ends_through_the_one_exit_wrapper():
    jobs = {"preprocess", "train", "calibrate", "evaluate", "score", "promote", "make_images"}
    for job in jobs:
        tree = ast.parse((REPO / "jobs" / f"{job}.py").read_text())
        main = next(n for n in _functions(tree) if n.name == "main")
        calls = {
            n.func.id for n in ast.walk(main) if isinstance(n, ast.Call) and hasattr(n.func, "id")
        }
        assert "run_job" in calls, f"jobs/{job}.py main() does not use jobs.exits.run_job"


def test_stage_functions_read_as_named_steps():
    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({_length(node)})"
        for package in PACKAGES
        for path, tree in _modules(package)
        for node in _functions(tree)
        if _length(node) > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_test_modules_mirror_the_packages():
    """tests/PACKAGE/test_*.py for every package with tests (deploy and bench too); no test
    module elsewhere but the checks of the whole checkout (docs, layout)."""
    loose = sorted(p.name for p in (REPO / "tests").glob("test_*.py"))
    assert loose == ["test_docs.py", "test_layout.py"]
    folders = {p.parent.name for p in (REPO / "tests").glob("*/test_*.py")}
    assert folders <= {*PACKAGES, "deploy", "bench"}, folders - {*PACKAGES, "deploy", "bench"}
    assert {
        "pipeline",
        "model",
        "training",
        "evaluation",
        "scoring",
        "monitoring",
        "jobs",
    } <= folders
