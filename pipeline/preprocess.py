"""Preprocessing: raw MNIST IDX files -> sharded, normalised TFRecords with metadata (the
pipeline `digits preprocess` runs; jobs/preprocess.py holds its options).

Output: `mnist-{train,validation,test}.tfrecord-SSSSS-of-NNNNN`, TFDS metadata
(`tfds.builder_from_directory(OUTPUT)` loads it) and `manifest.json`, written last.
With labelled folders (`--labelled DIR`, pipeline/labelled.py) their images join the
shards of the split their digest picks, not-a-digit images go to
`not_a_digit-<split>.tfrecord`, and `excluded.jsonl` says which
files were left out and why. With `--relabel FILE` (pipeline/relabel.py) the training
digits a person found mislabelled get their corrected label.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

import pipeline
from common import files, schema
from common.progress import ProgressLog
from common.startup import show_job_logs
from pipeline import idx, labelled, output, relabel, sources
from pipeline.labelled import DEFAULT_SPLIT, Deduplicate, ReadLabelled
from pipeline.transforms import (
    MergeLabelled,
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
    # 16,000: the 95% bound behind the review threshold lets eight errors among 14,432 of
    # them pass the 0.1% target, room for MNIST's few confidently mislabelled digits, so
    # `robust` accepts more than 95% of new digits (10,000 allow four among 9,151, and the
    # fifth stops the threshold at the edge of 95%; docs/calibration.md). Train keeps 44,000.
    validation_size: int = 16_000
    num_shards: int = 0  # 0: one shard per 10,000 records in each split
    compression: str = "none"
    verify_digests: bool = True
    progress_interval: float = 30.0  # seconds between progress lines
    labelled: tuple[str, ...] = ()  # image folders, one folder per class (pipeline/labelled.py)
    labelled_split: tuple[int, int, int] = DEFAULT_SPLIT  # percent train/val/test
    relabel: str | None = None  # a CSV of label corrections (pipeline/relabel.py)


@dataclass(frozen=True)
class Plan:
    """What the pipeline will read: MNIST's shards, and the labelled folders' files."""

    specs: list[SplitSource]
    counts: dict[str, int]  # MNIST records per split
    shards: dict[str, int]  # shards per split
    candidates: list[labelled.LabelledFile] = field(default_factory=list)
    misplaced: list[dict] = field(default_factory=list)
    listed: dict[str, int] = field(default_factory=dict)  # files per labelled source
    corrections: relabel.Corrections | None = None


def plan_sources(config: PreprocessConfig, source_dir: str) -> Plan:
    """Reads the headers (cheap) to fail fast, carve validation out of train, lists the
    labelled folders and plans the shards (room for each split's share of labelled files)."""
    candidates, misplaced = labelled.list_labelled(config.labelled)
    listed = Counter(f.source for f in candidates) + Counter(r["source"] for r in misplaced)
    share = dict(zip(schema.SPLITS, config.labelled_split, strict=True))
    specs, counts, shards, corrections = [], {}, {}, None
    for source_split, (images, labels) in idx.MNIST_FILES.items():
        images_path = files.join(source_dir, images.name)
        labels_path = files.join(source_dir, labels.name)
        n_images = peek_pair(images_path, labels_path)
        if config.relabel and source_split == relabel.SOURCE_SPLIT:
            corrections = relabel.read(config.relabel, n_images)
        plans = []
        for split, (start, stop) in carve(source_split, n_images, config.validation_size).items():
            counts[split] = stop - start
            room = len(candidates) * share[split] // 100
            plans += plan_shards(split, start, stop, config.num_shards, room)
            shards[split] = plans[-1].num_shards
        expected = (images, labels) if config.verify_digests else None
        specs.append(SplitSource(source_split, images_path, labels_path, expected, tuple(plans)))
    return Plan(specs, counts, shards, candidates, misplaced, dict(listed), corrections)


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


def plan_shards(
    split: str, start: int, stop: int, num_shards: int, room: int = 0
) -> list[ShardPlan]:
    """Contiguous, equal (to one image) shards; by default one per 10,000 records, counting
    `room` more for the labelled images that will join them."""
    count = stop - start
    n = num_shards or max(1, math.ceil((count + room) / RECORDS_PER_SHARD))
    if n > count:
        raise ValueError(f"--num-shards {n} is more than the {count} records of the {split} split")
    edges = [start + count * i // n for i in range(n + 1)]
    return [ShardPlan(split, i, n, edges[i], edges[i + 1]) for i in range(n)]


EXCLUDED_FILE = "excluded.jsonl"


def build(p: beam.Pipeline, config: PreprocessConfig, plan: Plan) -> None:
    images = sum(shard.stop - shard.start for spec in plan.specs for shard in spec.shards)
    progress = ProgressLog(images, config.progress_interval, unit="images")
    blocks, digests = p | "Sources" >> beam.Create(plan.specs) | "ReadIdx" >> ReadIdx(progress)
    records = blocks | "Normalise" >> Normalise()
    if plan.corrections:
        records = records | "Relabel" >> beam.Map(relabel.apply, plan.corrections)
    if config.labelled:
        records = (records, labelled_images(p, config, plan)) | "MergeLabelled" >> MergeLabelled()
    files_out = sum(plan.shards.values()) + len(schema.SPLITS)
    (
        records
        | "ToExamples" >> ToExamples()
        | "WriteShards" >> WriteShards(config.output, config.compression, files_out)
    )
    facts_path = files.join(config.output, output.FACTS_FILE)
    (
        (records, digests)
        | "SummariseSplits" >> SummariseSplits()
        | "WriteFacts" >> beam.Map(files.write_json_to, facts_path)
    )


def labelled_images(p: beam.Pipeline, config: PreprocessConfig, plan: Plan):
    """The labelled folders' distinct images, placed in their files; what is left out
    goes to excluded.jsonl, through Beam's text sink."""
    read, unreadable = (
        p | "LabelledFiles" >> beam.Create(plan.candidates) | "ReadLabelled" >> ReadLabelled()
    )
    kept, rejected = read | "Deduplicate" >> Deduplicate()
    misplaced = p | "Misplaced" >> beam.Create(plan.misplaced)
    (
        (misplaced, unreadable, rejected)
        | "AllExcluded" >> beam.Flatten()
        | "AsJson" >> beam.Map(lambda row: json.dumps(row, sort_keys=True))
        | "WriteExcluded"
        >> beam.io.WriteToText(
            files.join(config.output, EXCLUDED_FILE), shard_name_template="", num_shards=1
        )
    )
    split, shards = config.labelled_split, plan.shards
    return kept | "Place" >> beam.Map(labelled.destination, split, shards)


def finalise(config: PreprocessConfig, plan: Plan, seconds: float) -> dict:
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
    check_counts(shards, facts, plan.counts)
    negatives = {
        split: output.describe_shard(path, config.compression)
        for split in schema.SPLITS
        if files.exists(path := files.join(config.output, schema.not_a_digit_file_name(split)))
    }
    accounts = {}
    if config.labelled:
        rows = files.read_bytes(files.join(config.output, EXCLUDED_FILE)).decode().splitlines()
        accounts = labelled.account(config.labelled, plan.listed, facts["by_source"], rows)
    if config.compression == "none":
        output.write_tfds_metadata(config.output, shards, pipeline.DESCRIPTION)
    manifest = manifest_record(config, shards, facts, seconds)
    manifest.update(not_a_digit=negatives, labelled=accounts)
    if plan.corrections:
        manifest["relabelled"] = plan.corrections.record(validation_start=plan.counts["train"])
    files.delete(facts_path)
    files.delete(temp_dir(config.output), missing_ok=True)
    files.write_json(files.join(config.output, schema.MANIFEST_FILE), manifest)
    return manifest


def check_counts(shards: dict[str, list[dict]], facts: dict, mnist: dict[str, int]) -> None:
    """Records written, labels counted and the plan's counts must agree for every split."""
    for split, count in mnist.items():
        written = sum(s["records"] for s in shards[split])
        counted = sum(facts["labels"].get(split, []))
        by_source = {
            source: splits[split]["records"] - splits[split]["not_a_digit"]
            for source, splits in facts["by_source"].items()
            if split in splits
        }
        expected = count + sum(n for source, n in by_source.items() if source != "mnist")
        if not written == counted == expected or by_source.get("mnist") != count:
            raise RuntimeError(
                f"{split}: wrote {written} records, counted {counted}, expected {expected} "
                f"({count} from MNIST; per source: {by_source})"
            )


MANIFEST_SCHEMA = {
    schema.IMAGE_KEY: {
        "dtype": "float32",
        "shape": list(schema.IMAGE_SHAPE),
        "range": [0.0, 1.0],
        "normalisation": "pixel / 255",
    },
    schema.LABEL_KEY: {"dtype": "int64", "range": [0, schema.NUM_CLASSES - 1]},
    schema.KEY_KEY: {
        "dtype": "bytes",
        "format": "<source split>-<index> (MNIST), <source>-<sha256 prefix> (labelled)",
    },
    schema.SOURCE_KEY: {"dtype": "bytes", "values": "mnist, or a labelled folder's name"},
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
        "by_source": facts["by_source"],
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
    for source, account in manifest.get("labelled", {}).items():
        left_out = ", ".join(f"{n} {why}" for why, n in account["excluded"].items()) or "none"
        lines.append(
            f"  {source}: {account['files']} files -> {account['records']} digits, "
            f"{account['not_a_digit']} not a digit; left out: {left_out} (see {EXCLUDED_FILE})"
        )
    return "\n".join(lines)


def run(config: PreprocessConfig, beam_args: list[str]) -> dict:
    """sources -> refuse a foreign --output -> the Beam pipeline -> manifest, last."""
    started = time.time()
    show_job_logs()
    source_dir = sources.locate(config.source)
    plan = plan_sources(config, source_dir)
    output.claim(config.output)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        build(p, config, plan)
    manifest = finalise(config, plan, time.time() - started)
    print(summary(manifest))
    return manifest
