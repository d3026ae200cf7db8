"""Reading and writing the jobs' files, local paths and gs:// alike, through Beam's FileSystems.

Every job goes through these few functions, so a path is a path wherever it points.
Files are opened uncompressed: Beam would otherwise un-gzip a `.gz` by its name.
"""

from __future__ import annotations

import hashlib
import json
import time

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_CHUNK = 1 << 24


def join(directory: str, *names: str) -> str:
    """`directory/name/...`; a trailing slash on `directory` is ignored."""
    return FileSystems.join(directory.rstrip("/"), *names)


def base_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def is_local(path: str) -> bool:
    return "://" not in path


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def open_read(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_bytes(path: str) -> bytes:
    with open_read(path) as handle:
        return handle.read()


def write_bytes(path: str, payload: bytes, mime_type: str = "application/octet-stream") -> None:
    with FileSystems.create(path, mime_type=mime_type) as handle:
        handle.write(payload)


def read_json(path: str):
    return json.loads(read_bytes(path))


def write_json(path: str, payload) -> None:
    write_bytes(path, json.dumps(payload, indent=2).encode(), mime_type="application/json")


def write_json_to(payload, path: str) -> None:
    """`write_json` with the payload first, for `beam.Map(write_json_to, path)`."""
    write_json(path, payload)


def sha256_file(path: str) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open_read(path) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def delete(path: str, missing_ok: bool = False) -> None:
    if missing_ok and not FileSystems.exists(path):
        return
    FileSystems.delete([path])


def match(pattern: str) -> list:
    """The metadata (path, size_in_bytes) of every file `pattern` matches; [] for none."""
    return FileSystems.match([pattern])[0].metadata_list


def utc_timestamp(seconds: float | None = None) -> str:
    """`2026-11-25T02:15:00Z`: the one timestamp format in every file the jobs write."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
