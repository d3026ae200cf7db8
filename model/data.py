"""The tf.data input: streams a preprocessed dataset's shards into training and evaluation.

One linear chain, in this order and for these reasons:

    shard files (from the manifest, verified)
    -> interleave    read several shards at once: parallel I/O, and mixes shards
    -> shuffle       (training only) over records, seeded
    -> batch         before parsing, so parsing is one vectorised op per batch
    -> parse         the schema's parse_examples
    -> prefetch      overlap input with the model's step (onto the GPU when there is one)

A dataset folder is trusted only when its manifest is there (written last by the
pipeline), and every shard is checked against the manifest's size and SHA-256 before a
single record is read: a missing, truncated or corrupt shard stops the job naming it.

A dataset on gs:// is first copied to a local folder (`local_dataset`), each shard
verified against the manifest while it is copied, and streamed from there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import PIL.Image
import tensorflow as tf

from common import files, schema
from model import cnn, screening


class DatasetError(ValueError):
    pass


def read_manifest(data_dir: str) -> dict:
    path = files.join(data_dir, schema.MANIFEST_FILE)
    if not files.exists(path):
        raise DatasetError(
            f"{data_dir} has no {schema.MANIFEST_FILE}: it is not a complete preprocessed "
            "dataset (missing, or its preprocessing run did not finish). Run "
            f"`digits preprocess --output {data_dir}` first."
        )
    return files.read_json(path)


@dataclass(frozen=True)
class LocalDataset:
    source: str  # where the dataset lives (local path or gs://)
    path: str  # a local folder holding the manifest and the shards
    manifest: dict
    verified: bool  # shards already checked against the manifest (while copied)


@contextlib.contextmanager
def local_dataset(data_dir: str):
    """Yields a LocalDataset: `data_dir` itself when local, else a temporary local copy."""
    manifest = read_manifest(data_dir)
    if files.is_local(data_dir):
        yield LocalDataset(os.path.abspath(data_dir), data_dir, manifest, verified=False)
        return
    local = tempfile.mkdtemp(prefix="digits-data-")
    try:
        for split in manifest["splits"].values():
            for shard in split["shards"]:
                _copy_verified(files.join(data_dir, shard["file"]), local, shard)
        for shard in manifest.get("not_a_digit", {}).values():
            _copy_verified(files.join(data_dir, shard["file"]), local, shard)
        files.write_json(os.path.join(local, schema.MANIFEST_FILE), manifest)
        yield LocalDataset(data_dir, local, manifest, verified=True)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _copy_verified(source: str, local: str, shard: dict) -> None:
    """Copies one shard, hashing as it goes: one read of the bucket, verified."""
    if not files.exists(source):
        raise DatasetError(f"shard {source} is missing; rerun `digits preprocess`")
    if files.copy(source, os.path.join(local, shard["file"])) != shard["sha256"]:
        raise DatasetError(
            f"shard {source} does not match the manifest's SHA-256 (truncated or corrupt); "
            "rerun `digits preprocess` to rebuild the dataset"
        )


def shard_paths(data_dir: str, split: str, manifest: dict, verify: bool = True) -> list[str]:
    """The split's shard files, each checked against the manifest's size and SHA-256."""
    if split not in manifest["splits"]:
        raise DatasetError(f"{data_dir}: no split {split!r} (has {', '.join(manifest['splits'])})")
    paths = []
    for shard in manifest["splits"][split]["shards"]:
        path = files.join(data_dir, shard["file"])
        if not files.exists(path):
            raise DatasetError(f"shard {path} is missing; rerun `digits preprocess`")
        if verify:
            if files.sha256_file(path) != shard["sha256"]:
                raise DatasetError(
                    f"shard {path} does not match the manifest's SHA-256 (truncated or "
                    "corrupt); rerun `digits preprocess` to rebuild the dataset"
                )
        paths.append(path)
    return paths


def split_size(manifest: dict, split: str) -> int:
    return int(manifest["splits"][split]["records"])


def sources(manifest: dict) -> list[str]:
    """The dataset's sources: mnist, then the labelled folders (digits preprocess --labelled)."""
    named = manifest.get("by_source", {})
    return [schema.MNIST_SOURCE, *sorted(set(named) - {schema.MNIST_SOURCE})]


def not_a_digit_pixels(data_dir: str, split: str, manifest: dict, verify: bool = True):
    """The labelled folders' not-a-digit images of a split, uint8 [m, 28, 28] (m may be 0)."""
    shard = manifest.get("not_a_digit", {}).get(split)
    if not shard:
        return np.zeros((0, *schema.IMAGE_SHAPE), np.uint8)
    path = files.join(data_dir, shard["file"])
    if verify and files.sha256_file(path) != shard["sha256"]:
        raise DatasetError(
            f"{path} does not match the manifest's SHA-256 (truncated or corrupt); rerun "
            "`digits preprocess` to rebuild the dataset"
        )
    compression = "GZIP" if manifest.get("compression") == "gzip" else None
    batches = tf.data.TFRecordDataset(path, compression_type=compression).batch(1024)
    chunks = [to_pixels(b[schema.IMAGE_KEY]) for b in batches.map(schema.parse_examples)]
    return np.concatenate(chunks)


def records(
    data_dir: str,
    split: str,
    batch_size: int,
    *,
    training: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
    manifest: dict | None = None,
    verify: bool = True,
) -> tf.data.Dataset:
    """Batches of parsed records: {image: float32 [b, 28, 28, 1], label: int64 [b], key}."""
    manifest = manifest or read_manifest(data_dir)
    paths = shard_paths(data_dir, split, manifest, verify=verify)
    compression = "GZIP" if manifest.get("compression") == "gzip" else None
    files = tf.data.Dataset.from_tensor_slices(paths)
    if training:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = files.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=compression),
        cycle_length=min(len(paths), 4),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training,
    )
    # Counts read must match the manifest: a shortfall or excess stops the job.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(split_size(manifest, split)))
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    return dataset.map(schema.parse_examples, num_parallel_calls=tf.data.AUTOTUNE)


@dataclass(frozen=True)
class Split:
    """One split as a model sees it, every field there from the start: the images (float
    [n, 28, 28] in [0, 1]), the same as the scorer's pixels (uint8 [n, 28, 28]), labels,
    record keys and sources, the model's probabilities (float64 [n, 10]) and the input
    checks' measurements of each image (model.screening.features, numpy [n] each)."""

    name: str
    images: np.ndarray
    pixels: np.ndarray
    labels: np.ndarray
    keys: tuple[str, ...]
    sources: np.ndarray  # str [n]: mnist, or a labelled folder's name
    probabilities: np.ndarray
    measured: dict[str, np.ndarray]

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)


def predict_split(
    model, data_dir: str, split: str = "test", verify: bool = False, shape_weights=None
) -> Split:
    """A split read in record order, with the model's probabilities and the input checks'
    measurements (with the shape check's `shape_weights`, if given). The model runs as
    every predictor runs it (cnn.for_inference)."""
    model = cnn.for_inference(model)
    images, labels, keys, sources, probabilities = [], [], [], [], []
    for batch in records(data_dir, split, 512, verify=verify):
        probabilities.append(model.predict_on_batch(batch[schema.IMAGE_KEY]))
        images.append(batch[schema.IMAGE_KEY].numpy()[..., 0])
        labels.append(batch[schema.LABEL_KEY].numpy())
        keys.extend(k.decode() for k in batch[schema.KEY_KEY].numpy())
        sources.extend(k.decode() for k in batch[schema.SOURCE_KEY].numpy())
    images = np.concatenate(images)
    pixels = to_pixels(images)
    measured = screening.features(pixels, shape_weights)
    return Split(
        name=split,
        images=images,
        pixels=pixels,
        labels=np.concatenate(labels),
        keys=tuple(keys),
        sources=np.array(sources, dtype=str),
        probabilities=np.concatenate(probabilities).astype(np.float64),
        measured={k: v.numpy() for k, v in measured.items()},
    )


def to_pixels(images) -> np.ndarray:
    """Parsed images (float32 in [0, 1], [n, 28, 28] or [n, 28, 28, 1]) -> the pixels the
    scorer sees, uint8 [n, 28, 28]."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]
    return np.round(images * schema.PIXEL_MAX).astype(np.uint8)


def split_pixels(
    data_dir: str,
    split: str,
    limit: int | None = None,
    *,
    manifest: dict | None = None,
    verify: bool = True,
) -> np.ndarray:
    """A split's images as uint8 [n, 28, 28] in record order; with `limit`, only the first."""
    return split_digits(data_dir, split, limit, manifest=manifest, verify=verify)[0]


def split_digits(
    data_dir: str,
    split: str,
    limit: int | None = None,
    *,
    manifest: dict | None = None,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """split_pixels' images and their labels (int [n]), read in one pass."""
    pixels, labels, count = [], [], 0
    for batch in records(data_dir, split, limit or 1024, manifest=manifest, verify=verify):
        pixels.append(to_pixels(batch[schema.IMAGE_KEY].numpy()))
        labels.append(batch[schema.LABEL_KEY].numpy())
        count += len(pixels[-1])
        if limit and count >= limit:
            break
    if not pixels:
        return np.zeros((0, schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH), np.uint8), np.zeros(0, int)
    return np.concatenate(pixels)[:limit], np.concatenate(labels)[:limit]


@dataclass(frozen=True)
class Pool:
    """Images mixed into every training batch: uint8 [m, 28, 28] with their targets
    (float [m, 10]: a uniform one for not-a-digit images, one-hot for damaged digits),
    `per_batch` of them in each batch, reshuffled each pass."""

    images: np.ndarray
    targets: np.ndarray
    per_batch: int

    @classmethod
    def not_digits(cls, images: np.ndarray, per_batch: int) -> Pool:
        uniform = np.full((len(images), schema.NUM_CLASSES), 1.0 / schema.NUM_CLASSES)
        return cls(images, uniform.astype(np.float32), per_batch)

    @classmethod
    def digits(cls, images: np.ndarray, labels: np.ndarray, per_batch: int) -> Pool:
        return cls(images, np.eye(schema.NUM_CLASSES, dtype=np.float32)[labels], per_batch)


def _pool_batches(pool: Pool, seed: int) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices((pool.images, pool.targets))
        .shuffle(len(pool.images), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(pool.per_batch)
        .map(lambda x, y: (tf.cast(x, tf.float32)[..., None] / schema.PIXEL_MAX, y))
    )


def _append(digits, pooled):
    """Appends a pool's batch (weight 1 when the digits carry weights)."""
    joined = (
        tf.concat([digits[0], pooled[0]], axis=0),
        tf.concat([digits[1], pooled[1]], axis=0),
    )
    if len(digits) == 3:
        joined += (tf.concat([digits[2], tf.ones([tf.shape(pooled[0])[0]])], axis=0),)
    return joined


def to_supervised(batch: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """(images, one-hot labels): the notebook trained with categorical cross-entropy."""
    return batch[schema.IMAGE_KEY], tf.one_hot(batch[schema.LABEL_KEY], schema.NUM_CLASSES)


def weighted(labelled_weight: float):
    """(images, one-hot labels, weights): a labelled folder's records weigh
    `labelled_weight` in the loss, MNIST's 1."""

    def to_weighted(batch: dict):
        images, targets = to_supervised(batch)
        is_mnist = tf.equal(batch[schema.SOURCE_KEY], schema.MNIST_SOURCE)
        return images, targets, tf.where(is_mnist, 1.0, labelled_weight)

    return to_weighted


def supervised(
    data_dir: str,
    split: str,
    batch_size: int,
    *,
    device: str | None = None,
    pools: tuple[Pool, ...] = (),
    labelled_weight: float | None = None,
    **kw,
):
    """(images, one-hot labels) batches, prefetched (onto `device`, e.g. '/gpu:0', if given).
    Every batch also gets `per_batch` images of each of `pools` (not-a-digit images of
    model.outliers with a uniform target, damaged digits of model.damage). With
    `labelled_weight`, batches carry loss weights too (see `weighted`)."""
    to_pairs = to_supervised if labelled_weight is None else weighted(labelled_weight)
    dataset = records(data_dir, split, batch_size, **kw).map(
        to_pairs, num_parallel_calls=tf.data.AUTOTUNE
    )
    for pool in pools:
        if pool.per_batch > 0 and len(pool.images):
            dataset = tf.data.Dataset.zip(dataset, _pool_batches(pool, kw.get("seed", 0))).map(
                _append, num_parallel_calls=tf.data.AUTOTUNE
            )
    if device:
        return dataset.apply(tf.data.experimental.prefetch_to_device(device))
    return dataset.prefetch(tf.data.AUTOTUNE)


def write_pngs(data_dir: str, split: str, output: str, limit: int | None = None) -> int:
    """The split's images as PNG files; with `limit`, an evenly spaced sample of that many
    (every k-th image), so it spans the split (MNIST's test split holds two populations of
    writers, one in each half)."""
    os.makedirs(output, exist_ok=True)
    total = split_size(read_manifest(data_dir), split)
    step = max(1, total // limit) if limit else 1
    written, index = 0, -1
    for batch in records(data_dir, split, 1000):
        pixels = to_pixels(batch[schema.IMAGE_KEY].numpy())
        for key, label, image in zip(
            batch[schema.KEY_KEY].numpy(), batch[schema.LABEL_KEY].numpy(), pixels, strict=True
        ):
            index += 1
            if index % step:
                continue
            if limit is not None and written >= limit:
                return written
            PIL.Image.fromarray(image, mode="L").save(
                os.path.join(output, f"{key.decode()}_label{label}.png")
            )
            written += 1
    return written
