"""Run by tests/deploy/test_airflow.py inside the Airflow environment (.venv-airflow): runs the DAG
for real with Airflow's own `dag.test()` for one logical date, and prints the run's state
and its task's state as JSON.

    python run_dag.py DAG_FILE YYYY-MM-DD

AIRFLOW_HOME (a fresh folder: its SQLite database is created here), the DAGs folder and
the DAG's Variables (AIRFLOW_VAR_*) come from the environment. Retries are set to 0, so a
failing task fails the run at once instead of waiting ten minutes for its retry.
"""

import importlib.util
import json
import sys
from datetime import UTC, datetime

from airflow.utils import db

dag_file, date = sys.argv[1], sys.argv[2]
db.initdb()
spec = importlib.util.spec_from_file_location("digits_dag", dag_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.dag
for task in dag.tasks:
    task.retries = 0
run = dag.test(logical_date=datetime.fromisoformat(date).replace(tzinfo=UTC))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print(json.dumps({"state": str(run.state), "tasks": states}))
