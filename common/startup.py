"""A quiet start for the jobs: TensorFlow's native start-up lines stay off the terminal.

On a CPU machine, importing TensorFlow 2.21 prints absl's pre-initialisation notice, INFO
lines (oneDNN, the CPU instruction set) and the CUDA probe's "Could not find cuda
drivers" and "failed call to cuInit" error, whatever TF_CPP_MIN_LOG_LEVEL says: they are
written by native code straight to file descriptor 2. When a job runs as a program
(`digits JOB`, `python -m jobs.JOB`), stderr goes through a filter that drops exactly
those lines and passes everything else on; `--verbose` turns the filter off.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to"
    rb" STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] .*"  # native INFO lines
    rb"|E\d{4} [\d:.]+ +\d+ (cuda_\w+|cudart_stub)\.cc:\d+\] .*"  # the CUDA probe
    rb"|To enable the following instructions: .*rebuild TensorFlow with the appropriate"
    rb" compiler flags\.)\r?\n?$"
)
_installed = False


def is_noise(line: bytes) -> bool:
    return bool(NOISE.match(line))


def quiet_native_startup(argv: list[str] | None = None) -> None:
    """Filters fd 2 for the rest of this process (once), unless `--verbose` is in argv."""
    global _installed
    argv = sys.argv if argv is None else argv
    if _installed or "--verbose" in argv:
        return
    _installed = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # and TF's own later INFO/WARNING
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, terminal), daemon=True)
    pump.start()
    atexit.register(_restore, terminal, pump)


def _pump(read_end: int, terminal: int) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as lines:
        for line in iter(lines.readline, b""):
            if not is_noise(line):
                try:
                    os.write(terminal, line)
                except OSError:  # the terminal is gone: keep draining, never block writers
                    pass


def _restore(terminal: int, pump: threading.Thread) -> None:
    """At exit: everything written so far reaches the terminal before the process ends."""
    sys.stderr.flush()
    os.dup2(terminal, 2)  # closes the pipe's last writer in this process: the pump ends
    pump.join(timeout=5)


def show_job_logs() -> None:
    """The jobs' own log lines (logger `digits.*`, e.g. progress) at INFO on stderr, once."""
    logger = logging.getLogger("digits")
    if any(getattr(handler, "_digits", False) for handler in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler._digits = True
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # Beam may give the root logger a handler: one line, not two
