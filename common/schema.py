"""The one schema shared by the preprocessing pipeline, the trainer and the scorer.

It holds the names every job agrees on: the record's features, the image's shape, and
the files the jobs write (dataset folder, model folder, scoring partition).

A record is a `tf.train.Example` with four features:

- `image`:  float32, 784 values, row-major 28x28, pixels / 255 (so in [0, 1]);
- `label`:  int64, 0-9 (10, NOT_A_DIGIT, only in the labelled not-a-digit files);
- `key`:    bytes, unique and stable: `<source split>-<index>` such as `train-00042` for
            MNIST, `<source>-<first 20 hex digits of the image file's SHA-256>` for a
            labelled folder's image;
- `source`: bytes, where the record came from: `mnist`, or a labelled folder's name.

Examples are serialised here without TensorFlow (the pipeline must start fast and
workers need not import TF); `parse_examples` is the TensorFlow side and is tested
against `tf.train.Example` so that the two cannot drift apart.
"""

from __future__ import annotations

import numpy as np

IMAGE_KEY = "image"
LABEL_KEY = "label"
KEY_KEY = "key"
SOURCE_KEY = "source"
MNIST_SOURCE = "mnist"

IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
IMAGE_SHAPE = (IMAGE_HEIGHT, IMAGE_WIDTH)
IMAGE_SIZE = IMAGE_HEIGHT * IMAGE_WIDTH
NUM_CLASSES = 10
NOT_A_DIGIT = NUM_CLASSES  # the label of a labelled folder's not_a_digit/ images
PIXEL_MAX = 255.0
# An MNIST image's border is black: its mean is at most 8 gray levels on the test split.
# A 28x28 one-channel image with a border mean up to this is taken as MNIST-shaped.
MNIST_BORDER = 16.0
# MNIST's digits are fitted to 20x20 and centred by mass (LeCun et al.). A 28x28 digit on a
# black border whose bright pixels (128 and up) fit in MNIST_FIT + 1 a side and whose
# centre of mass is more than MNIST_MAX_OFFSET_HALVES half pixels off the centre (every
# MNIST digit's is within 2) is a shifted digit: it is shifted back, and otherwise
# unchanged. In integers, so model.digit_image and model.images decide it alike.
MNIST_FIT = 20
MNIST_MAX_OFFSET_HALVES = 3

SPLITS = ("train", "validation", "test")
# A labelled folder's not_a_digit/ images: one file per split beside the digit shards
# (`not_a_digit-<split>.tfrecord`), not a TFDS split (the dataset's classes are the ten
# digits, and TFDS takes only `mnist-*` shard names); the shape check and outlier exposure
# read them.
NOT_A_DIGIT_FILES = "not_a_digit"

# --- File names. ------------------------------------------------------------------------
# Dataset folder (digits preprocess): mnist-{split}.tfrecord-SSSSS-of-NNNNN, TFDS
# metadata, and the manifest, written last: a folder without it is not finished.
DATASET_NAME = "mnist"
MANIFEST_FILE = "manifest.json"
# Model folder (digits train): metrics.json is written last; digits evaluate adds
# calibration.json (for the model whose identifier it names), reference.json (the test
# split's input and output statistics, for skew) and, last, blessing.json (the gate's
# verdict for the model file's SHA-256).
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.jsonl"
CALIBRATION_FILE = "calibration.json"
BLESSING_FILE = "blessing.json"
REFERENCE_FILE = "reference.json"
# Scoring partition (digits score): summary.json, drift.json, and _SUCCESS last.
SUCCESS_FILE = "_SUCCESS"
SUMMARY_FILE = "summary.json"
DRIFT_FILE = "drift.json"


def shard_file_name(split: str, shard: int, num_shards: int) -> str:
    """TFDS naming: `<dataset>-<split>.tfrecord-SSSSS-of-NNNNN`."""
    return f"{DATASET_NAME}-{split}.tfrecord-{shard:05d}-of-{num_shards:05d}"


def shard_pattern(split: str) -> str:
    return f"{DATASET_NAME}-{split}.tfrecord-*-of-*"


def not_a_digit_file_name(split: str) -> str:
    return f"{NOT_A_DIGIT_FILES}-{split}.tfrecord"


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels (any shape) -> float32 in [0, 1]: the notebook's `x / 255`."""
    if pixels.dtype != np.uint8:
        raise TypeError(f"normalise expects uint8 pixels, got {pixels.dtype}")
    return pixels.astype(np.float32) / np.float32(PIXEL_MAX)


def make_key(source_split: str, index: int) -> bytes:
    """The stable record key: the source file's split and the image's index in it."""
    return f"{source_split}-{index:05d}".encode()


def labelled_key(source: str, sha256: str) -> bytes:
    """A labelled image's key: its folder's name and its bytes' digest (stable, unique)."""
    return f"{source}-{sha256[:20]}".encode()


# --- Serialisation of tf.train.Example, by the protobuf wire format. -------------------
# Example{features=1: Features{feature=1: map<string, Feature>}};
# Feature{bytes_list=1, float_list=2, int64_list=3}; each list's `value` is field 1.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _map_entry(name: str, feature: bytes) -> bytes:
    return _field(1, _field(1, name.encode()) + _field(2, feature))


# The image entry's framing depends only on the (fixed) image size, so it is built once.
_IMAGE_ENTRY_PREFIX = _map_entry(IMAGE_KEY, _field(2, _field(1, b"\0" * (4 * IMAGE_SIZE))))[
    : -4 * IMAGE_SIZE
]
_LABEL_ENTRIES = [
    _map_entry(LABEL_KEY, _field(3, _field(1, _varint(i)))) for i in range(NOT_A_DIGIT + 1)
]
_LABEL_TABLE = np.array([np.frombuffer(entry, np.uint8) for entry in _LABEL_ENTRIES])


def _bytes_prefix(name: str, length: int) -> bytes:
    """A bytes feature's map entry up to (not including) a value of `length` bytes."""
    entry = _map_entry(name, _field(1, _field(1, b"v" * length)))
    return entry[: len(entry) - length]


def encode_examples(
    images: np.ndarray,
    labels: np.ndarray,
    keys: list[bytes],
    sources: list[bytes] | None = None,
    *,
    not_a_digit: bool = False,
) -> list[bytes]:
    """Serialises a block of records; `images` is float32 [n, 28, 28] (or [n, 784]),
    `sources` each record's source (default: all MNIST_SOURCE). Labels are 0-9, or all
    NOT_A_DIGIT with `not_a_digit`.

    Records whose keys and sources have the same lengths have the same layout, so each such
    group is assembled as one uint8 array, column block by column block, instead of record
    by record.
    """
    n = len(keys)
    sources = sources if sources is not None else [MNIST_SOURCE.encode()] * n
    if images.dtype != np.float32 or images.shape[0] != n or len(labels) != n or len(sources) != n:
        raise ValueError(
            f"inconsistent block: images {images.dtype}{images.shape}, "
            f"{len(labels)} labels, {len(keys)} keys, {len(sources)} sources"
        )
    allowed = (NOT_A_DIGIT, NOT_A_DIGIT) if not_a_digit else (0, NUM_CLASSES - 1)
    if n and (labels.min() < allowed[0] or labels.max() > allowed[1]):
        raise ValueError(f"labels must be in {allowed[0]}-{allowed[1]}")
    pixels = np.ascontiguousarray(images.reshape(n, IMAGE_SIZE), dtype="<f4").view(np.uint8)
    shapes = np.array([(len(k), len(s)) for k, s in zip(keys, sources, strict=True)], np.int64)
    records: list[bytes] = [b""] * n
    for key_length, source_length in np.unique(shapes.reshape(-1, 2), axis=0).tolist():
        rows = np.flatnonzero((shapes[:, 0] == key_length) & (shapes[:, 1] == source_length))
        block = _encode_group(
            pixels[rows], labels[rows], [keys[i] for i in rows], [sources[i] for i in rows]
        )
        for row, encoded in zip(rows.tolist(), block, strict=True):
            records[row] = encoded.tobytes()
    return records


def _encode_group(pixels, labels, keys: list[bytes], sources: list[bytes]) -> np.ndarray:
    """Records of one layout (keys of one length, sources of one length), one per row."""
    rows, key_length, source_length = len(keys), len(keys[0]), len(sources[0])
    key_prefix = _bytes_prefix(KEY_KEY, key_length)
    source_prefix = _bytes_prefix(SOURCE_KEY, source_length)
    features_len = (
        len(_IMAGE_ENTRY_PREFIX)
        + 4 * IMAGE_SIZE
        + len(_LABEL_ENTRIES[0])
        + len(key_prefix)
        + key_length
        + len(source_prefix)
        + source_length
    )
    head = _varint(1 << 3 | 2) + _varint(features_len)
    columns = [
        _constant(head + _IMAGE_ENTRY_PREFIX, rows),
        pixels,
        _LABEL_TABLE[labels.astype(np.intp)],
        _constant(key_prefix, rows),
        np.frombuffer(b"".join(keys), np.uint8).reshape(rows, -1),
        _constant(source_prefix, rows),
        np.frombuffer(b"".join(sources), np.uint8).reshape(rows, -1),
    ]
    return np.concatenate(columns, axis=1)


def _constant(data: bytes, rows: int) -> np.ndarray:
    return np.broadcast_to(np.frombuffer(data, np.uint8), (rows, len(data)))


# --- The TensorFlow side. ---------------------------------------------------------------


def feature_spec() -> dict:
    import tensorflow as tf

    return {
        IMAGE_KEY: tf.io.FixedLenFeature([IMAGE_SIZE], tf.float32),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
        KEY_KEY: tf.io.FixedLenFeature([], tf.string),
        # Datasets written before sources existed hold MNIST only.
        SOURCE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=MNIST_SOURCE),
    }


def parse_examples(serialized):
    """Batch of serialised Examples -> {image: float32 [n, 28, 28, 1], label, key, source}.

    Vectorised: call it after `batch()` in tf.data, not once per record.
    """
    import tensorflow as tf

    parsed = tf.io.parse_example(serialized, feature_spec())
    parsed[IMAGE_KEY] = tf.reshape(parsed[IMAGE_KEY], [-1, IMAGE_HEIGHT, IMAGE_WIDTH, 1])
    return parsed


def tfds_features():
    """The same schema as TFDS features, for `tfds.builder_from_directory`."""
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            IMAGE_KEY: tfds.features.Tensor(shape=IMAGE_SHAPE, dtype=np.float32),
            LABEL_KEY: tfds.features.ClassLabel(num_classes=NUM_CLASSES),
            KEY_KEY: tfds.features.Text(),
            SOURCE_KEY: tfds.features.Text(),
        }
    )
