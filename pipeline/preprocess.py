"""Preprocessing job: raw MNIST IDX files -> sharded, normalised TFRecords with metadata.

Locally (DirectRunner):

    digits preprocess --output out/data [--source DIR] [--validation-size 5000]
    python -m pipeline.preprocess --output out/data     # the same

On Dataflow (needs `pip install -e .[gcp]`; the same code, every Beam option passes through):

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
from pipeline import idx, output, schema, sources
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


def parse_args(argv: list[str] | None) -> tuple[PreprocessConfig, list[str]]:
    parser = argparse.ArgumentParser(
        prog="digits preprocess",
        description="Raw MNIST IDX files -> sharded, normalised TFRecords (Apache Beam). "
        "Unknown flags are Beam pipeline options (--runner, --project, ...).",
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
    known, beam_args = parser.parse_known_args(argv)
    config = PreprocessConfig(**vars(known))
    if config.num_shards < 0:
        raise ValueError(f"--num-shards must be 0 (automatic) or more, got {config.num_shards}")
    return config, beam_args


def plan_sources(config: PreprocessConfig, source_dir: str) -> tuple[list[SplitSource], dict]:
    """Reads the headers (cheap) to fail fast, carve validation out of train and plan shards."""
    specs, counts = [], {}
    for source_split, (images, labels) in idx.MNIST_FILES.items():
        images_path = output.join(source_dir, images.name)
        labels_path = output.join(source_dir, labels.name)
        n_images = idx.peek_count(images_path, idx.IMAGES_MAGIC)
        n_labels = idx.peek_count(labels_path, idx.LABELS_MAGIC)
        if n_images != n_labels:
            raise idx.IdxError(
                f"{images_path} holds {n_images} images but {labels_path} holds {n_labels} "
                "labels; the two files must come from the same dataset split"
            )
        if source_split == "train":
            if not 0 < config.validation_size < n_images:
                raise ValueError(
                    f"--validation-size {config.validation_size} must be between 1 and "
                    f"{n_images - 1} (the training file holds {n_images} images)"
                )
            cut = n_images - config.validation_size
            carve = {"train": (0, cut), "validation": (cut, n_images)}
        else:
            carve = {"test": (0, n_images)}
        plans = []
        for split, (start, stop) in carve.items():
            counts[split] = stop - start
            plans += plan_shards(split, start, stop, config.num_shards)
        expected = (images, labels) if config.verify_digests else None
        specs.append(SplitSource(source_split, images_path, labels_path, expected, tuple(plans)))
    return specs, counts


def plan_shards(split: str, start: int, stop: int, num_shards: int) -> list[ShardPlan]:
    """Contiguous, equal (to one image) shards; by default one per 10,000 records."""
    count = stop - start
    n = num_shards or max(1, math.ceil(count / RECORDS_PER_SHARD))
    if n > count:
        raise ValueError(f"--num-shards {n} is more than the {count} records of the {split} split")
    edges = [start + count * i // n for i in range(n + 1)]
    return [ShardPlan(split, i, n, edges[i], edges[i + 1]) for i in range(n)]


def build(p: beam.Pipeline, config: PreprocessConfig, specs: list[SplitSource]) -> None:
    blocks, digests = p | "Sources" >> beam.Create(specs) | "ReadIdx" >> ReadIdx()
    (
        blocks
        | "Normalise" >> Normalise()
        | "ToExamples" >> ToExamples()
        | "WriteShards" >> WriteShards(config.output, config.compression)
    )
    facts_path = output.join(config.output, output.FACTS_FILE)
    (
        (blocks, digests)
        | "SummariseSplits" >> SummariseSplits()
        | "WriteFacts" >> beam.Map(output.write_json_to, facts_path)
    )


def finalise(config: PreprocessConfig, expected_counts: dict[str, int], seconds: float) -> dict:
    """Checks what the pipeline wrote, then writes TFDS metadata and, last, the manifest."""
    facts_path = output.join(config.output, output.FACTS_FILE)
    facts = output.read_json(facts_path)
    shards = {
        split: [
            output.describe_shard(path, config.compression)
            for path in output.shard_files(config.output, split)
        ]
        for split in schema.SPLITS
    }
    for split, expected in expected_counts.items():
        written = sum(s["records"] for s in shards[split])
        labelled = sum(facts["labels"].get(split, []))
        if not written == labelled == expected:
            raise RuntimeError(
                f"{split}: wrote {written} records, counted {labelled}, expected {expected}"
            )
    if config.compression == "none":
        output.write_tfds_metadata(config.output, shards, pipeline.DESCRIPTION)
    manifest = {
        "dataset": schema.DATASET_NAME,
        "pipeline_version": pipeline.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": asdict(config),
        "compression": config.compression,
        "schema": {
            schema.IMAGE_KEY: {
                "dtype": "float32",
                "shape": list(schema.IMAGE_SHAPE),
                "range": [0.0, 1.0],
                "normalisation": "pixel / 255",
            },
            schema.LABEL_KEY: {"dtype": "int64", "range": [0, schema.NUM_CLASSES - 1]},
            schema.KEY_KEY: {"dtype": "bytes", "format": "<source split>-<index>"},
        },
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
    output.delete(facts_path)
    output.delete(temp_dir(config.output), missing_ok=True)
    output.write_json(output.join(config.output, schema.MANIFEST_FILE), manifest)
    return manifest


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
        message = pipeline.root_cause(error, idx.IdxError)
        print(f"digits preprocess: failed: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run the installed module, not this file as __main__: Beam pickles the classes and
    # functions defined here by module name; workers import the module, never `__main__`.
    from pipeline import preprocess as job

    sys.exit(job.main())
