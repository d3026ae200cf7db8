"""A scored night made by hand (a partition as `digits score` writes it, with real image
files), and a review server on it: the review page's tests need no model."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.request

import pytest

from common import schema
from review import queue, server
from review.answers import Answers
from tests.fakes import digit_like_images, encoded, enlarge

DATE = "2026-11-25"


def write_night(root, count: int = 6) -> str:
    """ROOT/in/*.png and ROOT/scores/dt=DATE (plus the night before, for the chart)."""
    inputs = root / "in"
    inputs.mkdir(parents=True)
    digits, labels = digit_like_images(count, seed=3)
    rows = []
    for i, digit in enumerate(digits):
        data = encoded(enlarge(digit, 56) if i % 2 else digit)
        path = inputs / f"form-{i}.png"
        path.write_bytes(data)
        status = "not_a_digit" if i == count - 1 else "review"
        rows.append({
            "key": str(path), "digit": int(labels[i]), "confidence": 0.5,
            "probabilities": [0.05] * 10, "model": "sha256:0123456789abcdef",
            "calibrated_confidence": round(0.3 + 0.1 * i, 6), "status": status,
            "reasons": ["low_confidence"] if status == "review" else ["little_ink"],
            "input_sha256": hashlib.sha256(data).hexdigest(), "run_id": "r",
        })  # fmt: skip
    nights = {
        DATE: {"accepted": 10, "review": count - 1, "not_a_digit": 1},
        "2026-11-24": {"accepted": 12, "review": 3, "not_a_digit": 1},
    }
    for date, statuses in nights.items():
        part = root / "scores" / f"dt={date}"
        part.mkdir(parents=True)
        summary = {"inputs": sum(statuses.values()), "statuses": statuses, "failed": 0,
                   "reasons": {"low_confidence": count - 1, "little_ink": 1}}  # fmt: skip
        (part / schema.SUMMARY_FILE).write_text(json.dumps(summary))
        drift = {"alarm": False, "breaches": [], "comparisons": [
            {"histogram": "ink", "against": "reference", "level": "ok"}]}  # fmt: skip
        (part / schema.DRIFT_FILE).write_text(json.dumps(drift))
        (part / schema.SUCCESS_FILE).write_text("{}")
    part = root / "scores" / f"dt={DATE}"
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (part / "review-00000-of-00001.jsonl").write_text(lines)
    return str(part)


@pytest.fixture
def night(tmp_path) -> str:
    return write_night(tmp_path)


class Client:
    """Speaks to a review server as the page does."""

    def __init__(self, url: str):
        self.url = url

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post(self, path: str, body, raw: bytes | None = None) -> tuple[int, dict]:
        data = raw if raw is not None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def next(self, reviewer: str = "ann") -> dict:
        status, body = self.get(f"/api/next?reviewer={reviewer}")
        assert status == 200
        return json.loads(body)


@pytest.fixture
def running(night, tmp_path):
    """A review server on `night` in this process, on a free port of 127.0.0.1."""
    labels = tmp_path / "labels"
    httpd = server.serve(server.Review(queue.load(night), Answers(str(labels))), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield Client(f"http://{host}:{port}"), labels
    httpd.shutdown()
    httpd.server_close()
