"""`--runner DataflowRunner`, submitted for real to a local stand-in of the Dataflow service
(tests/dataflow/standin.py) with staging in the emulated bucket: the job request and the
staged files pass Dataflow's checks, the staged pipeline runs on workers that have only
the staged package, and the output equals the DirectRunner's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from common import files, schema
from tests.conftest import PACKAGES, REPO, make_bucket
from tests.dataflow.standin import DataflowStandIn
from tests.fakes import write_tiny_mnist

DATE = "2026-11-25"
# The worker image the README's recipe builds (deploy/dataflow/Dockerfile) and passes.
WORKER_IMAGE = "us-central1-docker.pkg.dev/digits-test/digits/worker:2.77.0"
TINY = ["--no-digest-check", "--validation-size", "100", "--num-shards", "2"]


@pytest.fixture(scope="module")
def dataflow(gcs_emulator):
    standin = DataflowStandIn(expected_image=WORKER_IMAGE)
    yield standin
    standin.close()


def _dataflow_flags(standin, bucket: str, setup_file=REPO / "setup.py") -> list[str]:
    """The README's Dataflow recipe, pointed at the stand-in and the emulated bucket."""
    return [
        "--runner=DataflowRunner",
        "--project=digits-test",
        "--region=us-central1",
        f"--temp_location={bucket}/tmp",
        f"--staging_location={bucket}/staging",
        f"--setup_file={setup_file}",
        f"--sdk_container_image={WORKER_IMAGE}",
        f"--dataflow_endpoint={standin.endpoint}",
    ]


def _run(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _predictions(directory: str) -> dict[str, dict]:
    rows = {}
    for name in files.list_tree(directory):
        if name.startswith("predictions-"):
            for line in files.read_bytes(files.join(directory, name)).decode().splitlines():
                row = json.loads(line)
                rows[row["key"]] = {**row, "run_id": bool(row["run_id"])}  # one id per run
    return rows


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, gcs_emulator, tiny_model, tiny_dataset):
    """Raw tiny IDX files, a model and test PNGs in a bucket."""
    tmp = tmp_path_factory.mktemp("dataflow")
    bucket = make_bucket()
    raw = write_tiny_mnist(tmp / "raw", train=600, test=200)
    files.upload_tree(str(raw), f"{bucket}/raw")
    files.upload_tree(str(tiny_model), f"{bucket}/model")
    from model.data import write_pngs

    write_pngs(str(tiny_dataset), "test", str(tmp / "png"), 60)
    files.upload_tree(str(tmp / "png"), f"{bucket}/in/{DATE}")
    return bucket


def test_preprocessing_on_dataflow_equals_the_direct_runner(dataflow, inputs):
    bucket = inputs
    argv = ["--source", f"{bucket}/raw", *TINY]
    direct = _run("jobs.preprocess", [*argv, "--output", f"{bucket}/direct"])
    assert direct.returncode == 0, direct.stderr[-3000:]
    result = _run(
        "jobs.preprocess",
        [*argv, "--output", f"{bucket}/on-dataflow", *_dataflow_flags(dataflow, bucket)],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    job = list(dataflow.jobs.values())[-1]
    assert job.state == "JOB_STATE_DONE" and all(job.checks.values()), job.checks
    on_dataflow = files.read_json(f"{bucket}/on-dataflow/{schema.MANIFEST_FILE}")
    assert on_dataflow["splits"] == files.read_json(f"{bucket}/direct/manifest.json")["splits"]


def test_scoring_on_dataflow_equals_the_direct_runner(dataflow, inputs):
    bucket = inputs
    argv = ["--model", f"{bucket}/model", "--input", f"{bucket}/in/{DATE}/*.png"]
    argv += ["--date", DATE]
    direct = _run("jobs.score", [*argv, "--output", f"{bucket}/direct-scores"])
    assert direct.returncode == 0, direct.stderr[-3000:]
    result = _run(
        "jobs.score", [*argv, "--output", f"{bucket}/scores", *_dataflow_flags(dataflow, bucket)]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    job = list(dataflow.jobs.values())[-1]
    assert job.state == "JOB_STATE_DONE" and all(job.checks.values()), job.checks
    part = f"{bucket}/scores/dt={DATE}"
    assert schema.SUCCESS_FILE in files.list_tree(part)
    scored = _predictions(part)
    assert len(scored) == 60 and scored == _predictions(f"{bucket}/direct-scores/dt={DATE}")


def test_a_package_missing_from_setup_py_fails_the_job_on_its_workers(dataflow, inputs, tmp_path):
    """Workers have only what --setup_file ships: leave `common` out and the job fails."""
    broken = tmp_path / "checkout"
    for name in PACKAGES:
        shutil.copytree(REPO / name, broken / name, ignore=shutil.ignore_patterns("__pycache__"))
    setup = re.sub(r'\s*"common(\.\*)?",', "", (REPO / "setup.py").read_text())
    assert setup != (REPO / "setup.py").read_text()
    (broken / "setup.py").write_text(setup)
    (broken / "README.md").write_text("")
    bucket = inputs
    argv = ["--model", f"{bucket}/model", "--input", f"{bucket}/in/{DATE}/*.png"]
    argv += [
        "--output",
        f"{bucket}/broken",
        *_dataflow_flags(dataflow, bucket, broken / "setup.py"),
    ]
    result = _run("jobs.score", argv)
    assert result.returncode != 0
    job = list(dataflow.jobs.values())[-1]
    assert job.state == "JOB_STATE_FAILED"
    assert "No module named 'common'" in job.messages[-1]["messageText"]
    assert schema.SUCCESS_FILE not in files.list_tree(f"{bucket}/broken")
