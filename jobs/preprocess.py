"""Preprocessing job: raw MNIST IDX files -> sharded, normalised TFRecords with metadata.

Locally (DirectRunner):

    digits preprocess --output out/data [--source DIR] [--validation-size 16000]
        [--labelled LABELS ...]       # image folders: LABELS/0/ ... LABELS/9/, not_a_digit/
        [--relabel corrections.csv]   # labels a person corrected: key,label,note
    python -m jobs.preprocess --output out/data     # the same

On Dataflow (the same code; every Beam option passes through; README, "On Dataflow"):

    digits preprocess --source gs://BUCKET/mnist --output gs://BUCKET/digits/data \\
        --runner DataflowRunner --project PROJECT --region REGION \\
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py

The pipeline is pipeline/preprocess.py; this module holds the options.

Output: `mnist-{train,validation,test}.tfrecord-SSSSS-of-NNNNN`, TFDS metadata
(`tfds.builder_from_directory(OUTPUT)` loads it) and `manifest.json`, written last.
"""

from __future__ import annotations

import argparse
import logging
import sys

from jobs import options
from jobs.exits import run_job
from pipeline import idx, root_cause
from pipeline.preprocess import PreprocessConfig
from pipeline.preprocess import run as preprocess
from pipeline.transforms import COMPRESSIONS


def parse_args(argv: list[str] | None) -> tuple[PreprocessConfig, list[str]]:
    """The job's options (a checked PreprocessConfig) and the rest, which must be Beam's."""
    known, beam_args = options.parse_job_and_beam(_parser(), argv)
    given = vars(known)
    given.pop("verbose")  # read by common.startup, not part of the dataset's config
    given["labelled"] = tuple(given["labelled"] or ())
    config = PreprocessConfig(**given)
    if config.num_shards < 0:
        raise ValueError(f"--num-shards must be 0 (automatic) or more, got {config.num_shards}")
    return config, beam_args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
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
        default=PreprocessConfig.validation_size,
        help="last N training images form the validation split (default 16000)",
    )
    parser.add_argument(
        "--num-shards",
        type=int,
        default=PreprocessConfig.num_shards,
        help="shards per split; 0 (default): one per 10,000 records",
    )
    parser.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=PreprocessConfig.compression,
        help="GZIP-compress the shards (TFDS cannot load compressed shards)",
    )
    parser.add_argument(
        "--no-digest-check",
        dest="verify_digests",
        action="store_false",
        help="for other IDX datasets of MNIST's shape (Fashion-MNIST, KMNIST, "
        "your own): header checks still apply, MNIST's digests do not",
    )
    _add_labelled_options(parser)
    _add_run_options(parser)
    return parser


def _add_labelled_options(parser: argparse.ArgumentParser) -> None:
    """A team's own labelled images, as the review page writes them, and corrections of
    MNIST's own labels."""
    parser.add_argument(
        "--relabel",
        metavar="CSV",
        help="label corrections a person made (key,label,note: train-NNNNN,7,looks like a "
        "7); local or gs://; test digits are never relabelled",
    )
    parser.add_argument(
        "--labelled",
        action="append",
        metavar="DIR",
        help="an image folder (local or gs://) with 0/ ... 9/ and not_a_digit/ inside, as "
        "`digits review` writes it; its name becomes the records' source; repeatable",
    )
    parser.add_argument(
        "--labelled-split",
        type=_percentages,
        default=PreprocessConfig.labelled_split,
        metavar="TRAIN/VAL/TEST",
        help="percent of each labelled folder's images in train, validation and test, chosen "
        "by each image's digest (default 80/10/10)",
    )


def _percentages(text: str) -> tuple[int, int, int]:
    parts = text.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or sum(map(int, parts)) != 100:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give three whole percentages that add up to 100, such as 80/10/10"
        )
    return tuple(int(p) for p in parts)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """What the job shows while it runs."""
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's and Beam's start-up logs"
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=PreprocessConfig.progress_interval,
        help="seconds between progress lines (images read, rate, time left)",
    )


def run(argv: list[str] | None = None) -> dict:
    return preprocess(*parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    logging.getLogger().setLevel(logging.WARNING)
    # A failure inside the pipeline: our message (an IDX file's fault, named), not Beam's.
    return run_job("digits preprocess", run, argv, lambda error: root_cause(error, idx.IdxError))


if __name__ == "__main__":
    # Run the installed module, not this file as __main__: Beam pickles what it runs by
    # module name, and workers import the module, never `__main__`.
    from jobs import preprocess as job

    sys.exit(job.main())
