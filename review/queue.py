"""The review queue of one scored partition: what `digits review` shows, in its order.

    night = queue.load("out/scores/dt=2026-11-25")
    night.items[0]   # Item(index, key, digit, calibrated_confidence, status, reasons, ...)

Every input whose status is `review` or `not_a_digit` (the partition's review-*.jsonl),
`review` first, then `not_a_digit`, each by calibrated confidence, lowest first: a
person's answer teaches the most where the model was least sure, and the digits the model
half-read come before the pages it took for no digit at all. Rows of another status (an
accepted input a team put into the list to spot-check it) come last. The front page's figures
come from the partition's summary.json and drift.json and from the summaries of the
nights beside it (the last 14).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from common import files, schema

STATUS_ORDER = ("review", "not_a_digit")
NIGHTS_SHOWN = 14


@dataclass(frozen=True)
class Item:
    index: int
    key: str  # the input's path (or TFRecord key) as the scorer wrote it
    digit: int
    calibrated_confidence: float
    status: str
    reasons: tuple[str, ...]
    input_sha256: str
    model: str


@dataclass(frozen=True)
class Night:
    partition: str
    date: str | None
    items: tuple[Item, ...]
    summary: dict
    drift: dict
    history: tuple[dict, ...]  # the last nights' status shares, oldest first


def _rank(status: str) -> int:
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)


def load(partition: str) -> Night:
    """Reads a finished partition; refuses (ValueError) one that is not."""
    if not files.exists(files.join(partition, schema.SUCCESS_FILE)):
        raise ValueError(
            f"--scores {partition}: not a finished scored partition (no {schema.SUCCESS_FILE}); "
            "give a folder `digits score` finished, e.g. out/scores/dt=2026-11-25"
        )
    if files.match(files.join(partition, "review-*.csv")):
        raise ValueError(
            f"--scores {partition}: its review file is CSV; `digits review` reads the JSON "
            "lines `digits score` writes by default (score the night again with --format jsonl)"
        )
    rows = []
    shards = sorted(m.path for m in files.match(files.join(partition, "review-*-of-*.jsonl")))
    for path in shards:
        with files.open_read(path) as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    rows.sort(key=lambda r: (_rank(r["status"]), r["calibrated_confidence"], r["key"]))
    items = tuple(
        Item(
            index=i,
            key=r["key"],
            digit=int(r["digit"]),
            calibrated_confidence=float(r["calibrated_confidence"]),
            status=r["status"],
            reasons=tuple(r.get("reasons") or ()),
            input_sha256=r.get("input_sha256", ""),
            model=r.get("model", ""),
        )
        for i, r in enumerate(rows)
    )
    summary = files.read_json(files.join(partition, schema.SUMMARY_FILE))
    drift_path = files.join(partition, schema.DRIFT_FILE)
    drift = files.read_json(drift_path) if files.exists(drift_path) else {}
    date = _date(partition)
    return Night(partition, date, items, summary, drift, _history(partition, date))


def _date(partition: str) -> str | None:
    found = re.search(r"dt=(\d{4}-\d{2}-\d{2})/?$", partition)
    return found.group(1) if found else None


def _history(partition: str, date: str | None) -> tuple[dict, ...]:
    """Status shares of up to NIGHTS_SHOWN nights up to this one (its siblings dt=...)."""
    if date is None:
        return ()
    parent = partition.rstrip("/").rsplit("/", 1)[0]
    nights = []
    for path in (m.path for m in files.match(files.join(parent, "dt=*", schema.SUMMARY_FILE))):
        night = _date(path.rsplit("/", 1)[0])
        if night and night <= date:
            nights.append((night, path))
    shown = []
    for night, path in sorted(nights)[-NIGHTS_SHOWN:]:
        statuses = files.read_json(path).get("statuses", {})
        total = max(sum(statuses.values()), 1)
        shown.append({"date": night, **{k: v / total for k, v in statuses.items()}})
    return tuple(shown)
