"""The TFRecord file format, without TensorFlow: framing records, and reading them back
from any file object (a local file or a gs:// object opened through common.files).

A record is framed as: length (uint64 LE), masked CRC32C of the length, the data, masked
CRC32C of the data. Reading checks both checksums, so a damaged file is reported, not
silently misread. A file that starts with the gzip magic is read through gzip.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator

import google_crc32c

GZIP_MAGIC = b"\x1f\x8b"


class TFRecordError(ValueError):
    """A TFRecord file is truncated or damaged; the message says where."""


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_records(records: list[bytes]) -> bytes:
    """Records -> the bytes of a TFRecord file holding them."""
    parts = []
    for record in records:
        length = struct.pack("<Q", len(record))
        parts += (length, _masked_crc(length), record, _masked_crc(record))
    return b"".join(parts)


def read_records(handle) -> Iterator[bytes]:
    """Yields each record of an open TFRecord file (gzip-compressed or not), checked."""
    head = handle.read(2)
    if head == GZIP_MAGIC:
        handle = gzip.GzipFile(fileobj=_Prefixed(head, handle), mode="rb")
        head = b""
    index, offset = 0, 0
    where = "byte {} of the uncompressed data" if head == b"" else "byte {}"
    while header := head + _read(handle, 12 - len(head)):
        head = b""
        at = f"record {index} at {where.format(offset)}"
        if len(header) < 12:
            raise TFRecordError(f"{at}: truncated header")
        length, crc = header[:8], header[8:]
        if _masked_crc(length) != crc:
            raise TFRecordError(f"{at}: corrupt length (checksum mismatch)")
        (size,) = struct.unpack("<Q", length)
        data = _read(handle, size + 4)
        if len(data) != size + 4:
            raise TFRecordError(f"{at}: truncated data")
        if _masked_crc(data[:-4]) != data[-4:]:
            raise TFRecordError(f"{at}: corrupt data (checksum mismatch)")
        yield data[:-4]
        index += 1
        offset += 12 + size + 4


def _read(handle, size: int) -> bytes:
    """Up to `size` bytes; fewer only at the end of the file."""
    chunks, missing = [], size
    while missing > 0:
        chunk = handle.read(missing)
        if not chunk:
            break
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


class _Prefixed:
    """A file object whose first bytes were already read: gives them back first."""

    def __init__(self, prefix: bytes, handle):
        self.prefix, self.handle = prefix, handle

    def read(self, size: int = -1) -> bytes:
        if not self.prefix:
            return self.handle.read(size)
        if size < 0:
            data, self.prefix = self.prefix + self.handle.read(), b""
            return data
        data, self.prefix = self.prefix[:size], self.prefix[size:]
        if len(data) < size:
            data += self.handle.read(size - len(data))
        return data
