"""The dataset folder: claiming it safely, describing its shards, metadata and manifest.

A dataset folder is complete exactly when `manifest.json` is in it: the manifest is
written last and removed first, so a run that fails or is killed never leaves a folder
that looks complete. The marker file `.digits-dataset` is written first, so a rerun
recognises a killed run's folder as its own and may replace it; a non-empty folder with
neither file, or holding any file of another name than the dataset's
(common.ownership.DATASET), is someone else's and is never touched.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile

from common import files, ownership, schema

MARKER_FILE = ownership.DATASET_MARKER
FACTS_FILE = "_facts.json"


class OutputError(ValueError):
    pass


def _files(directory: str) -> list[str]:
    """Every file under `directory`, at any depth, dot-files included (local or gs://)."""
    return sorted(m.path for m in files.match(files.join(directory, "**")))


def claim(directory: str) -> None:
    """Empties `directory` for a new run, if it is new, empty, or an earlier output of ours
    holding nothing else (common.ownership.DATASET names what is ours)."""
    found = _files(directory)
    top_level = {path[len(directory.rstrip("/")) + 1 :] for path in found}
    if found and not top_level & {MARKER_FILE, schema.MANIFEST_FILE}:
        raise OutputError(
            f"--output {directory} is not empty and is not a dataset written by this "
            f"pipeline (it has no {schema.MANIFEST_FILE} or {MARKER_FILE}); refusing to "
            "replace it. Choose a new or empty folder, or delete this one yourself."
        )
    ownership.claim(
        directory,
        ownership.DATASET,
        "digits preprocess",
        fix="Move them out of that folder, or choose a new or empty --output.",
    )
    manifest = files.join(directory, schema.MANIFEST_FILE)
    if manifest in found:
        files.delete(manifest)  # from here on the old output no longer looks complete
    files.delete_all([path for path in found if path != manifest])
    if files.is_local(directory):  # Beam's emptied temporary folder
        shutil.rmtree(temp_dir(directory), ignore_errors=True)
    files.make_dirs(directory)
    files.write_json(files.join(directory, MARKER_FILE), {"written_by": "digits preprocess"})


def temp_dir(output_dir: str) -> str:
    """Beam's temporary files: inside the output, so moving them into place is cheap."""
    return output_dir.rstrip("/") + "/.beam-temp"


def describe_shard(path: str, compression: str) -> dict:
    """Counts a TFRecord shard's records by their length headers and digests its bytes."""
    raw = files.read_bytes(path)
    sha256 = hashlib.sha256(raw)
    if compression == "gzip":
        raw = gzip.decompress(raw)
    records, offset = 0, 0
    while offset < len(raw):
        if offset + 12 > len(raw):
            raise OutputError(f"{path}: truncated TFRecord header at byte {offset}")
        (length,) = struct.unpack_from("<Q", raw, offset)
        offset += 12 + length + 4
        records += 1
    if offset != len(raw):
        raise OutputError(f"{path}: truncated TFRecord data")
    return {
        "file": files.base_name(path),
        "records": records,
        "bytes": len(raw),
        "sha256": sha256.hexdigest(),
    }


def shard_files(directory: str, split: str) -> list[str]:
    return sorted(m.path for m in files.match(files.join(directory, schema.shard_pattern(split))))


def write_tfds_metadata(directory: str, shards: dict[str, list[dict]], description: str) -> None:
    """dataset_info.json and features.json, so `tfds.builder_from_directory` loads the output.

    TFDS writes through TensorFlow's own file system, so for gs:// they are written in a
    local folder first (beside empty stand-ins named like the shards, which TFDS lists)
    and copied up through common.files.
    """
    if files.is_local(directory):
        _write_tfds_metadata(directory, shards, description)
        return
    local = tempfile.mkdtemp(prefix="digits-tfds-")
    try:
        shard_names = {s["file"] for described in shards.values() for s in described}
        for name in shard_names:  # TFDS lists the folder for the shard names: empty stand-ins
            open(os.path.join(local, name), "wb").close()
        _write_tfds_metadata(local, shards, description)
        metadata = [name for name in files.list_tree(local) if name not in shard_names]
        files.upload_tree(local, directory, metadata)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _write_tfds_metadata(directory: str, shards: dict[str, list[dict]], description: str):
    import tensorflow_datasets as tfds

    template = tfds.core.ShardedFileTemplate(
        data_dir=directory,
        template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        dataset_name=schema.DATASET_NAME,
        filetype_suffix="tfrecord",
    )
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[s["records"] for s in described],
            num_bytes=sum(s["bytes"] for s in described),
            filename_template=template.replace(split=split),
        )
        for split, described in shards.items()
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=directory,
        features=schema.tfds_features(),
        split_infos=split_infos,
        filename_template=template,
        version="1.0.0",
        check_data=False,  # True would import TensorFlow (3 s); the tests load it instead
        description=description,
        homepage="http://yann.lecun.com/exdb/mnist/",
        supervised_keys=(schema.IMAGE_KEY, schema.LABEL_KEY),
    )
