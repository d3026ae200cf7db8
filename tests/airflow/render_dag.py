"""Run by tests/deploy/test_airflow.py inside the Airflow environment (.venv-airflow): loads the DAG
file, renders its task's templated fields for a given date and Variables, and prints them
as JSON, with the command-line arguments the Beam operator would pass to the job."""

import importlib.util
import json
import sys

from airflow.providers.apache.beam.hooks.beam import beam_options_to_args

dag_file, date, variables = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
spec = importlib.util.spec_from_file_location("digits_dag", dag_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.dag
task = dag.get_task("score_digits")


class Values:
    def get(self, name, default=None):
        return variables.get(name, default)


context = {"ds": date, "ds_nodash": date.replace("-", ""), "var": {"value": Values()}}
render = lambda value: task.render_template(value, context)  # noqa: E731
print(
    json.dumps(
        {
            "dag_id": dag.dag_id,
            "schedule": str(getattr(dag.timetable, "expression", "")),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "operator": type(task).__name__,
            "runner": render(task.runner),
            "py_file": render(task.py_file),
            "args": beam_options_to_args(render(task.pipeline_options)),
            "dataflow_config": render(dict(task.dataflow_config))
            if isinstance(task.dataflow_config, dict)
            else {
                k: render(v)
                for k, v in vars(task.dataflow_config).items()
                if isinstance(v, (str, bool))
            },
        }
    )
)
