"""Listing the scoring job's inputs once, in the driver, with memory that does not grow
with their number.

Each pattern is listed once (a local glob streams; a gs:// listing is one Beam match), and
every file is, as it comes:
- counted in the run's fingerprint: a hash of the model and of the multiset of (path,
  size, modification time), independent of listing order, that `_SUCCESS` keeps so a
  rerun of the same night is recognised (and a file rewritten since is rescored);
- written, for images, into batch lists: small files of JSON lines, one batch of paths per
  line, that the pipeline reads (transforms.ReadInputs); TFRecord shards are kept in a list.
A file matched by two patterns is one input (a set of 16-byte digests, kept only when
there are several patterns), and so is a file reached twice through links (see
_local_matches for the rule). A pattern that matches nothing is an error.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field

from common import files

BATCHES_PER_LIST = 64
_MODULUS = 1 << 256


def is_tfrecord(path: str) -> bool:
    return ".tfrecord" in files.base_name(path)


def iter_matches(pattern: str):
    """(path, size, mtime) of each file a glob matches, as they are found; size -1 for one
    that cannot be read (a broken link), which must still reach the errors output.

    Local globs are walked here (see _local_matches), not by Beam, which quietly skips
    files it cannot stat."""
    if not files.is_local(pattern):
        for m in files.match(pattern):
            yield m.path, m.size_in_bytes, m.last_updated_in_seconds
        return
    yield from _local_matches(os.path.abspath(os.path.expanduser(pattern)))


def _split_pattern(pattern: str) -> tuple[str, str]:
    """(the folder before the first wildcard, the rest of the pattern)."""
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return "/".join(parts[:i]) or "/", "/".join(parts[i:])
    return os.path.dirname(pattern) or "/", os.path.basename(pattern)


def _regex(relative: str) -> re.Pattern:
    """The glob's rule as a regex on '/'-separated relative paths: `*`, `?` and `[...]`
    stay within one name, `**` is any number of folders, and a wildcard never matches a
    leading '.' (as Python's glob)."""
    out = []
    parts = relative.split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(r"(?:(?!\.)[^/]+/)*" if not last else r"(?:(?!\.)[^/]+/)*(?!\.)[^/]+")
            continue
        piece = "" if part.startswith(".") else r"(?!\.)"
        out.append(piece + _name_regex(part) + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z")


def _name_regex(name: str) -> str:
    """One path component's glob (`*`, `?`, `[...]`, `[!...]`) as a regex within one name."""
    out, i = [], 0
    while i < len(name):
        char = name[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := name.find("]", i + 2)) > 0:
            body = name[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _local_matches(pattern: str):
    """A local glob, with links handled so that each file is scored once:
    - `**` follows a link to a folder only into a folder not visited yet and outside the
      pattern's own tree (a `self -> .` loop or a `latest -> 2026-11-05` link inside the
      tree adds nothing; a link to a folder elsewhere is walked once);
    - a file reached through a link whose real path the pattern also matches directly is
      left to that path; files reached through links are otherwise taken once each."""
    base, relative = _split_pattern(pattern)
    regex = _regex(relative)
    base_real = os.path.realpath(base)
    found = _walk(base, base_real, relative, regex) if "**" in relative else _globbed(pattern)
    linked: set[str] = set()
    for path, via_link in found:
        if via_link:
            real = os.path.realpath(path)
            inside = real.startswith(base_real.rstrip("/") + "/")
            direct = inside and regex.match(os.path.relpath(real, base_real))
            if direct and os.path.exists(real):
                continue  # the pattern reaches this file by its own path
            if real in linked:
                continue
            linked.add(real)
        try:
            found_stat = os.stat(path)
        except OSError:
            yield path, -1, 0.0
            continue
        if not stat.S_ISDIR(found_stat.st_mode):
            yield path, found_stat.st_size, found_stat.st_mtime_ns / 1e9


def _globbed(pattern: str):
    """(path, reached through a link) for a pattern without `**`."""
    real_folders: dict[str, bool] = {}
    for path in glob.iglob(pattern):
        folder = os.path.dirname(path)
        if folder not in real_folders:
            real_folders[folder] = os.path.realpath(folder) != os.path.abspath(folder)
        yield path, real_folders[folder] or os.path.islink(path)


def _walk(base: str, base_real: str, relative: str, regex: re.Pattern):
    """(path, reached through a link) for every file under `base` that `regex` matches,
    following folder links only into real folders not visited yet and outside
    `base_real` (see _local_matches)."""
    hidden = relative.startswith(".") or "/." in relative
    visited = {base_real}
    inside = base_real.rstrip("/") + "/"
    stack = [(base, "", False)]  # folder, its path relative to base ("" or "a/b/"), via a link
    while stack:
        folder, prefix, via = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                if regex.match(prefix + entry.name):
                    yield entry.path, via or entry.is_symlink()
                continue
            if entry.name.startswith(".") and not hidden:
                continue
            link = via or entry.is_symlink()
            if link:
                real = os.path.realpath(entry.path)
                if real in visited or real.startswith(inside):
                    continue
                visited.add(real)
            stack.append((entry.path, f"{prefix}{entry.name}/", link))


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

    def add(self, path: str, size: int, mtime: float) -> None:
        entry = hashlib.sha256(f"{path}\0{size}\0{mtime:.6f}".encode()).digest()
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
        for path, size, mtime in iter_matches(pattern):
            matched += 1
            if seen is not None:
                key = hashlib.blake2b(path.encode(), digest_size=16).digest()
                if key in seen:
                    continue
                seen.add(key)
            fingerprint.add(path, size, mtime or 0.0)
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
