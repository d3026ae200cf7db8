"""The scoring job's output partition: staged, then swapped in whole, `_SUCCESS` last.

A run writes into a fresh folder under OUT_DIR/_staging/ and only then replaces the
partition: a local `dt=` partition by renaming folders (atomic); otherwise (gs://, or no
--date) by deleting `_SUCCESS` first, moving the staged files in and writing `_SUCCESS`
last. Readers
trust a partition only when `_SUCCESS` is there, and a killed run never writes it.
`_SUCCESS` records the inputs' fingerprint and the model, so rerunning the same date on
the same inputs with the same model is recognised and skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SUCCESS = "_SUCCESS"
STAGING = "_staging"


def _join(*parts: str) -> str:
    return FileSystems.join(parts[0].rstrip("/"), *parts[1:])


def _is_local(path: str) -> bool:
    return "://" not in path


def partition_dir(output: str, date: str | None) -> str:
    return _join(output, f"dt={date}") if date else output.rstrip("/")


def fingerprint(inputs: list[tuple[str, int]], model_id: str) -> str:
    """What a run scored: every matched input (path, size) and the model."""
    digest = hashlib.sha256(model_id.encode())
    for path, size in sorted(inputs):
        digest.update(f"{path}\0{size}\n".encode())
    return "sha256:" + digest.hexdigest()


def read_success(partition: str) -> dict | None:
    path = _join(partition, SUCCESS)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        try:
            return json.loads(handle.read() or b"{}")
        except json.JSONDecodeError:
            return {}


def new_staging(output: str, partition: str) -> str:
    """A fresh staging folder; stale ones of this partition (from killed runs) are removed."""
    name = partition.rstrip("/").rsplit("/", 1)[-1]
    root = _join(output, STAGING)
    if _is_local(root) and os.path.isdir(root):
        for stale in os.listdir(root):
            if stale.startswith(name + "."):
                shutil.rmtree(os.path.join(root, stale), ignore_errors=True)
    staging = _join(root, f"{name}.{uuid.uuid4().hex[:12]}")
    FileSystems.mkdirs(staging)
    return staging


def write_json(path: str, payload: dict) -> None:
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(payload, indent=2).encode())


def publish(staging: str, partition: str, success: dict, dated: bool) -> None:
    """Replaces `partition` by `staging`'s files and marks it complete."""
    if _is_local(partition) and dated:
        write_json(_join(staging, SUCCESS), success)
        parent = os.path.dirname(partition.rstrip("/")) or "."
        os.makedirs(parent, exist_ok=True)
        old = None
        if os.path.exists(partition):
            old = _join(os.path.dirname(staging), "replaced." + uuid.uuid4().hex[:12])
            os.replace(partition, old)
        os.replace(staging, partition)
        if old:
            shutil.rmtree(old, ignore_errors=True)
        _remove_empty_staging(staging)
        return
    marker = _join(partition, SUCCESS)
    if FileSystems.exists(marker):
        FileSystems.delete([marker])
    old = FileSystems.match([_join(partition, "*")])[0].metadata_list
    if old:
        FileSystems.delete([m.path for m in old])
    staged = [m.path for m in FileSystems.match([_join(staging, "*")])[0].metadata_list]
    if not FileSystems.exists(partition):
        FileSystems.mkdirs(partition)
    FileSystems.rename(staged, [_join(partition, p.rsplit("/", 1)[-1]) for p in staged])
    if FileSystems.exists(staging):  # a local folder, now empty
        FileSystems.delete([staging])
    write_json(marker, success)
    if _is_local(staging):
        _remove_empty_staging(staging)


def _remove_empty_staging(staging: str) -> None:
    root = os.path.dirname(staging)
    try:
        os.rmdir(root)  # only if no other run is staging there
    except OSError:
        pass
