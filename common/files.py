"""Reading and writing the jobs' files, local paths and gs:// alike, through Beam's FileSystems.

Every job goes through these few functions, so a path is a path wherever it points.
Files are opened uncompressed: Beam would otherwise un-gzip a `.gz` by its name.

Where TensorFlow must touch a file itself (Keras save and load, tf.data over shards), the
jobs stage through a local folder: `local_copy`, `download_tree`, `upload_tree`. (TF's own
GCS client has no endpoint override, so this also keeps every gs:// byte on one client.)

With STORAGE_EMULATOR_HOST set (a GCS emulator, e.g. `gcp-storage-emulator` on 127.0.0.1),
Beam is told there are no Google credentials to look for, so it talks to the emulator at
once instead of retrying the metadata server for half a minute.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_CHUNK = 1 << 24
EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"


def use_emulator_without_credentials() -> None:
    """With STORAGE_EMULATOR_HOST set, tells Beam not to look for Google credentials."""
    if not os.environ.get(EMULATOR_VARIABLE):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:  # Beam without its GCP extras: no gs:// at all
        return
    auth._Credentials._credentials_init = True
    auth._Credentials._credentials = None


use_emulator_without_credentials()


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


def open_write(path: str, mime_type: str = "application/octet-stream"):
    return FileSystems.create(
        path, mime_type=mime_type, compression_type=CompressionTypes.UNCOMPRESSED
    )


def read_bytes(path: str) -> bytes:
    with open_read(path) as handle:
        return handle.read()


def write_bytes(path: str, payload: bytes, mime_type: str = "application/octet-stream") -> None:
    with open_write(path, mime_type) as handle:
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


def delete_all(paths: list[str]) -> None:
    """Deletes these files (one batch request on gs://); nothing for an empty list."""
    if paths:
        FileSystems.delete(paths)


def move_all(sources: list[str], destinations: list[str]) -> None:
    """Renames files pairwise (on gs://, batched copies then deletes)."""
    if sources:
        FileSystems.rename(sources, destinations)


def make_dirs(path: str) -> None:
    """Creates a local folder (and its parents); nothing to do on gs://."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)


def match(pattern: str) -> list:
    """The metadata (path, size_in_bytes) of every file `pattern` matches; [] for none."""
    return FileSystems.match([pattern])[0].metadata_list


def copy(source: str, destination: str) -> str:
    """Copies one file between any two file systems (local, gs://), streaming; returns the
    hex SHA-256 of the bytes copied, so a caller can verify them without reading twice."""
    digest = hashlib.sha256()
    with open_read(source) as reader, open_write(destination) as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def list_tree(directory: str) -> list[str]:
    """Paths relative to `directory` of every file under it, at any depth; [] if none."""
    root = directory.rstrip("/") + "/"
    if is_local(directory) and not os.path.isdir(directory):
        return []
    return sorted(m.path[len(root) :] for m in match(root + "**") if m.path.startswith(root))


def download_tree(directory: str, local: str, names: list[str] | None = None) -> list[str]:
    """Copies every file under `directory` (or just `names`, relative) into `local`."""
    names = list_tree(directory) if names is None else names
    for name in names:
        target = os.path.join(local, *name.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        copy(join(directory, name), target)
    return names


def list_local_tree(local: str) -> list[str]:
    """Paths relative to the local folder `local` of every file under it, '/'-separated."""
    return sorted(
        os.path.relpath(os.path.join(root, name), local).replace(os.sep, "/")
        for root, _, found in os.walk(local)
        for name in found
    )


def upload_tree(local: str, directory: str, names: list[str] | None = None) -> list[str]:
    """Copies every file under the local folder `local` (or just `names`) to `directory`."""
    if names is None:
        names = list_local_tree(local)
    for name in names:
        copy(os.path.join(local, *name.split("/")), join(directory, name))
    return names


def delete_tree(directory: str) -> None:
    """Deletes every file under `directory` (and, locally, the folder); nothing if absent."""
    if is_local(directory):
        shutil.rmtree(directory, ignore_errors=True)
        return
    delete_all([join(directory, name) for name in list_tree(directory)])


class StorageUnreachable(ValueError):
    """A bucket did not answer in time (no network, or credentials that never resolve)."""


def reach_timeout() -> float:
    """Seconds to wait for a bucket's first answer: DIGITS_STORAGE_TIMEOUT, default 60."""
    return float(os.environ.get("DIGITS_STORAGE_TIMEOUT", "60"))


def check_reachable(directory: str) -> None:
    """Lists `directory` once (nothing for local paths), so that a missing bucket, a missing
    permission or missing credentials stop a job before it starts (see storage_problem),
    and a bucket that cannot be reached stops it within reach_timeout() seconds instead of
    the client libraries' minutes of retries."""
    if is_local(directory):
        return
    outcome: dict = {}

    def listing():
        try:
            match(join(directory, "*"))
        except Exception as error:  # noqa: BLE001 - handed to the caller below
            outcome["error"] = error
        outcome["done"] = True

    wait = reach_timeout()
    worker = threading.Thread(target=listing, daemon=True)  # left behind on a time-out
    worker.start()
    worker.join(wait)
    if "error" in outcome:
        raise outcome["error"]
    if "done" not in outcome:
        raise StorageUnreachable(
            f"{directory}: no answer from Google Cloud Storage in {wait:.0f} s. "
            "Check the network (and a proxy), and that credentials resolve: `gcloud auth "
            "application-default print-access-token` (DIGITS_STORAGE_TIMEOUT sets the wait)."
        )


@contextlib.contextmanager
def local_copy(path: str):
    """Yields a local path with `path`'s bytes: `path` itself when local, else a temporary
    copy, removed on exit. For readers that only take local files (Keras' load_model)."""
    if is_local(path):
        yield path
        return
    folder = tempfile.mkdtemp(prefix="digits-")
    try:
        local = os.path.join(folder, base_name(path))
        copy(path, local)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_LOCAL_PROBLEMS = {
    errno.ENOTDIR: "a file where a folder should be; give a folder path",
    errno.EEXIST: "a file where a folder should be; give a folder path",
    errno.EISDIR: "a folder where a file should be",
    errno.EACCES: "permission denied; give a folder this user can write, or fix its rights",
    errno.EPERM: "permission denied; give a folder this user can write, or fix its rights",
    errno.EROFS: "a read-only file system; give a folder on a writable disk",
    errno.ENOSPC: "the disk is full; free some space or give a folder on another disk",
    errno.EDQUOT: "the disk quota is exhausted; free some space or give another folder",
}


def storage_problem(error: BaseException) -> str | None:
    """A sentence for a user when `error` is a storage failure: on a local disk (not a
    folder, read-only, no permission, disk full) naming the path, or on cloud storage (no
    bucket, no permission, no credentials) naming the bucket; with the fix. None for
    anything else."""
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.errno in _LOCAL_PROBLEMS:
            where = cause.filename or "the output"
            return f"{where}: {_LOCAL_PROBLEMS[cause.errno]} ({os.strerror(cause.errno)})"
    text = " ".join(_messages(error))
    bucket = re.search(r"/b/([^/?\s'\"]+)", text)
    where = f"gs://{bucket.group(1)}" if bucket else "Google Cloud Storage"
    no_credentials = ("DefaultCredentialsError", "credentials were not found", "Anonymous caller")
    if any(sign in text for sign in no_credentials) or re.search(r"\b401\b|Unauthorized", text):
        return (
            f"{where}: no Google credentials found. Run `gcloud auth application-default "
            "login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file."
        )
    if re.search(r"\b403\b|Forbidden", text):
        return (
            f"{where}: permission denied. Grant this account access to the bucket "
            "(roles/storage.objectAdmin) or use a bucket it can write."
        )
    if bucket and re.search(r"\b404\b|NotFound", text):
        return (
            f"{where}: bucket not found. Create it (`gcloud storage buckets create "
            f"{where}`) or check the name."
        )
    return None


def _causes(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _messages(error: BaseException):
    for cause in _causes(error):
        yield f"{type(cause).__name__}: {cause}"


def utc_timestamp(seconds: float | None = None) -> str:
    """`2026-11-25T02:15:00Z`: the one timestamp format in every file the jobs write."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
