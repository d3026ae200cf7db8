"""The scoring job's output partition: claimed, locked, staged, then swapped in whole.

    partition.claim(output, target, dated)       # refuses a folder holding a user's files
    with partition.night_lock(output, target):   # one run of a partition at a time
        staging = partition.new_staging(output, target)
        ...                                      # the pipeline writes into staging
        partition.publish(staging, target, success, dated)

The scorer replaces only its own outputs (common.ownership.SCORE_PARTITION): a partition
folder that holds anything else is refused before any work (exit status 2), and
publishing deletes only files of those names.

A run writes into a fresh folder under OUT_DIR/_staging/ and only then replaces the
partition: a local `dt=` partition by renaming folders (atomic); otherwise (gs://, or no
--date) by deleting `_SUCCESS` first, then the old outputs, moving the staged files in
and writing `_SUCCESS` last. Readers trust a partition only when `_SUCCESS` is there, and
a killed run never writes it. `_SUCCESS` records the inputs' fingerprint
(scoring.inputs) and the model, so rerunning the same date on the same inputs with
the same model is recognised and skipped.

One run of a partition at a time: locally an flock on `_staging/NAME.lock` (the kernel
drops it when a run dies, so a killed run never leaves it stuck); on gs:// a marker object
`_staging/NAME.lock` created only if absent (`ifGenerationMatch=0`; read first as well,
since the GCS emulator of the tests ignores preconditions), kept alive by a heartbeat
every minute and taken over once it is LEASE_SECONDS old (a killed run's), or at once
when it names a process of this machine that is gone (a rerun right after a kill).
A second run meanwhile stops at once (NightBusy, exit status 75).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
import uuid

from common import files, ownership
from common.errors import Busy
from common.schema import SUCCESS_FILE

STAGING = ownership.SCORE_STAGING
LEASE_SECONDS = 600  # a gs:// lock this long without a heartbeat is a dead run's
HEARTBEAT_SECONDS = 60


class NightBusy(Busy):
    """Another run is scoring this partition now."""


def partition_dir(output: str, date: str | None) -> str:
    return files.join(output, f"dt={date}") if date else output.rstrip("/")


def claim(output: str, partition: str, dated: bool) -> None:
    """Refuses (ownership.ForeignFiles) a partition that holds files the scorer did not
    write: dated, the partition folder; undated, the output folder itself."""
    if dated:
        fix = "Move them out of that folder, or score another --date or --output."
        ownership.claim(partition, ownership.SCORE_PARTITION, "digits score", "--output", fix)
        return
    fix = (
        "Give a new or empty --output folder, or --date DATE to write a partition "
        f"{files.join(output, 'dt=DATE')} inside it."
    )
    patterns = ownership.SCORE_PARTITION + ownership.SCORE_OUTPUT
    ownership.claim(output, patterns, "digits score", "--output", fix)


def read_success(partition: str) -> dict | None:
    path = files.join(partition, SUCCESS_FILE)
    if not files.exists(path):
        return None
    try:
        return json.loads(files.read_bytes(path) or b"{}")
    except json.JSONDecodeError:
        return {}


def _name(partition: str) -> str:
    return partition.rstrip("/").rsplit("/", 1)[-1]


def new_staging(output: str, partition: str) -> str:
    """A fresh staging folder; stale ones of this partition (from killed runs) are removed.
    Call it holding the night's lock: nobody else is staging this partition then."""
    name = _name(partition)
    root = files.join(output, STAGING)
    if files.is_local(root) and os.path.isdir(root):
        for stale in os.listdir(root):
            if stale.startswith(name + ".") and not stale.endswith(".lock"):
                shutil.rmtree(os.path.join(root, stale), ignore_errors=True)
    staging = files.join(root, f"{name}.{uuid.uuid4().hex[:12]}")
    files.make_dirs(staging)
    return staging


def publish(staging: str, partition: str, success: dict, dated: bool) -> None:
    """Replaces `partition`'s outputs by `staging`'s files and marks it complete."""
    if files.is_local(partition) and dated:
        files.write_json(files.join(staging, SUCCESS_FILE), success)
        _swap_folders(staging, partition)
    else:
        _replace_files(staging, partition)
        files.write_json(files.join(partition, SUCCESS_FILE), success)
    if files.is_local(staging):
        remove_empty_staging(staging)


def _swap_folders(staging: str, partition: str) -> None:
    """Local and dated: the staged folder, `_SUCCESS` included, replaces the old by renames
    (the old one holds only the scorer's files: `claim` checked)."""
    os.makedirs(os.path.dirname(partition.rstrip("/")) or ".", exist_ok=True)
    old = None
    accepted = os.path.join(partition, ownership.DRIFT_ACCEPTED_FILE)
    if os.path.exists(accepted):  # a person's word about that night outlives a rescore
        shutil.copyfile(accepted, os.path.join(staging, ownership.DRIFT_ACCEPTED_FILE))
    if os.path.exists(partition):
        old = files.join(os.path.dirname(staging), "replaced." + uuid.uuid4().hex[:12])
        os.replace(partition, old)
    os.replace(staging, partition)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _replace_files(staging: str, partition: str) -> None:
    """gs:// or undated: `_SUCCESS` goes first, then the old outputs (files the scorer
    names, nothing else, at the top level only); the staged ones move in."""
    files.delete(files.join(partition, SUCCESS_FILE), missing_ok=True)
    old = [
        files.join(partition, name)
        for name in files.list_tree(partition)
        if "/" not in name and ownership.is_own(name, ownership.SCORE_PARTITION)
        and name != ownership.DRIFT_ACCEPTED_FILE  # a person's, about that night
    ]  # fmt: skip
    files.delete_all(old)
    staged = [m.path for m in files.match(files.join(staging, "*"))]
    files.make_dirs(partition)
    files.move_all(staged, [files.join(partition, files.base_name(p)) for p in staged])
    if files.is_local(staging):  # a local folder, now empty
        shutil.rmtree(staging, ignore_errors=True)


def remove_empty_staging(staging: str) -> None:
    root = os.path.dirname(staging)
    try:
        os.rmdir(root)  # only if no other run is staging there
    except OSError:
        pass


# --- One run of a partition at a time. -----------------------------------------------------


@contextlib.contextmanager
def night_lock(output: str, partition: str, run_id: str):
    """Held while a run scores `partition`; NightBusy at once if another run holds it."""
    path = files.join(output, STAGING, _name(partition) + ".lock")
    holder = {"run_id": run_id, **_holder()}
    if files.is_local(path):
        with _local_lock(path, holder, partition):
            yield
    else:
        with _bucket_lock(path, holder, partition):
            yield


def _busy(partition: str, path: str, other: dict) -> NightBusy:
    since = other.get("started", "?")
    run, host, pid = (other.get(k, "?") for k in ("run_id", "host", "pid"))
    who = f"run {run} (host {host}, pid {pid})"
    return NightBusy(
        f"{partition} is being scored right now by {who}, since {since} (lock {path}). "
        "Wait for that run to finish; this one did nothing."
    )


@contextlib.contextmanager
def _local_lock(path: str, holder: dict, partition: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                handle.close()
                raise
            handle.seek(0)
            try:
                other = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                other = {}
            handle.close()
            raise _busy(partition, path, other) from None
        # The holder before us may have removed the file after we opened it: lock anew.
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({**holder, "started": files.utc_timestamp()}))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)  # still locked: whoever opened it meanwhile locks anew
        handle.close()
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _holder() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": _process_start(pid)}


def _dead_here(other: dict) -> bool:
    """Whether the marker's run was on this machine and its process is gone (killed, as
    a rerun right after a kill finds it): then its marker need not wait out the lease."""
    pid = other.get("pid")
    if other.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if other.get("pid_start") is not None and os.path.isdir("/proc"):
        return _process_start(pid) != other["pid_start"]  # gone, or another process now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


def _blob(path: str):
    from google.cloud import storage

    bucket, _, name = path[len("gs://") :].partition("/")
    return storage.Client().bucket(bucket).blob(name)


@contextlib.contextmanager
def _bucket_lock(path: str, holder: dict, partition: str):
    from google.api_core import exceptions

    blob = _blob(path)
    for _ in range(3):
        try:  # read first: also what stops a second run where preconditions are ignored
            other = json.loads(blob.download_as_bytes(timeout=30))
            generation = blob.generation
        except exceptions.NotFound:
            other = None
        if other is not None:
            fresh = time.time() - float(other.get("heartbeat", 0)) < LEASE_SECONDS
            if fresh and not _dead_here(other):
                raise _busy(partition, path, other)
            try:  # a dead run's marker: take it over, unless someone else just did
                blob.delete(if_generation_match=generation, timeout=30)
            except (exceptions.PreconditionFailed, exceptions.NotFound):
                pass
        stamp = {**holder, "started": files.utc_timestamp(), "heartbeat": time.time()}
        try:  # created only if absent: of two runs starting at once, one wins
            blob.upload_from_string(json.dumps(stamp), if_generation_match=0, timeout=30)
            break
        except exceptions.PreconditionFailed:
            continue  # the other run's marker: read it on the next turn
    else:
        raise _busy(partition, path, {})
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(blob, stamp, stop), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        with contextlib.suppress(exceptions.GoogleAPICallError):
            blob.delete(if_generation_match=blob.generation, timeout=30)


def _heartbeat(blob, stamp: dict, stop: threading.Event) -> None:
    """Rewrites the marker every HEARTBEAT_SECONDS, only over our own generation."""
    from google.api_core import exceptions

    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            blob.upload_from_string(
                json.dumps({**stamp, "heartbeat": time.time()}),
                if_generation_match=blob.generation,
                timeout=30,
            )
        except exceptions.GoogleAPICallError:
            return  # taken over or unreachable: the run goes on; its publish is its own
