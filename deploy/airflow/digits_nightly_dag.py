"""Airflow DAG: score each day's digit images with the Beam job on Dataflow.

Copy this file into your DAGs folder and set the Airflow Variables it reads, or accept
their defaults: `digits_project`, `digits_region`, `digits_bucket` (gs://...),
`digits_model` (a model folder from `digits train`, default BUCKET/digits/model),
`digits_repo` (a checkout of this project where the task runs, for setup.py),
`digits_worker_image` (the Dataflow worker image, deploy/dataflow/Dockerfile) and
`digits_runner` (DataflowRunner; DirectRunner runs the job on the Airflow worker itself).
Variables are read through templates when the task runs, never while the scheduler parses
the file. The job runs with the Python in $DIGITS_PYTHON (read at parse time; default
`python3`): one with this project installed (`make setup` gives CHECKOUT/.venv/bin/python).

Needs apache-airflow-providers-apache-beam with apache-airflow-providers-google (every
Beam operator imports the Google provider, whatever the runner; see requirements.txt).
One run per day with `{{ ds }}` as --date: reruns and backfills are idempotent, since
the job skips a date already scored with the same inputs and model and replaces a partial
one whole.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG


def var(name: str, default: str) -> str:
    """An Airflow Variable, read when the task runs (a template), not at parse time."""
    return f"{{{{ var.value.get('{name}', '{default}') }}}}"


BUCKET = var("digits_bucket", "gs://my-bucket")
REPO = var("digits_repo", "/opt/digits")

with DAG(
    dag_id="digits_nightly_scoring",
    description="Score the day's handwritten-digit images (digits score on Dataflow)",
    schedule="15 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["digits", "beam"],
) as dag:
    score = BeamRunPythonPipelineOperator(
        task_id="score_digits",
        runner=var("digits_runner", "DataflowRunner"),
        py_file=f"{REPO}/jobs/score.py",
        py_interpreter=os.environ.get("DIGITS_PYTHON", "python3"),
        py_options=[],
        pipeline_options={
            "model": var("digits_model", "gs://my-bucket/digits/model"),
            "input": f"{BUCKET}/digits/in/{{{{ ds }}}}/*",
            "output": f"{BUCKET}/digits/scores",
            "date": "{{ ds }}",
            "max-error-rate": "0.05",
            "setup_file": f"{REPO}/setup.py",
            "temp_location": f"{BUCKET}/tmp",
            "sdk_container_image": var(
                "digits_worker_image", "europe-west1-docker.pkg.dev/my-project/digits/worker:2.77.0"
            ),
        },
        dataflow_config={
            "job_name": "digits-score-{{ ds_nodash }}",
            "project_id": var("digits_project", "my-project"),
            "location": var("digits_region", "europe-west1"),
            "wait_until_finished": True,
        },
    )
