"""Batch-scoring job: predictions for large sets of digit images, safe to run every night.

    digits score --model out/model --input 'images/*.png' --output out/scores --date 2026-11-25
    python -m jobs.score --model gs://BUCKET/model --input 'gs://BUCKET/in/*' \\
        --output gs://BUCKET/scores \\
        --date 2026-11-25 --runner DataflowRunner --project P --region R \\
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py

Inputs (--input, repeatable, local or gs:// globs): PNG and JPEG files of any size and
colour, and TFRecord shards in the project's schema (names containing `.tfrecord`).

The pipeline is scoring/night.py (the stages in scoring/transforms.py, the listing in
scoring/inputs.py); this module holds the options.

Every prediction carries the calibrated confidence and a status (accepted, review,
not_a_digit) with reasons (model/screening.py), from the model folder's calibration.json,
which `digits train` writes: a model without one (or with one fitted on another model
file) is refused.

Output, in OUT_DIR or OUT_DIR/dt=DATE: predictions-SSSSS-of-NNNNN.jsonl (or .csv),
review-SSSSS-of-NNNNN.jsonl (or .csv: what a person should look at),
errors-SSSSS-of-NNNNN.jsonl, summary.json, drift.json and, last, _SUCCESS. Every input
is either in the predictions or in the errors. Every prediction carries the model, the
run id and the input's SHA-256; summary.json carries the lineage (model digest, training
data manifest, blessing, code and library versions, calibration).

The model must be blessed by `digits evaluate` for its current file (evaluation/gate.py;
--allow-unblessed overrides, recorded in the summary). drift.json compares tonight's
input and output statistics with the model's reference and the trailing nights
(monitoring/nights.py). Exit status: 2 refused (an option it does not know, an
--output holding files it did not write, an unblessed or uncalibrated model, a storage
problem), 3 more than --max-error-rate of the inputs failed, 4 the drift alarm (unless
--drift-alarm off), 75 another run is scoring the same partition; 3 and 4 only after
everything is written. It only ever replaces its own outputs (scoring/partition.py).
"""

from __future__ import annotations

import argparse
import sys
import time

from jobs import options
from jobs.exits import run_job
from scoring import night
from scoring.night import ScoreConfig


def parse_args(argv) -> tuple[ScoreConfig, list[str]]:
    """The job's options (a checked ScoreConfig) and the rest, which must be Beam's."""
    args, beam_args = options.parse_job_and_beam(_parser(), argv)
    args.date = parse_date(args.date)
    if not 0 <= args.max_error_rate <= 1:
        raise ValueError(f"--max-error-rate {args.max_error_rate}: must be between 0 and 1")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    args.inputs = tuple(args.inputs)
    return ScoreConfig(**vars(args)), beam_args


def parse_date(date: str | None) -> str | None:
    """YYYY-MM-DD exactly (a partition's name sorts as its date); `today` / `yesterday`
    (UTC) for schedulers that cannot template."""
    if date in ("today", "yesterday"):
        day = time.time() - (86_400 if date == "yesterday" else 0)
        return time.strftime("%Y-%m-%d", time.gmtime(day))
    if date is None:
        return None
    try:
        parsed = time.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise ValueError(
            f"--date {date!r}: expected a date as YYYY-MM-DD (or today / yesterday)"
        ) from None
    written = time.strftime("%Y-%m-%d", parsed)
    if written != date:
        raise ValueError(f"--date {date!r}: write it as YYYY-MM-DD: --date {written}")
    return date


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="digits score",
        description="Scores PNG/JPEG images and TFRecord shards with an exported model "
        "(Apache Beam). Beam pipeline options (--runner, ...) are taken too; anything "
        "else stops the job.",
    )
    parser.add_argument(
        "--model", required=True, help="model folder from digits train, or a .keras file"
    )
    parser.add_argument(
        "--input",
        action="append",
        required=True,
        dest="inputs",
        help="file glob, local or gs://; repeat for several",
    )
    parser.add_argument("--output", required=True, help="output folder, local or gs://")
    parser.add_argument(
        "--date", help="YYYY-MM-DD (or today / yesterday, UTC): write to OUTPUT/dt=DATE"
    )
    parser.add_argument("--format", choices=("jsonl", "csv"), default=ScoreConfig.format)
    parser.add_argument("--force", action="store_true", help="rescore a date already scored")
    parser.add_argument(
        "--allow-unblessed",
        action="store_true",
        help="score with a model the gate did not bless (the summary records it)",
    )
    _add_limits(parser)
    _add_drift(parser)
    return parser


def _add_drift(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--drift-alarm",
        choices=("on", "off"),
        default=ScoreConfig.drift_alarm,
        help="on: exit 4 (after writing everything) when drift.json raises the alarm",
    )
    parser.add_argument(
        "--drift-reference",
        help="reference.json or a good night's summary.json (default: the model's reference)",
    )
    parser.add_argument(
        "--drift-nights",
        type=int,
        default=ScoreConfig.drift_nights,
        help="trailing nights to compare with",
    )
    parser.add_argument(
        "--drift-min-inputs",
        type=int,
        default=ScoreConfig.drift_min_inputs,
        help="judge no comparison with fewer inputs on either side (too noisy)",
    )


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """Batching, failure and size limits, and what the job shows while it runs."""
    parser.add_argument(
        "--batch-size",
        "--batch_size",
        type=int,
        default=ScoreConfig.batch_size,
        help="images per model call",
    )
    parser.add_argument(
        "--max-error-rate",
        "--max_error_rate",
        type=float,
        default=ScoreConfig.max_error_rate,
        help="fail (exit 3, after writing everything) above this share of failed inputs",
    )
    parser.add_argument(
        "--max-pixels",
        "--max_pixels",
        type=int,
        default=ScoreConfig.max_pixels,
        help="refuse images with more pixels (decompression bombs)",
    )
    parser.add_argument(
        "--progress-interval",
        "--progress_interval",
        type=float,
        default=ScoreConfig.progress_interval,
        help="seconds between progress lines (inputs done, rate, errors, time left)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's and Beam's start-up logs"
    )


def run(argv: list[str] | None = None) -> int:
    return night.run(*parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    return run_job("digits score", run, argv)


if __name__ == "__main__":
    # Run the installed module, not this file as __main__: Beam pickles what it runs by
    # module name, and workers import the module, never `__main__`.
    from jobs import score as job

    sys.exit(job.main())
