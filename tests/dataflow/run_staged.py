"""Runs a staged Dataflow job on Beam's FnApiRunner: `python run_staged.py JOB.json`.

JOB.json: {pipeline: gs:// URL of pipeline.pb, options: the job's pipeline options,
worker_command: the shell command that starts one SDK worker}. The pipeline proto runs
unchanged but for its environments, which become that worker command.
"""

import json
import os
import sys
import threading
import traceback

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_provision_api_pb2, beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from google.protobuf import struct_pb2

from common import files


def _fail_fast_when_a_worker_dies(args) -> None:
    """FnApiRunner waits forever for a worker that died at start: end the job instead."""
    traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback)
    if args.thread is not None and args.thread.name == "run_worker":
        sys.stdout.flush()
        os._exit(3)


def _as_flags(options: dict) -> dict:
    """Numbers as strings: the workers' options travel as a protobuf Struct, where every
    number is a double (1 -> 1.0), which Beam's integer options then refuse."""
    return {key: str(int(value)) if _integral(value) else value for key, value in options.items()}


def _integral(value) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def main(spec_path: str) -> int:
    threading.excepthook = _fail_fast_when_a_worker_dies
    with open(spec_path) as handle:
        spec = json.load(handle)
    pipeline = beam_runner_api_pb2.Pipeline()
    pipeline.ParseFromString(files.read_bytes(spec["pipeline"]))
    for environment in pipeline.components.environments.values():
        environment.urn = python_urns.SUBPROCESS_SDK
        environment.payload = spec["worker_command"].encode()
    options = struct_pb2.Struct()
    options.update({"options": _as_flags(spec["options"])})
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=options)
    )
    runner = fn_runner.FnApiRunner(provision_info=provision)
    result = runner.run_via_runner_api(pipeline, PipelineOptions([]))
    result.wait_until_finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
