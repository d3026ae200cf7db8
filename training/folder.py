"""The training job's output folder on a bucket: trained in a local mirror, resumable there.

    digits train --data gs://B/digits/data --output gs://B/digits/model

Keras writes only local files, so the job trains in a temporary local folder and keeps
the bucket up to date (all through common.files):

- at start, the bucket's resume state, if any, is copied into the mirror, and the job
  resumes after the last epoch it holds; with none, the bucket's `metrics.json` is removed
  first, so the old model there no longer looks finished;
- after every epoch, the resume state (Keras' backup, history, best-epoch weights) goes to
  `backup/epoch-NNNN/`, then `backup/LATEST.json` points at it: a kill during the copy
  leaves LATEST on the previous, complete generation (a preempted VM rerunning the same
  command resumes from the bucket);
- at the end, the model replaces the bucket's old model files (only files of a model
  folder's names, common.ownership.MODEL), `metrics.json` last, and the resume state is
  removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import keras

from common import files, ownership, schema

BACKUP_DIR = "backup"
LATEST_FILE = "LATEST.json"


@contextlib.contextmanager
def working_folder(output: str):
    """Yields the local folder to train in: `output` itself when local, else a mirror."""
    if files.is_local(output):
        yield output
        return
    local = tempfile.mkdtemp(prefix="digits-model-")
    try:
        restore(output, local)
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


def restore(output: str, local: str) -> None:
    """Copies the bucket's latest resume state into `local`; with none, unfinishes `output`."""
    latest = files.join(output, BACKUP_DIR, LATEST_FILE)
    if not files.exists(latest):
        files.delete(files.join(output, schema.METRICS_FILE), missing_ok=True)
        return
    generation = files.read_json(latest)["folder"]
    files.download_tree(files.join(output, BACKUP_DIR, generation), local)


def _resume_files(local: str, extra: tuple[str, ...]) -> list[str]:
    backup = os.path.join(local, BACKUP_DIR)
    names = [f"{BACKUP_DIR}/{name}" for name in sorted(os.listdir(backup))]
    return names + [name for name in extra if os.path.exists(os.path.join(local, name))]


class SyncToBucket(keras.callbacks.Callback):
    """After each epoch (placed after BackupAndRestore), copies the resume state to the
    bucket as a new generation, points LATEST at it and drops the older generations."""

    def __init__(self, local: str, output: str, extra: tuple[str, ...]):
        super().__init__()
        self.local, self.output, self.extra = local, output, extra

    def on_epoch_end(self, epoch, logs=None):
        generation = f"epoch-{epoch + 1:04d}"
        backup = files.join(self.output, BACKUP_DIR)
        files.upload_tree(
            self.local, files.join(backup, generation), _resume_files(self.local, self.extra)
        )
        files.write_json(
            files.join(backup, LATEST_FILE), {"epoch": epoch + 1, "folder": generation}
        )
        stale = {name.split("/")[0] for name in files.list_tree(backup) if "/" in name}
        for folder in sorted(stale - {generation}):
            files.delete_tree(files.join(backup, folder))


def publish(local: str, output: str) -> None:
    """The finished model replaces the bucket's folder; `metrics.json` last."""
    files.delete(files.join(output, schema.METRICS_FILE), missing_ok=True)
    old = [
        name
        for name in files.list_tree(output)
        if not name.startswith(BACKUP_DIR + "/") and ownership.is_own(name, ownership.MODEL)
    ]
    files.delete_all([files.join(output, name) for name in old])
    names = [
        name
        for name in files.list_tree(local)
        if name != schema.METRICS_FILE and not name.startswith(BACKUP_DIR + "/")
    ]
    files.upload_tree(local, output, names)
    files.upload_tree(local, output, [schema.METRICS_FILE])
    files.delete_tree(files.join(output, BACKUP_DIR))
