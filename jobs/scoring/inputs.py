"""Listing the scoring job's inputs once, in the driver, with memory that does not grow
with their number.

Each pattern is listed once (a local glob streams; a gs:// listing is one Beam match), and
every file is, as it comes:
- counted in the run's fingerprint: a hash of the model and of the multiset of (path, size),
  independent of listing order, that `_SUCCESS` keeps so a rerun of the same night is
  recognised;
- written, for images, into batch lists: small files of JSON lines, one batch of paths per
  line, that the pipeline reads (ReadBatchLists); TFRecord shards are kept in a list.
A file matched by two patterns is one input (a set of 16-byte digests, kept only when
there are several patterns). A pattern that matches nothing is an error.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field

from common import files

BATCHES_PER_LIST = 64
_MODULUS = 1 << 256


def is_tfrecord(path: str) -> bool:
    return ".tfrecord" in files.base_name(path)


def iter_matches(pattern: str):
    """(path, size) of each file a glob matches, as they are found; size -1 for one that
    cannot be read (a broken link), which must still reach the errors output.

    Local globs go through Python's glob (`**` recurses), not Beam's, which quietly skips
    files it cannot stat."""
    if not files.is_local(pattern):
        yield from ((m.path, m.size_in_bytes) for m in files.match(pattern))
        return
    for path in glob.iglob(os.path.expanduser(pattern), recursive=True):
        try:
            found = os.stat(path)
        except OSError:
            yield os.path.abspath(path), -1
            continue
        if not stat.S_ISDIR(found.st_mode):
            yield os.path.abspath(path), found.st_size


@dataclass
class InputList:
    fingerprint: str
    files: int = 0  # inputs matched: image files and TFRecord shards
    images: int = 0
    batch_lists: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)


class _Fingerprint:
    """Order-independent: the sum of the entries' hashes, with their count and the model."""

    def __init__(self, model_id: str):
        self.model_id, self.total, self.count = model_id, 0, 0

    def add(self, path: str, size: int) -> None:
        entry = hashlib.sha256(f"{path}\0{size}".encode()).digest()
        self.total = (self.total + int.from_bytes(entry, "big")) % _MODULUS
        self.count += 1

    def hexdigest(self) -> str:
        digest = hashlib.sha256(f"{self.model_id}\0{self.count}\0{self.total:064x}".encode())
        return "sha256:" + digest.hexdigest()


class _BatchListWriter:
    def __init__(self, folder: str, batch_size: int):
        self.folder, self.batch_size = folder, batch_size
        self.batch: list[str] = []
        self.lines: list[str] = []
        self.written: list[str] = []

    def add(self, path: str) -> None:
        self.batch.append(path)
        if len(self.batch) == self.batch_size:
            self._end_batch()

    def _end_batch(self) -> None:
        if self.batch:
            self.lines.append(json.dumps(self.batch, ensure_ascii=False))
            self.batch = []
        if len(self.lines) == BATCHES_PER_LIST:
            self._write()

    def _write(self) -> None:
        if self.lines:
            path = files.join(self.folder, f"images-{len(self.written):05d}.jsonl")
            files.write_bytes(path, ("\n".join(self.lines) + "\n").encode())
            self.written.append(path)
            self.lines = []

    def close(self) -> list[str]:
        self._end_batch()
        self._write()
        return self.written


def list_inputs(patterns, model_id: str, folder: str, batch_size: int) -> InputList:
    """Lists every pattern once; image batches go to lists in `folder` (see module doc)."""
    files.make_dirs(folder)
    writer, fingerprint = _BatchListWriter(folder, batch_size), _Fingerprint(model_id)
    seen: set[bytes] | None = set() if len(patterns) > 1 else None
    result = InputList(fingerprint="")
    for pattern in patterns:
        matched = 0
        for path, size in iter_matches(pattern):
            matched += 1
            if seen is not None:
                key = hashlib.blake2b(path.encode(), digest_size=16).digest()
                if key in seen:
                    continue
                seen.add(key)
            fingerprint.add(path, size)
            if is_tfrecord(path):
                result.records.append(path)
            else:
                writer.add(path)
                result.images += 1
        if not matched:
            raise ValueError(f"--input {pattern!r} matches no files")
    result.batch_lists = writer.close()
    result.files, result.fingerprint = fingerprint.count, fingerprint.hexdigest()
    return result
