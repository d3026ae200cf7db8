"""Preprocessing job: raw MNIST IDX files -> sharded, normalised TFRecords with metadata.

Locally (DirectRunner):

    digits preprocess --output out/data [--source DIR] [--validation-size 5000]
    python -m pipeline.preprocess --output out/data     # the same

On Dataflow (the same code; every Beam option passes through; README, "On Dataflow"):

    digits preprocess --source gs://BUCKET/mnist --output gs://BUCKET/digits/data \\
        --runner DataflowRunner --project PROJECT --region REGION \\
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py

Output: `mnist-{train,validation,test}.tfrecord-SSSSS-of-NNNNN`, TFDS metadata
(`tfds.builder_from_directory(OUTPUT)` loads it) and `manifest.json`, written last.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

import pipeline
from common import files, options, schema
from common.progress import ProgressLog
from common.startup import show_job_logs
from pipeline import idx, output, sources
from pipeline.transforms import (
    COMPRESSIONS,
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


def parse_args(argv: list[str] | None) -> tuple[PreprocessConfig, list[str]]:
    """The job's options (a checked PreprocessConfig) and the rest, which must be Beam's."""
    known, beam_args = options.parse_job_and_beam(_parser(), argv)
    given = vars(known)
    given.pop("verbose")  # read by common.startup, not part of the dataset's config
    config = PreprocessConfig(**given)
    if config.num_shards < 0:
        raise ValueError(f"--num-shards must be 0 (automatic) or more, got {config.num_shards}")
    return config, beam_args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digits preprocess",
        description="Raw MNIST IDX files -> sharded, normalised TFRecords (Apache Beam). "
        "Beam pipeline options (--runner, --project, ...) are taken too; anything else "
        "stops the job.",
    )
    parser.add_argument("--output", required=True, help="dataset folder, local or gs://")
    parser.add_argument(
        "--source",
        help="folder with the four MNIST .gz files (local or gs://); default: $MNIST_DIR, "
        "then the cache, then a download",
    )
    parser.add_argument(
        "--validation-size",
        type=int,
        default=5_000,
        help="last N training images form the validation split (default 5000)",
    )
    parser.add_argument(
        "--num-shards",
        type=int,
        default=0,
        help="shards per split; 0 (default): one per 10,000 records",
    )
    parser.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default="none",
        help="GZIP-compress the shards (TFDS cannot load compressed shards)",
    )
    parser.add_argument(
        "--no-digest-check",
        dest="verify_digests",
        action="store_false",
        help="for other IDX datasets of MNIST's shape (Fashion-MNIST, KMNIST, "
        "your own): header checks still apply, MNIST's digests do not",
    )
    _add_run_options(parser)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """What the job shows while it runs."""
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's and Beam's start-up logs"
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=30.0,
        help="seconds between progress lines (images read, rate, time left)",
    )


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


def run(argv: list[str] | None = None) -> dict:
    started = time.time()
    config, beam_args = parse_args(argv)
    show_job_logs()
    source_dir = sources.locate(config.source)
    specs, counts = plan_sources(config, source_dir)
    output.claim(config.output)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        build(p, config, specs)
    manifest = finalise(config, counts, time.time() - started)
    print(summary(manifest))
    return manifest


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().setLevel(logging.WARNING)
    try:
        run(argv)
    except (ValueError, FileNotFoundError) as error:
        print(f"digits preprocess: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a failure inside the pipeline: show our message, not Beam's
        if problem := files.storage_problem(error):
            print(f"digits preprocess: error: {problem}", file=sys.stderr)
            return 2
        message = pipeline.root_cause(error, idx.IdxError)
        print(f"digits preprocess: failed: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run the installed module, not this file as __main__: Beam pickles what it runs by
    # module name, and workers import the module, never `__main__`.
    from pipeline import preprocess as job

    sys.exit(job.main())
