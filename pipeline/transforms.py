"""The preprocessing pipeline's stages, one named composite transform each.

    ReadIdx >> Normalise >> [MergeLabelled] >> ToExamples >> WriteShards
                                  (+ SummariseSplits on the side)

Elements are whole shards, not single images: one Beam element per image spends most of
its time in per-element overhead. ReadIdx reads each source file front to back and cuts
it into its shards as it reads; each shard is then normalised, serialised and written in
the same fused stage, with no shuffle of images at all, so memory holds about one shard
whatever the size of the source. The source file pairs (MNIST has two) are the
parallelism. Shard contents are deterministic.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.options.value_provider import StaticValueProvider

from common import schema
from common.counts import merge_counts
from common.progress import ProgressLog
from common.tfrecord import frame_records
from pipeline import idx
from pipeline.output import temp_dir


@dataclass(frozen=True)
class ShardPlan:
    """Which images of a source file go to which shard of which output split."""

    split: str
    shard: int
    num_shards: int
    start: int
    stop: int

    @property
    def file_name(self) -> str:
        """TFDS naming: `<dataset>-<split>.tfrecord-SSSSS-of-NNNNN`."""
        return schema.shard_file_name(self.split, self.shard, self.num_shards)


@dataclass(frozen=True)
class SplitSource:
    """One pair of raw files and the shards its images are divided into."""

    source_split: str
    images_path: str
    labels_path: str
    expected: tuple[idx.SourceFile, idx.SourceFile] | None
    shards: tuple[ShardPlan, ...]


@dataclass
class Block:
    """The images of one output shard, in source order."""

    plan: ShardPlan
    source_split: str
    images: np.ndarray  # uint8 [n, 28, 28], float32 in [0, 1] after Normalise
    labels: np.ndarray  # uint8 [n]

    def keys(self) -> list[bytes]:
        first = self.plan.start
        return [schema.make_key(self.source_split, first + i) for i in range(len(self.labels))]


@dataclass
class Records:
    """What one output file holds, ready to serialise: images float32 [n, 28, 28]."""

    file_name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    keys: list[bytes]
    sources: list[bytes]
    not_a_digit: bool = False

    @classmethod
    def of_block(cls, block: Block) -> Records:
        n = len(block.labels)
        mnist = [schema.MNIST_SOURCE.encode()] * n
        return cls(
            block.plan.file_name, block.plan.split, block.images, block.labels, block.keys(), mnist
        )


class _ReadIdxFn(beam.DoFn):
    DIGESTS = "digests"

    def __init__(self, progress: ProgressLog | None):
        self.images_read = Metrics.counter("ReadIdx", "images")
        self.progress = progress

    def process(self, source: SplitSource):
        expected = source.expected or (None, None)
        labels, labels_md5 = idx.read_labels(source.labels_path, expected[1])
        stream = idx.ImageStream(source.images_path, expected[0], count=len(labels))
        for plan in source.shards:
            if plan.stop > len(labels):
                raise idx.IdxError(
                    f"{source.images_path}: holds {len(labels)} images, but the {plan.split} "
                    f"split needs images up to index {plan.stop}"
                )
        ranges = [(plan.start, plan.stop) for plan in source.shards]
        for plan, images in zip(source.shards, stream.ranges(ranges), strict=True):
            self.images_read.inc(len(images))
            if self.progress:
                self.progress.count(done=len(images))
            yield Block(plan, source.source_split, images, labels[plan.start : plan.stop])
        digests = {source.images_path: stream.md5, source.labels_path: labels_md5}
        yield beam.pvalue.TaggedOutput(self.DIGESTS, digests)


class ReadIdx(beam.PTransform):
    """SplitSources -> verified Blocks, one per output shard, and {file: md5} (`digests`).

    Each source file is read front to back, streaming: a shard's Block is passed on (and
    written) as soon as it is read, so memory holds about one shard whatever the size of
    the source. The source pairs are spread over the workers. With `progress`, each
    worker logs the images read so far at its interval.
    """

    def __init__(self, progress: ProgressLog | None = None):
        super().__init__()
        self.progress = progress

    def expand(self, sources):
        outputs = (
            sources
            | "SpreadSources" >> beam.Reshuffle()
            | "ReadAndVerify"
            >> beam.ParDo(_ReadIdxFn(self.progress)).with_outputs(_ReadIdxFn.DIGESTS, main="blocks")
        )
        return outputs.blocks, outputs[_ReadIdxFn.DIGESTS]


def _normalise_block(block: Block) -> Block:
    return Block(block.plan, block.source_split, schema.normalise(block.images), block.labels)


class Normalise(beam.PTransform):
    """uint8 pixels -> float32 in [0, 1], by the schema's `normalise`, as Records."""

    def expand(self, blocks):
        return (
            blocks
            | "DivideBy255" >> beam.Map(_normalise_block)
            | "AsRecords" >> beam.Map(Records.of_block)
        )


def _merge(item) -> Records:
    """One file's MNIST Records (none for a not_a_digit file) and its labelled images,
    which come as (split, model.labelled.LabelledImage)."""
    file_name, joined = item
    mnist, labelled = list(joined["mnist"]), joined["labelled"]
    labelled = sorted(labelled, key=lambda placed: placed[1].sha256)
    if mnist:
        (base,) = mnist
    else:
        empty = np.zeros((0, *schema.IMAGE_SHAPE), np.float32)
        base = Records(file_name, labelled[0][0], empty, np.zeros(0, np.int64), [], [], True)
    if not labelled:
        return base
    images = [image for _, image in labelled]
    pixels = np.stack([image.pixels for image in images])
    labels = np.array([image.file.label for image in images], np.int64)
    return Records(
        file_name,
        base.split,
        np.concatenate([base.images, schema.normalise(pixels)]),
        np.concatenate([base.labels.astype(np.int64), labels]),
        base.keys + [schema.labelled_key(i.file.source, i.sha256) for i in images],
        base.sources + [i.file.source.encode() for i in images],
        base.not_a_digit,
    )


class MergeLabelled(beam.PTransform):
    """(MNIST Records, (file name, (split, labelled image))) -> Records: each shard with
    the labelled images that hash into it, and one not_a_digit file per split that has any."""

    def expand(self, inputs):
        mnist, placed = inputs
        keyed = mnist | "KeyByFile" >> beam.Map(lambda records: (records.file_name, records))
        return (
            {"mnist": keyed, "labelled": placed}
            | "JoinByFile" >> beam.CoGroupByKey()
            | "Merge" >> beam.Map(_merge)
        )


class _ToExamplesFn(beam.DoFn):
    def __init__(self):
        self.records = Metrics.counter("ToExamples", "records")

    def process(self, records: Records):
        encoded = schema.encode_examples(
            records.images,
            records.labels,
            records.keys,
            records.sources,
            not_a_digit=records.not_a_digit,
        )
        self.records.inc(len(encoded))
        yield records.file_name, frame_records(encoded)


class ToExamples(beam.PTransform):
    """Records -> (file name, its tf.train.Examples as TFRecord bytes)."""

    def expand(self, blocks):
        return blocks | "SerialiseShards" >> beam.ParDo(_ToExamplesFn())


class _FramedRecordsSink(fileio.FileSink):
    """Writes already framed TFRecord bytes, GZIP-compressed on request."""

    def __init__(self, compression: str):
        self.compression = compression
        self._handle = None

    def open(self, fh):
        self._handle = gzip.GzipFile(fileobj=fh, mode="wb") if self.compression == "gzip" else fh

    def write(self, record):
        self._handle.write(record[1])

    def flush(self):
        if self._handle is not None and self.compression == "gzip":
            self._handle.close()  # ends the gzip stream; the file itself stays open for Beam


def _shard_name(window, pane, shard_index, total_shards, compression, destination):
    return destination


class WriteShards(beam.PTransform):
    """(shard file name, bytes) -> the shard files, through Beam's file sink.

    Beam writes each shard to a temporary folder and moves it into place once written,
    so a failed run leaves no partial shard under its final name.
    """

    def __init__(self, output_dir: str, compression: str, shards: int = 20):
        super().__init__()
        self.output_dir = output_dir
        self.compression = compression
        self.shards = shards

    def expand(self, shards):
        return shards | "WriteFiles" >> fileio.WriteToFiles(
            path=self.output_dir,
            temp_directory=StaticValueProvider(str, temp_dir(self.output_dir)),
            destination=lambda shard: shard[0],
            sink=lambda _: _FramedRecordsSink(self.compression),
            file_naming=_shard_name,
            shards=1,
            # One writer per shard: over the limit, Beam would spill records to a shuffle.
            max_writers_per_bundle=max(self.shards, 20),
        )


def _label_counts(records: Records) -> dict:
    """Digit label counts per split, and records per source and split."""
    by_source: dict = {}
    for source in sorted(set(records.sources)):
        rows = np.array([s == source for s in records.sources], bool)
        labels = records.labels[rows]
        by_source[source.decode()] = {
            records.split: {
                "records": int(rows.sum()),
                "labels": np.bincount(
                    labels[labels < schema.NUM_CLASSES], minlength=schema.NUM_CLASSES
                ).tolist(),
                "not_a_digit": int((labels == schema.NOT_A_DIGIT).sum()),
            }
        }
    if records.not_a_digit:
        return {"by_source": by_source}
    counts = np.bincount(records.labels, minlength=schema.NUM_CLASSES)
    return {"labels": {records.split: counts.tolist()}, "by_source": by_source}


class SummariseSplits(beam.PTransform):
    """Records + digests -> one dict: label counts per split, records per source and
    split, and source digests."""

    def expand(self, inputs):
        records, digests = inputs
        counts = records | "CountLabels" >> beam.Map(_label_counts)
        wrapped = digests | "WrapDigests" >> beam.Map(lambda d: {"digests": d})
        return (
            (counts, wrapped)
            | "AllFacts" >> beam.Flatten()
            | "MergeFacts" >> beam.CombineGlobally(merge_counts)
        )


COMPRESSIONS = ("none", "gzip")
