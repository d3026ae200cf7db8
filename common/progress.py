"""Progress a person can follow: a log line every `interval` seconds from each worker
process of a long Beam job, with what is done (of how many), the rate, the errors so far
and the time left. Beam's own metrics are not readable while a DirectRunner job runs, so
the workers count for themselves; on Dataflow the lines go to the job's logs.

    log = ProgressLog(expected=1_000_000, interval=30, unit="inputs")
    log.count(done=256)     # in a DoFn, after each batch

The in-process jobs (training, evaluation) say where they are with `Steps`: a line when
each step starts, and, inside a long step, a line at most every `interval` seconds with
how far it is and the time left.

    steps = Steps("digits evaluate")
    steps.start("the corruption suite")
    steps.tick(done=3, total=15, unit="corruptions")
"""

from __future__ import annotations

import logging
import sys
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


class Steps:
    """Progress lines of an in-process job, on standard error (see the module doc)."""

    def __init__(self, job: str, interval: float = 30.0, stream=None):
        self.job, self.interval, self.stream = job, interval, stream
        self.started = self.step_started = self.last = time.monotonic()
        self.what = ""

    def start(self, what: str) -> None:
        now = time.monotonic()
        self.what, self.step_started, self.last = what, now, now
        self._say(f"{what} ({_duration(now - self.started)} since the start)")

    def tick(self, done: int, total: int, unit: str = "", detail: str = "") -> None:
        """Within the current step: `done` of `total` so far; a line if `interval` passed."""
        now = time.monotonic()
        if now - self.last < self.interval or not total:
            return
        self.last = now
        rate = done / max(now - self.step_started, 1e-9)
        left = (total - done) / rate if rate else float("inf")
        where = f"{done:,} of {total:,}{' ' + unit if unit else ''} ({done / total:.0%})"
        self._say(f"{self.what}: {where}{detail}, about {_duration(left)} left")

    def _say(self, line: str) -> None:
        print(f"{self.job}: {line}", file=self.stream or sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "? s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
