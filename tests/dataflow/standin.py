"""A local stand-in for the Dataflow service: it speaks Dataflow's REST protocol and really
runs the submitted job, as Dataflow would, on workers that have only what was staged.

    DataflowRunner --dataflow_endpoint=http://localhost:PORT --staging_location gs://B/...
        POST /v1b3/projects/P/locations/R/jobs      the job request (steps are staged)
        GET  /v1b3/projects/P/locations/R/jobs/ID   its state
        GET  /v1b3/projects/P/locations/R/jobs/ID/messages

For each job it checks what Dataflow would check (the request, the staged pipeline and
`workflow.tar.gz`, the worker image, the options), then runs the staged pipeline proto
unchanged on Beam's portable FnApiRunner, its DOCKER environment replaced by worker
processes started from a clean virtual environment into which only `workflow.tar.gz` was
pip-installed (the locked dependencies visible through a `.pth` line), in an empty folder
with Python's isolated mode: no checkout on sys.path. The job's real outcome is reported
back; a failure's traceback is a JOB_MESSAGE_ERROR, as Dataflow reports it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import files

JOBS = re.compile(r"^/v1b3/projects/([^/]+)/locations/([^/]+)/jobs(?:/([^/?]+))?(/messages)?")
RUNNER = os.path.join(os.path.dirname(__file__), "run_staged.py")
BOOT = os.path.join(os.path.dirname(__file__), "worker_boot.py")
JOB_TIMEOUT_S = 240


@dataclass
class Job:
    id: str
    request: dict
    state: str = "JOB_STATE_PENDING"
    messages: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    def say(self, importance: str, text: str) -> None:
        self.messages.append(
            {
                "id": str(len(self.messages)),
                "time": files.utc_timestamp(),
                "messageImportance": importance,
                "messageText": text,
            }
        )


class DataflowStandIn:
    """The server; `jobs` keeps every job submitted, with the checks it passed."""

    def __init__(self, expected_image: str):
        self.expected_image = expected_image
        self.jobs: dict[str, Job] = {}
        self.workdir = tempfile.mkdtemp(prefix="dataflow-standin-")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._answer(standin.create(body))

            def do_GET(self):
                found = JOBS.match(self.path)
                job = standin.jobs.get(found.group(3)) if found else None
                if job is None:
                    self.send_error(404)
                elif found.group(4):
                    self._answer({"jobMessages": job.messages})
                else:
                    self._answer(standin.describe(job))

            def _answer(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def describe(self, job: Job) -> dict:
        return {
            "id": job.id,
            "name": job.request.get("name"),
            "projectId": job.request.get("projectId"),
            "type": job.request.get("type"),
            "clientRequestId": job.request.get("clientRequestId"),
            "currentState": job.state,
            "currentStateTime": files.utc_timestamp(),
        }

    def create(self, request: dict) -> dict:
        job = Job(f"standin-{uuid.uuid4().hex[:12]}", request)
        self.jobs[job.id] = job
        answer = self.describe(job)  # PENDING: the client then polls for the outcome
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return answer

    # --- What Dataflow checks, then running the job. ----------------------------------------

    def _run(self, job: Job) -> None:
        try:
            staged = self.check(job)
            job.state = "JOB_STATE_RUNNING"
            self.execute(job, staged)
            job.state = "JOB_STATE_DONE"
        except Exception as error:  # noqa: BLE001 - reported to the client as Dataflow does
            job.say("JOB_MESSAGE_ERROR", f"{type(error).__name__}: {error}")
            job.state = "JOB_STATE_FAILED"

    def check(self, job: Job) -> dict:
        """The request's shape, the staged files, the image and the options."""
        request = job.request
        environment = request["environment"]
        pool = environment["workerPools"][0]
        options = environment["sdkPipelineOptions"]["options"]
        experiments = set(environment.get("experiments", []))
        packages = {p["name"]: p["location"] for p in pool.get("packages", [])}
        images = [c["containerImage"] for c in pool.get("sdkHarnessContainerImages", [])]
        checks = {
            "type": request.get("type") in ("JOB_TYPE_BATCH", 1),
            "name": bool(re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", request.get("name", ""))),
            "runner_v2": "use_runner_v2" in experiments,
            "workflow_package": "workflow.tar.gz" in packages,
            "pipeline_url": options.get("pipelineUrl", "").startswith("gs://"),
            "image": images == [self.expected_image],
            "temp_location": str(options.get("temp_location", "")).startswith("gs://"),
        }
        job.checks = checks
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"job request refused: {', '.join(failed)} ({images=})")
        return {
            "pipeline": options["pipelineUrl"],
            "workflow": _location(packages["workflow.tar.gz"]),
            "options": _integers(options),
        }

    def execute(self, job: Job, staged: dict) -> None:
        """Runs the staged pipeline on clean-environment workers, in a child process."""
        folder = os.path.join(self.workdir, job.id)
        python = self.worker_environment(folder, staged["workflow"])
        empty = os.path.join(folder, "cwd")
        os.makedirs(empty)
        command = f"cd {empty} && exec {python} -I {BOOT}"
        spec = os.path.join(folder, "job.json")
        with open(spec, "w") as handle:
            json.dump({**staged, "worker_command": command}, handle)
        log = os.path.join(folder, "runner.log")
        with open(log, "wb") as out:
            runner = subprocess.Popen(
                [sys.executable, RUNNER, spec],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                code = runner.wait(timeout=JOB_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                if runner.poll() is None:
                    os.killpg(runner.pid, 9)
                    runner.wait()
        if code != 0:
            with open(log, errors="replace") as handle:
                tail = handle.read()[-6000:]
            reason = "timed out" if code is None else f"exit status {code}"
            raise RuntimeError(f"the job failed ({reason}):\n{tail}")

    def worker_environment(self, folder: str, workflow: str) -> str:
        """A new venv with only the staged package installed; returns its python. The venv
        gets no pip of its own (that takes 5 s): this environment's pip installs into it."""
        venv = os.path.join(folder, "venv")
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", venv], check=True, capture_output=True
        )
        python = os.path.join(venv, "bin", "python")
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        with open(os.path.join(site, "locked_dependencies.pth"), "w") as handle:
            handle.write(sysconfig.get_paths()["purelib"] + "\n")
        package = os.path.join(folder, "workflow.tar.gz")
        files.copy(workflow, package)
        install = subprocess.run(
            [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps"]
            + ["--no-build-isolation"]
            + ["--no-index", package],
            capture_output=True,
            text=True,
            cwd=folder,
        )
        if install.returncode:
            raise RuntimeError(f"pip could not install the staged package:\n{install.stderr}")
        return python


def _location(url: str) -> str:
    """storage.googleapis.com/BUCKET/PATH -> gs://BUCKET/PATH, as workers resolve it."""
    return "gs://" + re.sub(r"^(https?://)?storage\.googleapis\.com/", "", url).lstrip("/")


def _integers(options: dict) -> dict:
    """REST JSON turns integer options into floats (1.0); Beam's parser wants integers."""
    return {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in options.items()
    }
