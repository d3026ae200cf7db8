"""Reads and verifies IDX files (the format MNIST, Fashion-MNIST and KMNIST ship in).

Every check names the file and says what is wrong: the gzip wrapper, the magic number,
the dimensions, the length against the header, the labels' range and, for the canonical
MNIST files, the MD5 of the uncompressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass

import numpy as np

from common import files

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


@dataclass(frozen=True)
class SourceFile:
    """One raw file and, for the canonical MNIST files, its known digest."""

    name: str
    records: int
    md5: str


# The MD5s are of the uncompressed bytes: the .gz wrappers differ between mirrors.
MNIST_FILES = {
    "train": (
        SourceFile("train-images-idx3-ubyte.gz", 60_000, "6bbc9ace898e44ae57da46a324031adb"),
        SourceFile("train-labels-idx1-ubyte.gz", 60_000, "a25bea736e30d166cdddb491f175f624"),
    ),
    "test": (
        SourceFile("t10k-images-idx3-ubyte.gz", 10_000, "2646ac647ad5339dbf082846283269ea"),
        SourceFile("t10k-labels-idx1-ubyte.gz", 10_000, "27ae3e4e09519cfbb04c329615203637"),
    ),
}
MNIST_FILE_NAMES = tuple(f.name for pair in MNIST_FILES.values() for f in pair)


class IdxError(ValueError):
    """A raw file is missing, damaged or not what it claims to be."""


def read_bytes(path: str) -> bytes:
    """The uncompressed bytes of a local or `gs://` file (gunzipped when it ends in .gz)."""
    try:
        raw = files.read_bytes(path)
    except FileNotFoundError as error:
        raise IdxError(f"{path}: file not found") from error
    except OSError as error:
        if not files.exists(path):
            raise IdxError(f"{path}: file not found") from error
        raise IdxError(f"{path}: cannot be read ({error})") from error
    if not path.endswith(".gz"):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise IdxError(
            f"{path}: damaged gzip data ({error}); the file is truncated or corrupt, "
            "download it again"
        ) from error


def _dims(path: str, data: bytes, magic: int, ndim: int) -> tuple[int, ...]:
    if len(data) < 4 + 4 * ndim:
        raise IdxError(f"{path}: {len(data)} bytes is too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise IdxError(
            f"{path}: magic number {found}, expected {magic} for IDX {kind}; "
            "is this the right file?"
        )
    return tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))


def _header(path: str, data: bytes, magic: int, ndim: int) -> tuple[int, ...]:
    dims = _dims(path, data, magic, ndim)
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise IdxError(
            f"{path}: {len(data)} bytes but the header {dims} needs {expected}; "
            "the file is truncated or has trailing data"
        )
    return dims


def peek_count(path: str, magic: int) -> int:
    """The record count from the header alone (cheap: reads 16 bytes), to plan the job."""
    ndim = 3 if magic == IMAGES_MAGIC else 1
    try:
        with files.open_read(path) as raw:
            handle = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
            head = handle.read(4 + 4 * ndim)
    except FileNotFoundError as error:
        raise IdxError(f"{path}: file not found") from error
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: cannot be read ({error}); is it truncated or corrupt?") from error
    return _dims(path, head, magic, ndim)[0]


def parse_images(path: str, data: bytes, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """IDX image bytes -> uint8 [n, rows, cols], checking magic, size and length."""
    count, rows, cols = _header(path, data, IMAGES_MAGIC, 3)
    if (rows, cols) != shape:
        raise IdxError(f"{path}: images are {rows}x{cols}, expected {shape[0]}x{shape[1]}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def parse_labels(path: str, data: bytes, num_classes: int = 10) -> np.ndarray:
    """IDX label bytes -> uint8 [n], checking magic, length and range."""
    _header(path, data, LABELS_MAGIC, 1)
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise IdxError(
            f"{path}: {bad.size} labels outside 0-{num_classes - 1}, the first is "
            f"{int(labels[bad[0]])} at index {int(bad[0])}"
        )
    return labels


def check_digest(path: str, data: bytes, expected_md5: str) -> str:
    digest = hashlib.md5(data).hexdigest()
    if digest != expected_md5:
        raise IdxError(
            f"{path}: MD5 of the uncompressed bytes is {digest}, expected {expected_md5} "
            "for canonical MNIST; the file is corrupt or a different dataset (for "
            "Fashion-MNIST, KMNIST or your own IDX files pass --no-digest-check)"
        )
    return digest


def read_split(
    images_path: str, labels_path: str, expected: tuple[SourceFile, SourceFile] | None
) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Reads and verifies one images/labels pair; returns (images, labels, md5 by file)."""
    image_bytes = read_bytes(images_path)
    label_bytes = read_bytes(labels_path)
    digests = {
        images_path: hashlib.md5(image_bytes).hexdigest(),
        labels_path: hashlib.md5(label_bytes).hexdigest(),
    }
    if expected is not None:
        check_digest(images_path, image_bytes, expected[0].md5)
        check_digest(labels_path, label_bytes, expected[1].md5)
    images = parse_images(images_path, image_bytes)
    labels = parse_labels(labels_path, label_bytes)
    if len(images) != len(labels):
        raise IdxError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; the two files must come from the same dataset split"
        )
    return images, labels, digests
