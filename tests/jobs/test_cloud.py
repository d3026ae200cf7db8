"""Every job on gs:// paths, against a real GCS server on 127.0.0.1 (gcp-storage-emulator):
the same results as on local disks, resumable training from a bucket, nightly partitions,
kills, and errors that name the bucket."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from common import files, schema
from jobs import preprocess, score
from scoring import partition
from tests.conftest import REPO, TEST_GATE, kill_job_when, make_bucket
from tests.fakes import write_tiny_mnist
from training import folder as model_folder

DATE = "2026-11-25"
TINY = ["--no-digest-check", "--validation-size", "100", "--num-shards", "2"]


def _lines(directory: str, prefix: str) -> list[dict]:
    rows = []
    for name in files.list_tree(directory):
        if name.startswith(prefix + "-"):
            text = files.read_bytes(files.join(directory, name)).decode()
            rows += [json.loads(line) for line in text.splitlines() if line]
    return rows


def _by_name(rows: list[dict]) -> dict[str, dict]:
    """Predictions by file name (or record key), without the path and the run's id (each
    run has its own): local and gs:// agree."""
    assert all(row["run_id"] for row in rows)
    return {row["key"].rsplit("/", 1)[-1]: {**row, "key": None, "run_id": None} for row in rows}


NUMBERS = ("probabilities", "confidence", "calibrated_confidence")


def _without_probabilities(rows: dict[str, dict]) -> dict[str, dict]:
    """Everything but the probabilities, which the two runs compute in batches made up
    differently: the same to about 1e-7, so a sixth decimal may round either way."""
    return {name: {**row, **dict.fromkeys(NUMBERS)} for name, row in rows.items()}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory, gcs_emulator):
    """Tiny raw files uploaded to a bucket, preprocessed there and, the same, locally; a
    model trained from gs:// to gs:// and evaluated there (its report in gs://.../report,
    its blessing beside it); PNGs of the test split in a dated input folder."""
    tmp = tmp_path_factory.mktemp("cloud")
    bucket = make_bucket()
    raw = write_tiny_mnist(tmp / "raw", train=600, test=200)
    files.upload_tree(str(raw), f"{bucket}/raw")
    preprocess.run(["--source", f"{bucket}/raw", "--output", f"{bucket}/data", *TINY])
    preprocess.run(["--source", str(raw), "--output", str(tmp / "data"), *TINY])
    from jobs import train

    train.run(
        ["--data", f"{bucket}/data", "--output", f"{bucket}/model", "--epochs", "1"]
        + ["--shape-check-epochs", "0"]
    )
    from jobs import evaluate

    evaluated = evaluate.run(
        ["--data", f"{bucket}/data", "--model", f"{bucket}/model", "--output", f"{bucket}/report"]
        + ["--suite-size", "100", "--suite-per-kind", "10", *TEST_GATE]
    )
    from model.data import write_pngs

    write_pngs(str(tmp / "data"), "test", str(tmp / "png"))
    files.upload_tree(str(tmp / "png"), f"{bucket}/in/{DATE}")
    return {"bucket": bucket, "tmp": tmp, "evaluated": evaluated}


def test_preprocessing_from_and_to_a_bucket_equals_the_local_run(cloud):
    bucket, tmp = cloud["bucket"], cloud["tmp"]
    remote = files.read_json(f"{bucket}/data/{schema.MANIFEST_FILE}")
    local = json.loads((tmp / "data" / schema.MANIFEST_FILE).read_text())
    assert remote["splits"] == local["splits"]  # the same shards, byte for byte
    assert sorted(files.list_tree(f"{bucket}/data")) == sorted(
        p.name for p in (tmp / "data").iterdir()
    )
    import tensorflow_datasets as tfds

    copy = tmp / "copy"
    files.download_tree(f"{bucket}/data", str(copy))
    builder = tfds.builder_from_directory(str(copy))
    assert builder.info.splits["test"].num_examples == 200


def test_training_writes_a_finished_model_to_the_bucket(cloud):
    model = f"{cloud['bucket']}/model"
    names = files.list_tree(model)
    assert {schema.KERAS_FILE, schema.METRICS_FILE, "saved_model/saved_model.pb"} <= set(names)
    assert not [n for n in names if n.startswith(model_folder.BACKUP_DIR + "/")]
    metrics = files.read_json(f"{model}/{schema.METRICS_FILE}")
    assert metrics["data"] == f"{cloud['bucket']}/data"
    assert metrics["model_id"] == "sha256:" + files.sha256_file(f"{model}/model.keras")[:16]


def test_evaluation_reads_and_writes_the_bucket(cloud):
    bucket, results = cloud["bucket"], cloud["evaluated"]
    report = f"{bucket}/report"
    blessing = files.read_json(f"{bucket}/model/{schema.BLESSING_FILE}")
    assert blessing["model_sha256"] == files.sha256_file(f"{bucket}/model/{schema.KERAS_FILE}")
    assert {"evaluation.json", "report.md", "confusion_matrix.png"} <= set(files.list_tree(report))
    assert files.read_json(f"{report}/evaluation.json")["accuracy"] == results["accuracy"]


def test_calibration_reads_the_bucket_and_writes_a_new_model_folder_there(cloud):
    from jobs import calibrate
    from model import serving

    bucket = cloud["bucket"]
    source, target = f"{bucket}/model", f"{bucket}/model-looser"
    looser = ("--threshold-rule", "point", "--target-error", "0.2", "--shape-check-epochs", "0")
    calibrate.run(["--model", source, "--data", f"{bucket}/data", "--output", target, *looser])
    names = set(files.list_tree(target))
    assert {schema.KERAS_FILE, schema.CALIBRATION_FILE, "saved_model/saved_model.pb"} <= names
    assert schema.BLESSING_FILE not in names  # evaluate judges the new calibration first
    assert files.sha256_file(f"{target}/{schema.KERAS_FILE}") == files.sha256_file(
        f"{source}/{schema.KERAS_FILE}"
    )
    assert serving.load_screen(target).threshold < serving.load_screen(source).threshold
    assert (
        files.read_json(f"{target}/{schema.METRICS_FILE}")["recalibrated_from"]["model"] == source
    )
    assert serving.check_blessing(source)["blessed"]  # the source, blessing and all, untouched


def test_scoring_images_and_records_on_the_bucket_equals_the_local_run(cloud):
    bucket, tmp = cloud["bucket"], cloud["tmp"]
    inputs = ["--input", f"{bucket}/in/{DATE}/*.png", "--input", f"{bucket}/data/mnist-test.*"]
    argv = ["--model", f"{bucket}/model", *inputs, "--output", f"{bucket}/scores"]
    assert score.main([*argv, "--date", DATE]) == 0
    part = f"{bucket}/scores/dt={DATE}"
    assert schema.SUCCESS_FILE in files.list_tree(part)
    remote = _by_name(_lines(part, "predictions"))
    assert len(remote) == 400  # 200 PNGs and 200 records

    local_inputs = [
        "--input",
        str(tmp / "png" / "*.png"),
        "--input",
        str(tmp / "data" / "*-test.*"),
    ]
    assert (
        score.main(["--model", f"{bucket}/model", *local_inputs, "--output", str(tmp / "s")]) == 0
    )
    local = _by_name(_lines(str(tmp / "s"), "predictions"))
    assert _without_probabilities(remote) == _without_probabilities(local)
    for name, row in remote.items():  # the same to the last printed digit, but for rounding
        for field in NUMBERS:
            np.testing.assert_allclose(row[field], local[name][field], atol=2e-6, err_msg=name)

    summary = files.read_json(f"{part}/{schema.SUMMARY_FILE}")
    assert summary["scored"] == 400 and summary["failed"] == 0
    assert score.main([*argv, "--date", DATE]) == 0  # the same night again: nothing to do
    assert files.read_json(f"{part}/{schema.SUMMARY_FILE}") == summary
    assert not files.list_tree(f"{bucket}/scores/{partition.STAGING}")


def test_killed_scoring_on_the_bucket_leaves_no_success_and_a_rerun_completes(cloud):
    bucket = cloud["bucket"]
    out = f"{bucket}/killed-scores"
    argv = ["jobs.score", "--model", f"{bucket}/model", "--input", f"{bucket}/in/{DATE}/*"]
    argv += ["--output", out, "--date", DATE]
    staging = f"{out}/{partition.STAGING}"
    kill_job_when(argv, lambda: any("beam-temp" in n for n in files.list_tree(staging)))
    assert schema.SUCCESS_FILE not in files.list_tree(f"{out}/dt={DATE}")
    assert score.main(argv[1:]) == 0
    assert len(_lines(f"{out}/dt={DATE}", "predictions")) == 200


def test_killed_training_resumes_from_the_bucket(tmp_path, gcs_emulator):
    bucket = make_bucket()
    raw = write_tiny_mnist(tmp_path / "raw", train=1200, test=100)
    files.upload_tree(str(raw), f"{bucket}/raw")
    preprocess.run(["--source", f"{bucket}/raw", "--output", f"{bucket}/data", *TINY])
    model = f"{bucket}/model"
    argv = ["jobs.train", "--data", f"{bucket}/data", "--output", model]
    argv += ["--epochs", "4", "--batch-size", "16", "--shape-check-epochs", "0"]
    latest = f"{model}/{model_folder.BACKUP_DIR}/{model_folder.LATEST_FILE}"
    kill_job_when(argv, lambda: files.exists(latest), timeout=300)
    saved = files.read_json(latest)["epoch"]
    assert 1 <= saved < 4 and schema.METRICS_FILE not in files.list_tree(model)

    result = subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resuming" in result.stdout
    assert "Epoch 1/4" not in result.stdout
    metrics = files.read_json(f"{model}/{schema.METRICS_FILE}")
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4]
    assert not files.exists(latest)


@pytest.mark.parametrize("job", ["preprocess", "score"])
def test_a_missing_bucket_is_named_with_the_fix(job, tiny_mnist, tiny_model, gcs_emulator, capsys):
    if job == "preprocess":
        code = preprocess.main(
            ["--source", str(tiny_mnist), "--output", "gs://no-such-bucket/data"]
            + ["--no-digest-check", "--validation-size", "10"]
        )
    else:
        pattern = str(tiny_mnist / "*")
        code = score.main(
            ["--model", str(tiny_model), "--input", pattern, "--output", "gs://no-such-bucket/s"]
        )
    err = capsys.readouterr().err
    assert code == 2
    assert "gs://no-such-bucket: bucket not found" in err and "Traceback" not in err


def test_storage_errors_become_one_line_naming_the_bucket_and_the_fix():
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError

    url = "GET https://storage.googleapis.com/storage/v1/b/team-data/o?prefix=digits%2F"
    cases = {
        exceptions.Forbidden(f"{url}: caller does not have storage.objects.list access"): (
            "gs://team-data: permission denied"
        ),
        exceptions.Unauthorized(f"{url}: Anonymous caller does not have access"): (
            "gs://team-data: no Google credentials found"
        ),
        DefaultCredentialsError("Your default credentials were not found."): (
            "Google Cloud Storage: no Google credentials found"
        ),
        exceptions.NotFound(f"{url}: The specified bucket does not exist."): (
            "gs://team-data: bucket not found"
        ),
    }
    for error, expected in cases.items():
        wrapped = OSError(f"Match operation failed with exceptions {{'gs://x': {error!r}}}")
        wrapped.__cause__ = error
        assert files.storage_problem(wrapped).startswith(expected), error
    assert files.storage_problem(ValueError("--batch-size 0: must be at least 1")) is None
