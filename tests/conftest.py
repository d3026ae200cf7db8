"""Shared fixtures (tiny datasets and models the tests make, the real MNIST files) and the
helper that starts a job, waits for a condition and kills it."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from common import files
from pipeline import idx
from tests.fakes import write_tiny_mnist

REPO = Path(__file__).resolve().parents[1]
# The installed packages, in the order the data flows through them (setup.py ships them).
PACKAGES = (
    "common", "pipeline", "model", "monitoring", "training", "evaluation", "scoring",
    "review", "jobs",
)  # fmt: skip


def made_once(tmp_path_factory, name: str, make: Callable[[Path], Path]) -> Path:
    """What `make(folder)` returns, made once per test run even on several workers
    (`make test` runs two, pytest-xdist): the first to ask makes it under a lock, the
    others wait for it and reuse it. A half-made one (a killed run) is made again."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(str(make(folder)))
    return Path(done.read_text())


def kill_job_when(
    module_argv: list[str], condition: Callable[[], bool], timeout: float = 120, env=None
) -> None:
    """Runs `python -m MODULE ARGS...` from the checkout, waits until `condition()` holds
    (polled, never a fixed sleep), then SIGKILLs it. Fails if the job ends or the time
    runs out first: such a test would not have killed anything."""
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", *module_argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            if process.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-1500:]
                pytest.fail(
                    f"{module_argv[0]} ended (exit {process.returncode}) before the kill:\n{tail}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{module_argv[0]}: condition not reached in {timeout} s")
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_port(port: int, process: subprocess.Popen, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{name} did not start on 127.0.0.1:{port}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator():
    """A real GCS server (gcp-storage-emulator, installed by `make setup`) on 127.0.0.1 for
    the whole run; this process and every job it starts reach it by STORAGE_EMULATOR_HOST."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gcp-storage-emulator")), "start"]
        + ["--host", "127.0.0.1", "--port", str(port), "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port, server, "gcp-storage-emulator")
    previous = os.environ.get(files.EMULATOR_VARIABLE)
    os.environ[files.EMULATOR_VARIABLE] = f"http://127.0.0.1:{port}"
    files.use_emulator_without_credentials()
    yield os.environ[files.EMULATOR_VARIABLE]
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    if previous is None:
        del os.environ[files.EMULATOR_VARIABLE]
    else:
        os.environ[files.EMULATOR_VARIABLE] = previous


def make_bucket(name: str | None = None) -> str:
    """A new, empty bucket on the emulator; returns its gs:// URL."""
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "digits-test"
    bucket = client.create_bucket(name or f"test-{uuid.uuid4().hex[:12]}")
    return f"gs://{bucket.name}"


@pytest.fixture
def bucket(gcs_emulator) -> str:
    return make_bucket()


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    return write_tiny_mnist(tmp_path / "raw")


def real_mnist_dir() -> Path:
    """The real MNIST files; a test that needs them fails in CI when they are missing."""
    candidates = [os.environ.get("MNIST_DIR"), str(REPO.parent / "shared" / "data" / "mnist")]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if all((path / name).exists() for name in idx.MNIST_FILE_NAMES):
            return path
    message = f"the real MNIST files are not in MNIST_DIR or {candidates[1]}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return real_mnist_dir()


@pytest.fixture(scope="session")
def mnist_dataset(tmp_path_factory, mnist_dir) -> Path:
    """The real MNIST, preprocessed once per test session."""
    from jobs import preprocess

    def make(folder: Path) -> Path:
        preprocess.run(["--source", str(mnist_dir), "--output", str(folder / "data")])
        return folder / "data"

    return made_once(tmp_path_factory, "mnist_dataset", make)


def preprocess_tiny(
    directory: Path, train: int = 600, test: int = 200, validation: int = 100
) -> Path:
    """A small dataset in the project's format, from tiny IDX files."""
    from jobs import preprocess

    raw = write_tiny_mnist(directory / "raw", train=train, test=test)
    out = directory / "data"
    preprocess.run(
        [
            "--source",
            str(raw),
            "--output",
            str(out),
            "--no-digest-check",
            "--validation-size",
            str(validation),
            "--num-shards",
            "2",
        ]
    )
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return made_once(tmp_path_factory, "tiny_dataset", preprocess_tiny)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_dataset) -> Path:
    """A seed model trained for 2 epochs on the tiny dataset (calibrated), evaluated;
    trained in mixed bfloat16 whatever the CPU, so the float32 export is always tested."""
    from jobs import train

    def make(folder: Path) -> Path:
        argv = ["--data", str(tiny_dataset), "--output", str(folder / "model"), "--epochs", "2"]
        train.run([*argv, "--batch-size", "32", "--precision", "mixed", *TEST_CALIBRATION])
        return evaluated(folder / "model", tiny_dataset)

    return made_once(tmp_path_factory, "tiny_model", make)


# A target error a briefly trained model's validation digits can vouch for: the 0.1%
# default needs about 3,000 error-free ones under the bound rule, which a one-epoch model
# reaches only in some runs.
TEST_TARGET = ("--target-error", "0.005")
# A shape check trained in seconds on the full MNIST, on fewer damaged copies (the defaults
# take a few minutes).
TEST_SHAPE = ("--shape-check-epochs", "1", "--shape-check-members", "2",
              "--shape-check-outliers", "1500", "--check-damage-share", "0.05")  # fmt: skip
TEST_CALIBRATION = (*TEST_TARGET, *TEST_SHAPE)  # digits train's calibration, in tests
# Floors a briefly trained model passes: the gate's defaults are for the full recipes.
TEST_GATE = ("--min-accuracy", "0", "--min-class-recall", "0", "--max-ece", "1",
             "--min-corruption-accuracy", "0", "--min-accepted-share", "0",
             "--max-accepted-drop", "1")  # fmt: skip


def evaluated(
    model: Path, dataset: Path, suite_size: int = 100, per_kind: int = 20, gate=TEST_GATE
) -> Path:
    """`digits evaluate` on a model (writing its blessing.json, so the scorer takes it
    without --allow-unblessed), with small suites; the report is in model/../report."""
    from jobs import evaluate

    evaluate.run(
        [
            *("--data", str(dataset), "--model", str(model)),
            *("--output", str(model.parent / "report")),
            *("--suite-size", str(suite_size), "--suite-per-kind", str(per_kind)),
            *gate,
        ]
    )
    return model


@pytest.fixture(scope="session")
def mnist_model(tmp_path_factory, mnist_dataset) -> Path:
    """A seed model trained for one epoch on real MNIST (about 98% accurate), evaluated
    (its report: mnist_model.parent / "report")."""
    from jobs import train

    def make(folder: Path) -> Path:
        out = folder / "model"
        argv = ["--data", str(mnist_dataset), "--output", str(out), "--epochs", "1"]
        train.run([*argv, *TEST_CALIBRATION])
        return evaluated(out, mnist_dataset, suite_size=200, per_kind=20)

    return made_once(tmp_path_factory, "mnist_model", make)


@pytest.fixture(scope="session", autouse=True)
def _real_mnist_model_first(request):
    """With several workers, the first makes the real-MNIST model before its first test,
    while the others start on tests that need none; otherwise a second worker reaching a
    test that needs it sits idle for a minute while the first one trains it. A failure here
    is left to the tests that need the model, which report it themselves."""
    if os.environ.get("PYTEST_XDIST_WORKER") != "gw0":
        return
    if any("mnist_model" in getattr(item, "fixturenames", ()) for item in request.session.items):
        try:
            request.getfixturevalue("mnist_model")
        except (Exception, pytest.fail.Exception):
            pass
