"""The review server over HTTP: answers land as labelled data at once, undo takes them
back, a killed server or a second reviewer loses nothing, bad requests are refused."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from review import queue
from review.answers import ANSWERS_FILE, Answers
from tests.conftest import REPO
from tests.review.conftest import DATE, Client, write_night


def _log(labels: Path) -> list[dict]:
    return [json.loads(line) for line in (labels / ANSWERS_FILE).read_text().splitlines()]


def _images(labels: Path) -> dict[str, str]:
    """label -> file name, every image in the labels folder."""
    return {
        str(p.relative_to(labels)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(labels.rglob("*.png"))
    }


def test_the_queue_puts_review_first_then_not_a_digit_least_confident_first(night):
    items = queue.load(night).items
    statuses = [i.status for i in items]
    assert statuses == sorted(statuses, key=queue.STATUS_ORDER.index)
    reviews = [i.calibrated_confidence for i in items if i.status == "review"]
    assert reviews == sorted(reviews) and len(items) == 6


def test_an_accepted_input_put_into_the_review_list_comes_last(night):
    """A team may add accepted inputs to spot-check them (make bench-loop's random sample)."""
    review = Path(night) / "review-00000-of-00001.jsonl"
    rows = [json.loads(line) for line in review.read_text().splitlines()]
    rows[0] = {**rows[0], "status": "accepted", "calibrated_confidence": 0.01}
    review.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = queue.load(night).items
    assert [i.status for i in items][-1] == "accepted" and len(items) == 6


def test_an_answer_is_written_as_labelled_data_and_undo_takes_it_back(running, night):
    client, labels = running
    first = client.next()
    assert first["answered"] == 0 and first["total"] == 6
    item = first["item"]
    status, answered = client.post("/api/answer", {"index": item["index"], "answer": "3",
                                                   "reviewer": "ann"})  # fmt: skip
    assert status == 200 and answered["answered"] == 1
    original = Path(queue.load(night).items[item["index"]].key).read_bytes()
    image = labels / "3" / f"{item['input_sha256']}.png"
    assert image.read_bytes() == original  # the original bytes, as scored
    (entry,) = _log(labels)
    assert entry["answer"] == "3" and entry["reviewer"] == "ann"
    assert entry["input_sha256"] == item["input_sha256"] and entry["predicted"] == item["digit"]
    assert entry["status"] == item["status"] and entry["model"] == "sha256:0123456789abcdef"
    assert client.next()["item"]["index"] != item["index"]  # the next one, at once

    status, undone = client.post("/api/undo", {"reviewer": "ann"})
    assert status == 200 and undone["undone"]["id"] == entry["id"]
    assert not image.exists()  # an undone answer leaves no image behind
    assert _log(labels)[-1]["undo"] == entry["id"]
    assert client.next()["item"]["index"] == item["index"]  # to be answered again


def test_not_a_digit_and_skip(running):
    client, labels = running
    one = client.next()["item"]
    client.post("/api/answer", {"index": one["index"], "answer": "not_a_digit", "reviewer": "a"})
    two = client.next("a")["item"]
    client.post("/api/answer", {"index": two["index"], "answer": "skip", "reviewer": "a"})
    assert (labels / "not_a_digit" / f"{one['input_sha256']}.png").exists()
    assert list(_images(labels)) == [f"not_a_digit/{one['input_sha256']}.png"]  # skip: no image
    assert [e["answer"] for e in _log(labels)] == ["not_a_digit", "skip"]


def test_the_night_at_a_glance(running):
    client, _ = running
    status, body = client.get("/api/night")
    night = json.loads(body)
    assert status == 200 and night["date"] == DATE
    assert night["statuses"] == {"accepted": 10, "review": 5, "not_a_digit": 1}
    assert night["drift"]["levels"] == [{"histogram": "ink", "against": "reference", "level": "ok"}]
    assert [n["date"] for n in night["history"]] == ["2026-11-24", DATE]
    assert abs(sum(v for k, v in night["history"][0].items() if k != "date") - 1) < 1e-9


def test_bad_requests_are_refused_with_a_clear_status(running):
    client, labels = running
    for path in ("/api/original/../../../etc/passwd", "/static/../server.py", "/etc/passwd",
                 "/api/original/999", "/static/queue.py", "/api/seen/-1"):  # fmt: skip
        status, body = client.get(path)
        assert status == 404, path
        assert "error" in json.loads(body)
    assert client.post("/api/answer", None, raw=b"{not json")[0] == 400
    assert client.post("/api/answer", None, raw=b"[1, 2]")[0] == 400
    assert client.post("/api/answer", None, raw=b" " * 5000)[0] == 413
    assert client.post("/api/answer", {"index": 0, "answer": "12", "reviewer": "a"})[0] == 400
    assert client.post("/api/answer", {"index": 99, "answer": "1", "reviewer": "a"})[0] == 400
    assert client.post("/api/answer", {"index": 0, "answer": "1", "reviewer": "../x"})[0] == 400
    assert client.post("/api/delete", {})[0] == 404
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(client.url + "/", method="PUT"), timeout=10)
    assert refused.value.code == 405
    assert not (labels / ANSWERS_FILE).exists()  # nothing refused was written


def test_images_served_are_the_original_and_the_28x28_the_model_saw(running, night):
    client, _ = running
    item = client.next()["item"]
    status, original = client.get(f"/api/original/{item['index']}")
    assert status == 200
    assert original == Path(queue.load(night).items[item["index"]].key).read_bytes()
    status, seen = client.get(f"/api/seen/{item['index']}")
    from io import BytesIO

    from PIL import Image

    assert status == 200 and Image.open(BytesIO(seen)).size == (28, 28)


def test_two_reviewers_at_once_lose_nothing(running, night, tmp_path):
    client, labels = running
    # A second server on the same labels folder, as a second person would start it.
    other = Answers(str(labels))
    items = queue.load(night).items

    def answer_all(who, give):
        for n in range(20):
            give(items[n % len(items)], str(n % 10), who)

    def over_http(item, value, who):
        assert client.post("/api/answer", {"index": item.index, "answer": value,
                                           "reviewer": who})[0] == 200  # fmt: skip

    def direct(item, value, who):
        other.give(item, value, who, Path(item.key).read_bytes(), "png")

    threads = [threading.Thread(target=answer_all, args=(f"r{i}", over_http)) for i in range(3)]
    threads.append(threading.Thread(target=answer_all, args=("local", direct)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = _log(labels)
    assert len(log) == 80 and len({e["id"] for e in log}) == 80  # every line, whole
    assert {e["reviewer"] for e in log} == {"r0", "r1", "r2", "local"}


def test_a_second_reviewer_is_given_another_input_than_the_one_on_screen(running):
    client, _ = running
    assert client.next("ann")["item"]["index"] != client.next("bob")["item"]["index"]


def test_a_killed_server_loses_no_answer_and_resumes_where_it_stopped(tmp_path):
    night = write_night(tmp_path)
    labels = tmp_path / "labels"

    def start():
        process = subprocess.Popen(
            [sys.executable, "-m", "jobs.review", "--scores", night, "--labels", str(labels),
             "--port", "0"],
            cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line  # it listens on 127.0.0.1 unless told otherwise, and says where
        return process, Client(url.group(0).rstrip("/"))

    process, client = start()
    answered = []
    for value in ("4", "not_a_digit"):
        item = client.next()["item"]
        assert client.post("/api/answer", {"index": item["index"], "answer": value,
                                           "reviewer": "ann"})[0] == 200  # fmt: skip
        answered.append(item["index"])
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process, client = start()
    try:
        resumed = client.next()
        assert resumed["answered"] == 2 and resumed["item"]["index"] not in answered
        assert [e["answer"] for e in _log(labels)] == ["4", "not_a_digit"]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_an_answer_cut_short_by_a_kill_never_counts(night, tmp_path):
    labels = tmp_path / "labels"
    answers = Answers(str(labels))
    item = queue.load(night).items[0]
    answers.give(item, "5", "ann", Path(item.key).read_bytes(), "png")
    with open(labels / ANSWERS_FILE, "a") as handle:
        handle.write('{"id": "half')  # killed mid-line: never acknowledged
    assert [a.answer for a in answers.live()] == ["5"]
    answers.give(item, "6", "ann", Path(item.key).read_bytes(), "png")
    assert [a.answer for a in answers.live()] == ["5", "6"]  # the torn tail dropped first


def test_a_partition_that_is_not_finished_is_refused(tmp_path, capsys):
    from jobs import review

    part = tmp_path / "scores" / f"dt={DATE}"
    part.mkdir(parents=True)
    assert review.main(["--scores", str(part), "--labels", str(tmp_path / "l")]) == 2
    assert "not a finished scored partition" in capsys.readouterr().err


def test_a_night_the_scorer_wrote_opens_in_review(tiny_model, tiny_dataset, tmp_path, capsys):
    from model.data import write_pngs
    from tests.helpers import run_scorer

    write_pngs(str(tiny_dataset), "test", str(tmp_path / "in"), limit=20)
    assert run_scorer(tiny_model, tmp_path / "in" / "*.png", tmp_path / "out", date=DATE) == 0
    part = tmp_path / "out" / f"dt={DATE}"
    statuses = json.loads((part / "summary.json").read_text())["statuses"]
    waiting = statuses["review"] + statuses["not_a_digit"]
    night = queue.load(str(part))
    assert len(night.items) == waiting  # every input not accepted, none twice
    assert all(item.input_sha256 and item.model for item in night.items)
    if waiting:  # the scorer says how many wait, and the command that opens the page
        assert f"{waiting} inputs wait for review: digits review --scores {part}" in (
            capsys.readouterr().out
        )


def test_a_file_changed_since_it_was_scored_is_not_served(running, night):
    client, _ = running
    item = client.next()["item"]
    Path(queue.load(night).items[item["index"]].key).write_bytes(b"other bytes")
    assert client.get(f"/api/original/{item['index']}")[0] == 404
