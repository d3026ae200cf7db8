"""The preprocessing pipeline's stages, one named composite transform each.

    ReadIdx >> Normalise >> ToExamples >> WriteShards   (+ SummariseSplits on the side)

Elements are blocks of a few hundred images, not single images: one Beam element per
image spends most of its time in per-element overhead. Blocks still spread over
Dataflow workers (ReadIdx reshuffles them), and every block is serialised to TFRecord
bytes where it is, so the sink only writes bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import apache_beam as beam
import google_crc32c
import numpy as np
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics

from pipeline import idx, schema


@dataclass(frozen=True)
class SplitSource:
    """One pair of raw files and how its images are divided between output splits.

    `carve` maps an output split to the [start, stop) range of image indices it takes.
    """

    source_split: str
    images_path: str
    labels_path: str
    expected: tuple[idx.SourceFile, idx.SourceFile] | None
    carve: tuple[tuple[str, int, int], ...]


@dataclass
class Block:
    """Consecutive images of one source file, all bound for the same output split."""

    split: str
    source_split: str
    start: int
    images: np.ndarray  # uint8 [n, 28, 28], later float32 in [0, 1]
    labels: np.ndarray  # uint8 [n]

    def keys(self) -> list[bytes]:
        return [schema.make_key(self.source_split, self.start + i) for i in range(len(self.labels))]


class _ReadIdxFn(beam.DoFn):
    DIGESTS = "digests"

    def __init__(self, block_size: int):
        self.block_size = block_size
        self.images_read = Metrics.counter("ReadIdx", "images")

    def process(self, source: SplitSource):
        images, labels, digests = idx.read_split(
            source.images_path, source.labels_path, source.expected
        )
        self.images_read.inc(len(images))
        yield beam.pvalue.TaggedOutput(self.DIGESTS, digests)
        for split, start, stop in source.carve:
            if stop > len(images):
                raise idx.IdxError(
                    f"{source.images_path}: holds {len(images)} images, but the {split} "
                    f"split needs images up to index {stop}"
                )
            for first in range(start, stop, self.block_size):
                last = min(first + self.block_size, stop)
                yield Block(split, source.source_split, first, images[first:last], labels[first:last])


class ReadIdx(beam.PTransform):
    """SplitSources -> verified Blocks (main output) and {file: md5} (`digests`)."""

    def __init__(self, block_size: int):
        super().__init__()
        self.block_size = block_size

    def expand(self, sources):
        outputs = sources | "ReadAndVerify" >> beam.ParDo(
            _ReadIdxFn(self.block_size)
        ).with_outputs(_ReadIdxFn.DIGESTS, main="blocks")
        # Reading is one element per file pair; reshuffle so blocks spread over workers.
        blocks = outputs.blocks | "SpreadBlocks" >> beam.Reshuffle()
        return blocks, outputs[_ReadIdxFn.DIGESTS]


def _normalise_block(block: Block) -> Block:
    return Block(block.split, block.source_split, block.start, schema.normalise(block.images), block.labels)


class Normalise(beam.PTransform):
    """uint8 pixels -> float32 in [0, 1], by the schema's `normalise`."""

    def expand(self, blocks):
        return blocks | "DivideBy255" >> beam.Map(_normalise_block)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_records(records: list[bytes]) -> bytes:
    """TFRecord framing: length, masked CRC32C of the length, data, masked CRC32C of data."""
    parts = []
    for record in records:
        length = struct.pack("<Q", len(record))
        parts += (length, _masked_crc(length), record, _masked_crc(record))
    return b"".join(parts)


class _ToExamplesFn(beam.DoFn):
    def __init__(self):
        self.records = Metrics.counter("ToExamples", "records")

    def process(self, block: Block):
        records = schema.encode_examples(block.images, block.labels, block.keys())
        self.records.inc(len(records))
        yield block.split, frame_records(records)


class ToExamples(beam.PTransform):
    """Blocks -> (split, TFRecord-framed bytes of the block's tf.train.Examples)."""

    def expand(self, blocks):
        return blocks | "SerialiseBlocks" >> beam.ParDo(_ToExamplesFn())


class _FramedRecordsSink(filebasedsink.FileBasedSink):
    """Beam's file sink (temp files, atomic finalise, shard names) for pre-framed bytes."""

    def __init__(self, prefix: str, num_shards: int, compression: str):
        super().__init__(
            file_path_prefix=prefix,
            coder=beam.coders.BytesCoder(),
            num_shards=num_shards,
            shard_name_template="-SSSSS-of-NNNNN",
            compression_type=compression,
        )

    def write_encoded_record(self, file_handle, value: bytes):
        file_handle.write(value)


def shard_prefix(output_dir: str, split: str) -> str:
    """TFDS naming: `<dataset>-<split>.tfrecord-SSSSS-of-NNNNN`."""
    return f"{output_dir.rstrip('/')}/{schema.DATASET_NAME}-{split}.tfrecord"


class WriteShards(beam.PTransform):
    """(split, framed bytes) -> one sharded TFRecord file set per split; yields shard paths."""

    def __init__(self, output_dir: str, shards: dict[str, int], compression: str):
        super().__init__()
        self.output_dir = output_dir
        self.shards = shards
        self.compression = compression

    def expand(self, framed):
        splits = list(self.shards)
        by_split = framed | "BySplit" >> beam.Partition(
            lambda element, _: splits.index(element[0]), len(splits)
        )
        written = []
        for split, pcoll in zip(splits, by_split, strict=True):
            sink = _FramedRecordsSink(
                shard_prefix(self.output_dir, split), self.shards[split], self.compression
            )
            written.append(
                pcoll
                | f"Bytes[{split}]" >> beam.Values()
                | f"Write[{split}]" >> beam.io.Write(sink)
            )
        return written | "AllShards" >> beam.Flatten()


def _label_counts(block: Block) -> dict:
    counts = np.bincount(block.labels, minlength=schema.NUM_CLASSES)
    return {"labels": {block.split: counts.tolist()}}


def merge_facts(facts) -> dict:
    """Merges {labels: {split: counts}} and {digests: {file: md5}} dicts."""
    merged: dict = {"labels": {}, "digests": {}}
    for fact in facts:
        for split, counts in fact.get("labels", {}).items():
            previous = merged["labels"].get(split, [0] * len(counts))
            merged["labels"][split] = [a + b for a, b in zip(previous, counts, strict=True)]
        merged["digests"].update(fact.get("digests", {}))
    return merged


class SummariseSplits(beam.PTransform):
    """Blocks + digests -> one dict of label counts per split and source digests."""

    def expand(self, inputs):
        blocks, digests = inputs
        counts = blocks | "CountLabels" >> beam.Map(_label_counts)
        wrapped = digests | "WrapDigests" >> beam.Map(lambda d: {"digests": d})
        return (
            (counts, wrapped)
            | "AllFacts" >> beam.Flatten()
            | "MergeFacts" >> beam.CombineGlobally(merge_facts)
        )


COMPRESSION = {"none": CompressionTypes.UNCOMPRESSED, "gzip": CompressionTypes.GZIP}
