"""Airflow DAG: gated retraining. preprocess -> train -> evaluate (bless against the model
now promoted) -> promote, the last only when the candidate is blessed.

Copy this file into your DAGs folder beside digits_nightly_dag.py and set the Airflow
Variables it reads, or accept their defaults:

- `digits_repo`: a checkout of this project where the tasks run;
- `digits_raw`: the raw MNIST IDX files (a folder, local or gs://);
- `digits_labels`: the team's labelled image folders, separated by spaces (local or
  gs://; each as `digits review --labels` writes it, or any folder of 0/ ... 9/ and
  not_a_digit/): every run preprocesses them with MNIST (`--labelled`), so the answers
  people gave in the review page since the last run are learnt from (default: none);
- `digits_relabel`: MNIST label corrections a person made (`digits preprocess --relabel`;
  a path in `digits_repo` or gs://; default: none; docs/data.md says what they cost);
- `digits_retrain`: where each run's dataset, candidate model and report go
  (default BUCKET/digits/retrain; one folder per run date);
- `digits_model`: the promoted model, the very path the nightly scorer reads
  (default gs://my-bucket/digits/model);
- `digits_runner`: the preprocessing pipeline's Beam runner (DataflowRunner; DirectRunner
  runs it on the Airflow worker) and `digits_preprocess_args` (more `digits preprocess`
  options and Beam options, e.g. --project, --region,
  --temp_location for Dataflow);
- `digits_train_args` (default `--recipe robust`) and `digits_gate_args` (extra `digits
  evaluate` options, e.g. floors: `--min-accuracy 0.99`).

The tasks run the project's commands with the Python in $DIGITS_PYTHON (read at parse
time; default `python3`). `digits promote` exits 5 when the candidate is not blessed: the
promote task is then *skipped*, the promoted model is untouched, and the evaluation report
says which check failed. Weekly, manual runs and reruns are safe: every step writes into
the run's own folder and train resumes from its last epoch.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG


def var(name: str, default: str) -> str:
    """An Airflow Variable, read when the task runs (a template), not at parse time."""
    return f"{{{{ var.value.get('{name}', '{default}') }}}}"


PYTHON = os.environ.get("DIGITS_PYTHON", "python3")
RUN = var("digits_retrain", "gs://my-bucket/digits/retrain") + "/{{ ds }}"
# `--labelled DIR` for each folder of the digits_labels Variable (none when it is unset).
LABELLED = (
    "{% for folder in var.value.get('digits_labels', '').split() %}"
    "--labelled {{ folder }} {% endfor %}"
)
# `--relabel FILE` when the digits_relabel Variable names one.
RELABEL = (
    "{% set fixes = var.value.get('digits_relabel', '') %}"
    "{% if fixes %}--relabel {{ fixes }} {% endif %}"
)
PROMOTED = var("digits_model", "gs://my-bucket/digits/model")
EXIT_NOT_BLESSED = 5  # jobs/promote.py

with DAG(
    dag_id="digits_gated_retraining",
    description="Retrain, evaluate, and promote the digit model only when the gate blesses it",
    schedule="0 4 * * 0",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["digits"],
) as dag:

    def step(task_id: str, command: str, **options) -> BashOperator:
        return BashOperator(
            task_id=task_id,
            bash_command=f"{PYTHON} -m {command}",
            cwd=var("digits_repo", "/opt/digits"),
            **options,
        )

    preprocess = step(
        "preprocess",
        f"jobs.preprocess --source {var('digits_raw', 'gs://my-bucket/digits/raw')} "
        f"--output {RUN}/data --runner {var('digits_runner', 'DataflowRunner')} "
        f"{LABELLED}{RELABEL}{var('digits_preprocess_args', '')}",
    )
    train = step(
        "train",
        f"jobs.train --data {RUN}/data --output {RUN}/model "
        f"{var('digits_train_args', '--recipe robust')}",
    )
    evaluate = step(
        "evaluate",
        f"jobs.evaluate --data {RUN}/data --model {RUN}/model --output {RUN}/report "
        f"--baseline {PROMOTED} {var('digits_gate_args', '')}",
    )
    promote = step(
        "promote",
        f"jobs.promote --candidate {RUN}/model --to {PROMOTED}",
        skip_on_exit_code=EXIT_NOT_BLESSED,
    )
    preprocess >> train >> evaluate >> promote
