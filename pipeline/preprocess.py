"""Preprocessing: raw MNIST IDX files -> sharded, normalised TFRecords with metadata (the
pipeline `digits preprocess` runs; jobs/preprocess.py holds its options).

Output: `mnist-{train,validation,test}.tfrecord-SSSSS-of-NNNNN`, TFDS metadata
(`tfds.builder_from_directory(OUTPUT)` loads it) and `manifest.json`, written last.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

import pipeline
from common import files, schema
from common.progress import ProgressLog
from common.startup import show_job_logs
from pipeline import idx, output, sources
from pipeline.transforms import (
    Normalise,
    ReadIdx,
    ShardPlan,
    SplitSource,
    SummariseSplits,
    ToExamples,
    WriteShards,
    temp_dir,
)

RECORDS_PER_SHARD = 10_000  # about 32 MB of float32 images per shard


@dataclass(frozen=True)
class PreprocessConfig:
    output: str
    source: str | None = None
    validation_size: int = 5_000
    num_shards: int = 0  # 0: one shard per 10,000 records in each split
    compression: str = "none"
    verify_digests: bool = True
    progress_interval: float = 30.0  # seconds between progress lines


def plan_sources(config: PreprocessConfig, source_dir: str) -> tuple[list[SplitSource], dict]:
    """Reads the headers (cheap) to fail fast, carve validation out of train and plan shards."""
    specs, counts = [], {}
    for source_split, (images, labels) in idx.MNIST_FILES.items():
        images_path = files.join(source_dir, images.name)
        labels_path = files.join(source_dir, labels.name)
        n_images = peek_pair(images_path, labels_path)
        plans = []
        for split, (start, stop) in carve(source_split, n_images, config.validation_size).items():
            counts[split] = stop - start
            plans += plan_shards(split, start, stop, config.num_shards)
        expected = (images, labels) if config.verify_digests else None
        specs.append(SplitSource(source_split, images_path, labels_path, expected, tuple(plans)))
    return specs, counts


def peek_pair(images_path: str, labels_path: str) -> int:
    """The pair's record count, from the headers; they must agree."""
    n_images = idx.peek_count(images_path, idx.IMAGES_MAGIC)
    n_labels = idx.peek_count(labels_path, idx.LABELS_MAGIC)
    if n_images != n_labels:
        raise idx.IdxError(
            f"{images_path} holds {n_images} images but {labels_path} holds {n_labels} "
            "labels; the two files must come from the same dataset split"
        )
    return n_images


def carve(source_split: str, count: int, validation_size: int) -> dict[str, tuple[int, int]]:
    """Output split -> (start, stop) in the source file: validation is train's last images."""
    if source_split != "train":
        return {"test": (0, count)}
    if not 0 < validation_size < count:
        raise ValueError(
            f"--validation-size {validation_size} must be between 1 and "
            f"{count - 1} (the training file holds {count} images)"
        )
    cut = count - validation_size
    return {"train": (0, cut), "validation": (cut, count)}


def plan_shards(split: str, start: int, stop: int, num_shards: int) -> list[ShardPlan]:
    """Contiguous, equal (to one image) shards; by default one per 10,000 records."""
    count = stop - start
    n = num_shards or max(1, math.ceil(count / RECORDS_PER_SHARD))
    if n > count:
        raise ValueError(f"--num-shards {n} is more than the {count} records of the {split} split")
    edges = [start + count * i // n for i in range(n + 1)]
    return [ShardPlan(split, i, n, edges[i], edges[i + 1]) for i in range(n)]


def build(p: beam.Pipeline, config: PreprocessConfig, specs: list[SplitSource]) -> None:
    images = sum(plan.stop - plan.start for spec in specs for plan in spec.shards)
    progress = ProgressLog(images, config.progress_interval, unit="images")
    blocks, digests = p | "Sources" >> beam.Create(specs) | "ReadIdx" >> ReadIdx(progress)
    (
        blocks
        | "Normalise" >> Normalise()
        | "ToExamples" >> ToExamples()
        | "WriteShards"
        >> WriteShards(config.output, config.compression, sum(len(s.shards) for s in specs))
    )
    facts_path = files.join(config.output, output.FACTS_FILE)
    (
        (blocks, digests)
        | "SummariseSplits" >> SummariseSplits()
        | "WriteFacts" >> beam.Map(files.write_json_to, facts_path)
    )


def finalise(config: PreprocessConfig, expected_counts: dict[str, int], seconds: float) -> dict:
    """Checks what the pipeline wrote, then writes TFDS metadata and, last, the manifest."""
    facts_path = files.join(config.output, output.FACTS_FILE)
    facts = files.read_json(facts_path)
    shards = {
        split: [
            output.describe_shard(path, config.compression)
            for path in output.shard_files(config.output, split)
        ]
        for split in schema.SPLITS
    }
    check_counts(shards, facts, expected_counts)
    if config.compression == "none":
        output.write_tfds_metadata(config.output, shards, pipeline.DESCRIPTION)
    manifest = manifest_record(config, shards, facts, seconds)
    files.delete(facts_path)
    files.delete(temp_dir(config.output), missing_ok=True)
    files.write_json(files.join(config.output, schema.MANIFEST_FILE), manifest)
    return manifest


def check_counts(shards: dict[str, list[dict]], facts: dict, expected: dict[str, int]) -> None:
    """Records written, labels counted and the plan's counts must agree for every split."""
    for split, count in expected.items():
        written = sum(s["records"] for s in shards[split])
        labelled = sum(facts["labels"].get(split, []))
        if not written == labelled == count:
            raise RuntimeError(
                f"{split}: wrote {written} records, counted {labelled}, expected {count}"
            )


MANIFEST_SCHEMA = {
    schema.IMAGE_KEY: {
        "dtype": "float32",
        "shape": list(schema.IMAGE_SHAPE),
        "range": [0.0, 1.0],
        "normalisation": "pixel / 255",
    },
    schema.LABEL_KEY: {"dtype": "int64", "range": [0, schema.NUM_CLASSES - 1]},
    schema.KEY_KEY: {"dtype": "bytes", "format": "<source split>-<index>"},
}


def manifest_record(
    config: PreprocessConfig, shards: dict[str, list[dict]], facts: dict, seconds: float
) -> dict:
    return {
        "dataset": schema.DATASET_NAME,
        "pipeline_version": pipeline.__version__,
        "created": files.utc_timestamp(),
        "config": asdict(config),
        "compression": config.compression,
        "schema": MANIFEST_SCHEMA,
        "sources": facts["digests"],
        "splits": {
            split: {
                "records": sum(s["records"] for s in shards[split]),
                "labels": facts["labels"][split],
                "shards": shards[split],
            }
            for split in schema.SPLITS
        },
        "seconds": round(seconds, 2),
    }


def summary(manifest: dict) -> str:
    lines = [f"Wrote {manifest['config']['output']} in {manifest['seconds']:.1f} s"]
    for split, info in manifest["splits"].items():
        labels = " ".join(str(n) for n in info["labels"])
        lines.append(
            f"  {split:<10} {info['records']:>6} records in {len(info['shards'])} shards; "
            f"per label: {labels}"
        )
    return "\n".join(lines)


def run(config: PreprocessConfig, beam_args: list[str]) -> dict:
    """sources -> refuse a foreign --output -> the Beam pipeline -> manifest, last."""
    started = time.time()
    show_job_logs()
    source_dir = sources.locate(config.source)
    specs, counts = plan_sources(config, source_dir)
    output.claim(config.output)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        build(p, config, specs)
    manifest = finalise(config, counts, time.time() - started)
    print(summary(manifest))
    return manifest
