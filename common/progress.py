"""Progress a person can follow: a log line every `interval` seconds from each worker
process of a long Beam job, with what is done (of how many), the rate, the errors so far
and the time left. Beam's own metrics are not readable while a DirectRunner job runs, so
the workers count for themselves; on Dataflow the lines go to the job's logs.

    log = ProgressLog(expected=1_000_000, interval=30, unit="inputs")
    log.count(done=256)     # in a DoFn, after each batch
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

LOGGER = "digits.progress"


class ProgressLog:
    """Counts in this process and logs a line when `interval` seconds have passed."""

    _lock = threading.Lock()
    _state: dict = {}

    def __init__(self, expected: int, interval: float, unit: str = "inputs"):
        self.expected, self.interval, self.unit = expected, interval, unit
        self.run = uuid.uuid4().hex  # one count per run, even for runs in one process

    def count(self, done: int = 0, failed: int = 0) -> None:
        with self._lock:
            state = self._state.setdefault(
                self.run, {"done": 0, "failed": 0, "started": time.monotonic(), "logged": 0.0}
            )
            state["done"] += done
            state["failed"] += failed
            now = time.monotonic()
            if now - max(state["logged"], state["started"]) >= self.interval:
                state["logged"] = now
                logging.getLogger(LOGGER).info(self._line(state, now))

    def _line(self, state: dict, now: float) -> str:
        done = state["done"] + state["failed"]
        rate = done / max(now - state["started"], 1e-9)
        left = max(self.expected - done, 0) / rate if rate else float("inf")
        share = f" of {self.expected:,} ({done / self.expected:.1%})" if self.expected else ""
        return (
            f"progress: {done:,} {self.unit}{share} done, {rate:,.0f}/s, {state['failed']:,} "
            f"errors so far, about {_duration(left)} left"
        )


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "? s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
