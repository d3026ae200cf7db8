"""People's answers, written as labelled data the moment they are given.

    LABELS/answers.jsonl            one line per answer or undo, appended, never rewritten
    LABELS/<digit>/<sha256>.<ext>   the input's original bytes, as scored, for 0-9
    LABELS/not_a_digit/<sha256>.<ext>

The image-folder layout is what Keras' `image_dataset_from_directory` and TFDS'
`ImageFolder` read. Every change happens under an exclusive lock on LABELS/.lock
(`fcntl.flock`), so two reviewers (two servers, or two tabs of one) never lose or
overwrite each other's lines; each line is written whole and flushed to disk before the
answer is acknowledged, and an image lands under a temporary name and is renamed into
place, so a killed server leaves no half-written file. An undo appends a line naming the
answer it takes back and removes that answer's image unless another live answer gives the
same input the same label. On start, the log is read again: what was answered stays
answered.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass

from common import files

ANSWERS_FILE = "answers.jsonl"
LOCK_FILE = ".lock"
NOT_A_DIGIT = "not_a_digit"
SKIP = "skip"
ANSWERS = (*(str(d) for d in range(10)), NOT_A_DIGIT, SKIP)


@dataclass(frozen=True)
class Answer:
    id: str
    key: str
    input_sha256: str
    answer: str  # "0".."9", "not_a_digit" or "skip"
    reviewer: str
    at: float


class Answers:
    """The answers kept in one labels folder (local)."""

    def __init__(self, folder: str):
        if not files.is_local(folder):
            raise ValueError(
                f"--labels {folder}: give a local folder (answers are locked and appended "
                "there as they come; copy it to a bucket afterwards)"
            )
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.log = os.path.join(folder, ANSWERS_FILE)

    @contextlib.contextmanager
    def _locked(self):
        with open(os.path.join(self.folder, LOCK_FILE), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def live(self) -> list[Answer]:
        """Every answer not undone, in the order given (read from the log)."""
        answers, undone = {}, set()
        if os.path.exists(self.log):
            with open(self.log) as handle:
                for line in handle:
                    if not line.endswith("\n"):
                        break  # a line cut short by a kill was never acknowledged
                    entry = json.loads(line)
                    if "undo" in entry:
                        undone.add(entry["undo"])
                    else:
                        answers[entry["id"]] = Answer(
                            entry["id"], entry["key"], entry["input_sha256"], entry["answer"],
                            entry.get("reviewer", ""), entry["at"],
                        )  # fmt: skip
        return [a for i, a in answers.items() if i not in undone]

    def give(self, item, answer: str, reviewer: str, original: bytes | None, ext: str) -> Answer:
        """Records `answer` for a queue item (review.queue.Item), and its image for a
        label; returns the answer."""
        if answer not in ANSWERS:
            raise ValueError(f"answer {answer!r}: give one of {', '.join(ANSWERS)}")
        given = Answer(uuid.uuid4().hex, item.key, item.input_sha256, answer, reviewer, time.time())
        with self._locked():
            if answer != SKIP and original is not None:
                self._write_image(answer, item.input_sha256, ext, original)
            self._append(
                {**given.__dict__, "predicted": item.digit, "status": item.status,
                 "calibrated_confidence": item.calibrated_confidence, "model": item.model}
            )  # fmt: skip
        return given

    def undo(self, reviewer: str) -> Answer | None:
        """Takes back `reviewer`'s last live answer (None: there is none)."""
        with self._locked():
            live = self.live()
            mine = [a for a in live if a.reviewer == reviewer]
            if not mine:
                return None
            last = mine[-1]
            self._append({"undo": last.id, "reviewer": reviewer, "at": time.time()})
            still = [a for a in live if a.id != last.id]
            same = any(
                a.input_sha256 == last.input_sha256 and a.answer == last.answer for a in still
            )
            if last.answer != SKIP and not same:
                for name in os.listdir(self._label_dir(last.answer)):
                    if name.split(".")[0] == last.input_sha256:
                        os.remove(os.path.join(self._label_dir(last.answer), name))
            return last

    def _label_dir(self, answer: str) -> str:
        return os.path.join(self.folder, answer)

    def _write_image(self, answer: str, digest: str, ext: str, data: bytes) -> None:
        folder = self._label_dir(answer)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{digest}.{ext}")
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def _append(self, entry: dict) -> None:
        """One whole line, on disk before it counts; a tail cut short by a kill is dropped
        first (it was never acknowledged)."""
        if os.path.exists(self.log):
            with open(self.log, "rb+") as handle:
                data = handle.read()
                if data and not data.endswith(b"\n"):
                    handle.truncate(data.rfind(b"\n") + 1)
        with open(self.log, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
