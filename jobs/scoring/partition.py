"""The scoring job's output partition: staged, then swapped in whole, `_SUCCESS` last.

A run writes into a fresh folder under OUT_DIR/_staging/ and only then replaces the
partition: a local `dt=` partition by renaming folders (atomic); otherwise (gs://, or no
--date) by deleting `_SUCCESS` first, moving the staged files in and writing `_SUCCESS`
last. Readers trust a partition only when `_SUCCESS` is there, and a killed run never
writes it. `_SUCCESS` records the inputs' fingerprint (jobs.scoring.inputs) and the model,
so rerunning the same date on the same inputs with the same model is recognised and
skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

from common import files
from common.schema import SUCCESS_FILE

STAGING = "_staging"


def partition_dir(output: str, date: str | None) -> str:
    return files.join(output, f"dt={date}") if date else output.rstrip("/")


def read_success(partition: str) -> dict | None:
    path = files.join(partition, SUCCESS_FILE)
    if not files.exists(path):
        return None
    try:
        return json.loads(files.read_bytes(path) or b"{}")
    except json.JSONDecodeError:
        return {}


def new_staging(output: str, partition: str) -> str:
    """A fresh staging folder; stale ones of this partition (from killed runs) are removed."""
    name = partition.rstrip("/").rsplit("/", 1)[-1]
    root = files.join(output, STAGING)
    if files.is_local(root) and os.path.isdir(root):
        for stale in os.listdir(root):
            if stale.startswith(name + "."):
                shutil.rmtree(os.path.join(root, stale), ignore_errors=True)
    staging = files.join(root, f"{name}.{uuid.uuid4().hex[:12]}")
    files.make_dirs(staging)
    return staging


def publish(staging: str, partition: str, success: dict, dated: bool) -> None:
    """Replaces `partition` by `staging`'s files and marks it complete."""
    if files.is_local(partition) and dated:
        files.write_json(files.join(staging, SUCCESS_FILE), success)
        _swap_folders(staging, partition)
    else:
        _replace_files(staging, partition)
        files.write_json(files.join(partition, SUCCESS_FILE), success)
    if files.is_local(staging):
        remove_empty_staging(staging)


def _swap_folders(staging: str, partition: str) -> None:
    """Local and dated: the staged folder, `_SUCCESS` included, replaces the old by renames."""
    os.makedirs(os.path.dirname(partition.rstrip("/")) or ".", exist_ok=True)
    old = None
    if os.path.exists(partition):
        old = files.join(os.path.dirname(staging), "replaced." + uuid.uuid4().hex[:12])
        os.replace(partition, old)
    os.replace(staging, partition)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _replace_files(staging: str, partition: str) -> None:
    """gs:// or undated: `_SUCCESS` goes first, then the old files; the staged ones move in."""
    files.delete(files.join(partition, SUCCESS_FILE), missing_ok=True)
    files.delete_all([m.path for m in files.match(files.join(partition, "*"))])
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
