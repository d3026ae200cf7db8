"""The scheduling files ship working: the Airflow DAG, the cron wrapper, the Flex Template."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common import files, schema
from jobs import score
from model import serving
from tests.conftest import PACKAGES, REPO, TEST_GATE

DATAFLOW = REPO / "deploy" / "dataflow"
AIRFLOW_PYTHON = Path(os.environ.get("AIRFLOW_PYTHON", REPO / ".venv-airflow" / "bin" / "python"))


def _render_dag(tmp_path, date="2026-11-25", variables=None) -> dict:
    if not AIRFLOW_PYTHON.exists():
        pytest.fail(
            f"no Airflow environment at {AIRFLOW_PYTHON}: run `make test` (it builds .venv-airflow)"
        )
    result = subprocess.run(
        [
            str(AIRFLOW_PYTHON),
            str(REPO / "tests" / "airflow" / "render_dag.py"),
            str(REPO / "deploy" / "airflow" / "digits_nightly_dag.py"),
            date,
            json.dumps(variables or {}),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_airflow_dag_imports_and_builds_the_scoring_task(tmp_path):
    rendered = _render_dag(
        tmp_path, variables={"digits_repo": str(REPO), "digits_bucket": "gs://team-bucket"}
    )
    assert rendered["dag_id"] == "digits_nightly_scoring"
    assert rendered["schedule"] == "15 2 * * *" and rendered["max_active_runs"] == 1
    assert (rendered["operator"], rendered["runner"]) == (
        "BeamRunPythonPipelineOperator",
        "DataflowRunner",
    )
    assert rendered["py_file"] == str(REPO / "jobs" / "score.py")
    config, beam_args = score.parse_args(
        rendered["args"]
    )  # the job accepts what the operator passes
    assert config.date == "2026-11-25"
    assert config.inputs == ("gs://team-bucket/digits/in/2026-11-25/*",)
    assert config.output == "gs://team-bucket/digits/scores"
    assert config.max_error_rate == 0.05
    assert sorted(a.split("=")[0] for a in beam_args) == [
        "--sdk_container_image",
        "--setup_file",
        "--temp_location",
    ]
    assert f"--setup_file={REPO}/setup.py" in beam_args
    assert rendered["dataflow_config"]["job_name"] == "digits-score-20261125"


def _airflow_env(tmp_path, variables: dict) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "deploy" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "DIGITS_PYTHON": sys.executable,  # the project's environment runs the job
    }
    env.update({f"AIRFLOW_VAR_{name.upper()}": value for name, value in variables.items()})
    return env


def _run_dag(env: dict, date: str, dag_file: str = "digits_nightly_dag.py") -> dict:
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), str(REPO / "tests" / "airflow" / "run_dag.py")]
        + [str(REPO / "deploy" / "airflow" / dag_file), date],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_airflow_runs_the_nightly_dag_and_a_rerun_of_the_date_is_a_no_op(
    tmp_path, bucket, tiny_model, tiny_dataset
):
    """Airflow's own dag.test() runs the scoring task (DirectRunner, gs:// on the emulator)."""
    from model.data import write_pngs

    date = "2026-11-24"
    files.upload_tree(str(tiny_model), f"{bucket}/digits/model")
    write_pngs(str(tiny_dataset), "test", str(tmp_path / "png"), limit=20)
    files.upload_tree(str(tmp_path / "png"), f"{bucket}/digits/in/{date}")
    env = _airflow_env(
        tmp_path,
        {
            "digits_runner": "DirectRunner",
            "digits_bucket": bucket,
            "digits_model": f"{bucket}/digits/model",
            "digits_repo": str(REPO),
        },
    )
    first = _run_dag(env, date)
    assert first == {"state": "success", "tasks": {"score_digits": "success"}}
    part = f"{bucket}/digits/scores/dt={date}"
    assert schema.SUCCESS_FILE in files.list_tree(part)
    summary = files.read_json(f"{part}/{schema.SUMMARY_FILE}")
    assert summary["scored"] == 20

    again = _run_dag(env, date)
    assert again["state"] == "success"
    assert files.read_json(f"{part}/{schema.SUMMARY_FILE}") == summary  # untouched


def test_gated_retraining_promotes_a_blessed_model_and_skips_one_that_is_not(tmp_path):
    """Airflow's dag.test() runs preprocess -> train -> evaluate -> promote on tiny data and
    the team's labelled folders."""
    from tests.fakes import write_labelled_folder, write_tiny_mnist

    raw = write_tiny_mnist(tmp_path / "raw", train=600, test=200)
    write_labelled_folder(tmp_path / "answers", count=30, negatives=4)
    write_labelled_folder(tmp_path / "scans", count=20, seed=9, negatives=0)
    promoted = tmp_path / "promoted"
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("key,label,note\ntrain-00550,3,\n")  # a validation digit (500-599)
    variables = {
        "digits_repo": str(REPO),
        "digits_raw": str(raw),
        "digits_relabel": str(fixes),
        "digits_labels": f"{tmp_path / 'answers'} {tmp_path / 'scans'}",
        "digits_retrain": str(tmp_path / "retrain"),
        "digits_model": str(promoted),
        "digits_runner": "DirectRunner",
        "digits_preprocess_args": "--no-digest-check --validation-size 100 --num-shards 2",
        "digits_train_args": "--epochs 1 --batch-size 32 --shape-check-epochs 0",
        "digits_gate_args": " ".join(TEST_GATE) + " --suite-size 30 --suite-per-kind 3",
    }
    steps = ("preprocess", "train", "evaluate", "promote")
    first = _run_dag(_airflow_env(tmp_path, variables), "2026-11-22", "digits_retraining_dag.py")
    assert first == {"state": "success", "tasks": dict.fromkeys(steps, "success")}
    candidate = tmp_path / "retrain" / "2026-11-22" / "model"
    blessing = json.loads((promoted / schema.BLESSING_FILE).read_text())
    assert blessing == json.loads((candidate / schema.BLESSING_FILE).read_text())
    assert blessing["baseline"] is None  # the first run: nothing promoted to compare with
    assert serving.check_blessing(str(promoted))["blessed"]  # the scorer takes it
    manifest = json.loads((candidate.parent / "data" / schema.MANIFEST_FILE).read_text())
    assert {name: a["files"] for name, a in manifest["labelled"].items()} == {
        "answers": 34,  # the images; answers.jsonl, the review page's log, is not data
        "scans": 20,
    }
    assert manifest["relabelled"]["labels_changed"] == {"train": 0, "validation": 1}

    variables["digits_gate_args"] += " --min-accuracy 1.01"  # a candidate that cannot pass
    second = _run_dag(_airflow_env(tmp_path, variables), "2026-11-29", "digits_retraining_dag.py")
    assert second["tasks"] == {**dict.fromkeys(steps[:3], "success"), "promote": "skipped"}
    rejected = json.loads(
        (tmp_path / "retrain" / "2026-11-29" / "model" / schema.BLESSING_FILE).read_text()
    )
    assert not rejected["blessed"] and "accuracy" in rejected["failed"]
    assert rejected["baseline"]["model_id"] == blessing["model_id"]  # compared with the promoted
    assert json.loads((promoted / schema.BLESSING_FILE).read_text()) == blessing  # untouched


def test_cron_wrapper_scores_a_date_and_is_idempotent(tmp_path, tiny_model, tiny_dataset):
    from model.data import write_pngs

    write_pngs(str(tiny_dataset), "test", str(tmp_path / "in" / "2026-11-24"), limit=30)
    env = {
        **os.environ,
        "DIGITS_HOME": str(REPO),
        "DIGITS_MODEL": str(tiny_model),
        "DIGITS_INPUT": str(tmp_path / "in" / "{date}" / "*.png"),
        "DIGITS_OUTPUT": str(tmp_path / "scores"),
        "DATE": "2026-11-24",
        "TMPDIR": str(tmp_path),
    }
    script = REPO / "deploy" / "cron" / "digits-nightly.sh"
    first = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    part = tmp_path / "scores" / "dt=2026-11-24"
    summary = json.loads((part / "summary.json").read_text())
    assert summary["scored"] == 30
    assert (part / schema.SUCCESS_FILE).exists()
    waiting = summary["statuses"].get("review", 0) + summary["statuses"].get("not_a_digit", 0)
    assert f"{waiting} inputs wait for review" in first.stdout  # in the cron job's mail
    again = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already scored" in again.stdout

    del env["DIGITS_MODEL"]
    missing = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "DIGITS_MODEL" in missing.stderr


def test_crontab_line_runs_the_shipped_wrapper():
    lines = [
        line
        for line in (REPO / "deploy" / "cron" / "crontab").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    fields = lines[0].split()
    assert fields[:5] == ["15", "2", "*", "*", "*"]
    assert any(f.endswith("deploy/cron/digits-nightly.sh") for f in fields)


def test_flex_template_parameters_are_flags_the_job_accepts():
    metadata = json.loads((DATAFLOW / "flex_template_metadata.json").read_text())
    values = {
        "model": "gs://b/model",
        "input": "gs://b/in/*.png",
        "output": "gs://b/out",
        "date": "yesterday",
        "format": "csv",
        "max-error-rate": "0.01",
    }
    names = [p["name"] for p in metadata["parameters"]]
    assert sorted(names) == sorted(values)
    config, beam_args = score.parse_args([f"--{name}={values[name]}" for name in names])
    assert beam_args == [] and config.format == "csv" and config.max_error_rate == 0.01
    assert len(config.date) == 10 and config.date.count("-") == 2  # resolved to a real date
    launcher = (DATAFLOW / "Dockerfile").read_text().split("AS launcher")[1]
    assert 'FLEX_TEMPLATE_PYTHON_PY_FILE="/digits/jobs/score.py"' in launcher


def _locked() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return dict(line.lower().split("==") for line in lines if "==" in line)


def test_worker_image_matches_the_lock_and_ships_every_package():
    """Workers run Beam's SDK image at the locked Beam and our Python, install with the
    lock, and get every package setup.py ships (or they fail as the stand-in shows)."""
    dockerfile = (DATAFLOW / "Dockerfile").read_text()
    worker = dockerfile.split("AS worker")[0].splitlines()[-1].strip()
    assert worker == f"FROM apache/beam_python3.11_sdk:{_locked()['apache-beam']}"
    assert 'python_requires=">=3.11,<3.12"' in (REPO / "setup.py").read_text()
    assert "pip install --no-cache-dir -c requirements.lock ." in dockerfile
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, flags=re.M))
    assert copied == set(PACKAGES)
    from setuptools import find_packages

    shipped = {name.split(".")[0] for name in find_packages(str(REPO), exclude=["tests*"])}
    assert shipped - {"bench", "deploy"} == copied
    build = (DATAFLOW / "cloudbuild.yaml").read_text()
    assert f"worker:{_locked()['apache-beam']}" in build and "--target" in build
