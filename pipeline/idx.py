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
        raise IdxError(_digest_message(path, digest, expected_md5))
    return digest


def _digest_message(path: str, digest: str, expected_md5: str) -> str:
    return (
        f"{path}: MD5 of the uncompressed bytes is {digest}, expected {expected_md5} "
        "for canonical MNIST; the file is corrupt or a different dataset (for "
        "Fashion-MNIST, KMNIST or your own IDX files pass --no-digest-check)"
    )


def read_labels(path: str, expected: SourceFile | None) -> tuple[np.ndarray, str]:
    """A labels file (small: one byte a record), verified; returns (labels, md5)."""
    data = read_bytes(path)
    digest = check_digest(path, data, expected.md5) if expected else hashlib.md5(data).hexdigest()
    return parse_labels(path, data), digest


class ImageStream:
    """Reads an IDX images file front to back, one range of images at a time, so memory
    holds one range whatever the file's size. The header, the length and (when expected)
    the MD5 of the uncompressed bytes are checked as it reads; the MD5 is in `md5` once
    `ranges` is exhausted. A check that fails raises IdxError naming the file."""

    def __init__(self, path: str, expected: SourceFile | None, count: int, shape=(28, 28)):
        self.path, self.expected, self.count, self.shape = path, expected, count, shape
        self.md5: str | None = None

    def ranges(self, ranges: list[tuple[int, int]]):
        """Yields uint8 [stop - start, rows, cols] for each (start, stop), in file order."""
        digest = hashlib.md5()
        try:
            with files.open_read(self.path) as raw:
                handle = gzip.GzipFile(fileobj=raw) if self.path.endswith(".gz") else raw
                size = self._header(handle, digest)
                position = 0
                for start, stop in sorted(ranges):
                    digest.update(self._read(handle, (start - position) * size))
                    data = self._read(handle, (stop - start) * size)
                    digest.update(data)
                    yield np.frombuffer(data, np.uint8).reshape(stop - start, *self.shape)
                    position = stop
                digest.update(self._read(handle, (self.count - position) * size))
                if handle.read(1):
                    raise IdxError(f"{self.path}: {_LENGTH}")
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise IdxError(
                f"{self.path}: damaged gzip data ({error}); the file is truncated or "
                "corrupt, download it again"
            ) from error
        self.md5 = digest.hexdigest()
        if self.expected is not None and self.md5 != self.expected.md5:
            raise IdxError(_digest_message(self.path, self.md5, self.expected.md5))

    def _header(self, handle, digest) -> int:
        header = handle.read(16)
        digest.update(header)
        count, rows, cols = _dims(self.path, header, IMAGES_MAGIC, 3)
        if (rows, cols) != self.shape:
            raise IdxError(f"{self.path}: images are {rows}x{cols}, expected {self.shape}")
        if count != self.count:
            raise IdxError(
                f"{self.path} holds {count} images but its labels file holds {self.count} "
                "labels; the two files must come from the same dataset split"
            )
        return rows * cols

    def _read(self, handle, size: int) -> bytes:
        data = handle.read(size)
        if len(data) != size:
            raise IdxError(f"{self.path}: {_LENGTH}")
        return data


_LENGTH = "its length does not match its header: the file is truncated or has trailing data"
