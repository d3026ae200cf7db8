"""What every benchmark shares: timing a quiet subprocess, saving results."""

from __future__ import annotations

import json
import os
import subprocess
import time

REPORT_DIR = "out/bench"


def timed(command: list[str]) -> float:
    """Wall seconds of `command`, run to success with its output hidden."""
    started = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return time.perf_counter() - started


def save(name: str, payload: dict) -> None:
    """Writes out/bench/NAME.json with today's date added."""
    os.makedirs(REPORT_DIR, exist_ok=True)
    payload["date"] = time.strftime("%Y-%m-%d")
    with open(os.path.join(REPORT_DIR, f"{name}.json"), "w") as handle:
        json.dump(payload, handle, indent=2)
