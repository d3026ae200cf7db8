"""Batch-scoring job: predictions for large sets of digit images, safe to run every night.

    digits score --model out/model --input 'images/*.png' --output out/scores --date 2026-11-25
    python -m jobs.score --model gs://BUCKET/model --input 'gs://BUCKET/in/*' \\
        --output gs://BUCKET/scores \\
        --date 2026-11-25 --runner DataflowRunner --project P --region R \\
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py

Inputs (--input, repeatable, local or gs:// globs): PNG and JPEG files of any size and
colour, and TFRecord shards in the project's schema (names containing `.tfrecord`).

    (driver) list the inputs once: fingerprint, batch lists of image paths
    work items >> SpreadInputs >> ReadInputs >> Predict >> FormatPredictions >> WritePredictions
    Predict >> FormatReview >> WriteReview (inputs whose status is review or not_a_digit)
    (every stage's rejects) >> WriteErrors
    (scored batches and rejects) >> Summarise, ReportProgress (a log line every 30 s)

The stages are in jobs/scoring/transforms.py, the listing in jobs/scoring/inputs.py; this
module holds the options, the wiring, and publishing the partition.

Every prediction carries the calibrated confidence and a status (accepted, review,
not_a_digit) with reasons (model/screening.py), from the model folder's calibration.json,
which `digits evaluate` writes: a model without one (or with one fitted on another model
file) is refused.

Output, in OUT_DIR or OUT_DIR/dt=DATE: predictions-SSSSS-of-NNNNN.jsonl (or .csv),
review-SSSSS-of-NNNNN.jsonl (or .csv: what a person should look at),
errors-SSSSS-of-NNNNN.jsonl, summary.json and, last, _SUCCESS. Every input is either in
the predictions or in the errors. If more than --max-error-rate of the inputs fail, the
job still writes everything, then exits with status 3.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from common import files, schema
from common.startup import show_job_logs
from jobs.scoring import images, partition
from jobs.scoring.inputs import InputList, list_inputs
from jobs.scoring.transforms import (
    CONFIDENCE_BINS,
    CSV_HEADER,
    FormatPredictions,
    Predict,
    ReadInputs,
    ReportProgress,
    Summarise,
)

EXIT_TOO_MANY_ERRORS = 3
STATS_FILE = "_stats.json"
INPUT_LISTS = ".inputs"  # beside the staging folder: the driver's batch lists
log = logging.getLogger("digits.score")


@dataclass(frozen=True)
class ScoreConfig:
    model: str
    inputs: tuple[str, ...]
    output: str
    date: str | None = None
    format: str = "jsonl"
    batch_size: int = 256
    max_error_rate: float = 0.05
    max_pixels: int = images.DEFAULT_MAX_PIXELS
    force: bool = False
    allow_unblessed: bool = False
    progress_interval: float = 30.0
    verbose: bool = False


def parse_args(argv) -> tuple[ScoreConfig, list[str]]:
    """The job's options (a checked ScoreConfig) and the rest, which are Beam's."""
    args, beam_args = _parser().parse_known_args(argv)
    args.date = resolve_date(args.date)
    if not 0 <= args.max_error_rate <= 1:
        raise ValueError(f"--max-error-rate {args.max_error_rate}: must be between 0 and 1")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    args.inputs = tuple(args.inputs)
    return ScoreConfig(**vars(args)), beam_args


def resolve_date(date: str | None) -> str | None:
    """YYYY-MM-DD, checked; `today` / `yesterday` (UTC) for schedulers that cannot template."""
    if date in ("today", "yesterday"):
        day = time.time() - (86_400 if date == "yesterday" else 0)
        date = time.strftime("%Y-%m-%d", time.gmtime(day))
    if date:
        try:
            time.strptime(date, "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"--date {date!r}: expected YYYY-MM-DD") from None
    return date


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digits score",
        description="Scores PNG/JPEG images and TFRecord shards with an exported model "
        "(Apache Beam). Unknown flags are Beam pipeline options (--runner, ...).",
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
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--force", action="store_true", help="rescore a date already scored")
    parser.add_argument(
        "--allow-unblessed",
        action="store_true",
        help="score with a model the gate did not bless (the summary records it)",
    )
    _add_limits(parser)
    return parser


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """Batching, failure and size limits, and what the job shows while it runs."""
    parser.add_argument(
        "--batch-size", "--batch_size", type=int, default=256, help="images per model call"
    )
    parser.add_argument(
        "--max-error-rate",
        "--max_error_rate",
        type=float,
        default=0.05,
        help="fail (exit 3, after writing everything) above this share of failed inputs",
    )
    parser.add_argument(
        "--max-pixels",
        "--max_pixels",
        type=int,
        default=images.DEFAULT_MAX_PIXELS,
        help="refuse images with more pixels (decompression bombs)",
    )
    parser.add_argument(
        "--progress-interval",
        "--progress_interval",
        type=float,
        default=30.0,
        help="seconds between progress lines (inputs done, rate, errors, time left)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's and Beam's start-up logs"
    )


def predictor_factory(model: str):
    """What each worker calls once to load the model (see transforms.Predict)."""
    from model.serving import Predictor

    return functools.partial(Predictor, model)


def build(
    p, config: ScoreConfig, model_id: str, inputs: InputList, staging: str, make_predictor=None
) -> None:
    """Wires the stages; `make_predictor` defaults to loading `config.model`."""
    work = [("images", path) for path in inputs.batch_lists]
    work += [("records", path) for path in inputs.records]
    read = (
        p
        | "Inputs" >> beam.Create(work)
        | "SpreadInputs" >> beam.Reshuffle()  # the one shuffle: work items, not images
        | "ReadInputs" >> ReadInputs(config.batch_size, config.max_pixels)
    )
    predicted = read.batches | "Predict" >> Predict(
        make_predictor or predictor_factory(config.model)
    )
    lines = predicted.scored | "FormatPredictions" >> FormatPredictions(model_id, config.format)
    write_text(lines, files.join(staging, "predictions"), "." + config.format, config.format)
    review = predicted.scored | "FormatReview" >> FormatPredictions(
        model_id, config.format, only=("review", "not_a_digit")
    )
    write_text(
        review, files.join(staging, "review"), "." + config.format, config.format, "WriteReview"
    )
    errors = (read.errors, predicted.errors) | "AllErrors" >> beam.Flatten()
    as_json = errors | "ErrorsToJson" >> beam.Map(json.dumps, ensure_ascii=False)
    write_text(as_json, files.join(staging, "errors"), ".jsonl", "jsonl", label="WriteErrors")
    (
        (predicted.scored, errors)
        | "Summarise" >> Summarise()
        | "WriteStats" >> beam.Map(files.write_json_to, files.join(staging, STATS_FILE))
    )
    expected = 0 if inputs.records else inputs.images  # records per shard are not known
    (predicted.scored, errors) | "ReportProgress" >> ReportProgress(
        expected, config.progress_interval
    )


def write_text(lines, prefix: str, suffix: str, output_format: str, label="WritePredictions"):
    return lines | label >> beam.io.WriteToText(
        prefix,
        file_name_suffix=suffix,
        shard_name_template="-SSSSS-of-NNNNN",
        header=CSV_HEADER if output_format == "csv" else None,
    )


def run(argv: list[str] | None = None) -> int:
    """options -> list inputs once -> skip if already scored -> pipeline -> summary -> publish."""
    config, beam_args = parse_args(argv)
    from model.serving import check_blessing, keras_path, load_screen
    from model.serving import model_id as compute_model_id

    show_job_logs()
    files.check_reachable(config.output)
    model_id = compute_model_id(keras_path(config.model))
    blessing = check_blessing(config.model, config.allow_unblessed)  # refused: exit 2
    load_screen(config.model, model_id)  # refused here, before any work, if missing or stale
    target = partition.partition_dir(config.output, config.date)
    staging = partition.new_staging(config.output, target)
    try:
        started = time.time()
        inputs = list_inputs(config.inputs, model_id, staging + INPUT_LISTS, config.batch_size)
        listing_seconds = time.time() - started
        done = partition.read_success(target)
        if done is not None and done.get("fingerprint") == inputs.fingerprint and not config.force:
            print(
                f"{target} is already scored for these {inputs.files} inputs with model "
                f"{model_id}; nothing to do (--force rescores)"
            )
            return done.get("exit_code", 0)
        facts = {"listing_seconds": round(listing_seconds, 2), "blessing": blessing}
        return score(config, beam_args, model_id, inputs, staging, target, facts)
    finally:
        files.delete_tree(staging + INPUT_LISTS)
        files.delete_tree(staging)  # left only by a no-op or a failure: publish moved it
        partition.remove_empty_staging(staging)


def score(config, beam_args, model_id, inputs, staging, target, facts: dict) -> int:
    """Runs the pipeline into `staging`, then writes the summary and publishes `target`."""
    started = time.time()
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        build(p, config, model_id, inputs, staging)
    summary = summarise_run(config, model_id, staging, started, time.time())
    summary.update(facts)
    exit_code = EXIT_TOO_MANY_ERRORS if summary["error_rate"] > config.max_error_rate else 0
    files.write_json(files.join(staging, schema.SUMMARY_FILE), summary)
    success = {"fingerprint": inputs.fingerprint, "model": model_id, "inputs": summary["inputs"]}
    partition.publish(staging, target, {**success, "exit_code": exit_code}, bool(config.date))
    report(summary, target, config)
    return exit_code


def summarise_run(
    config: ScoreConfig, model_id: str, staging: str, started: float, finished: float
) -> dict:
    """summary.json from the pipeline's counts (its `_stats.json`, removed here) and times."""
    stats_path = files.join(staging, STATS_FILE)
    stats = files.read_json(stats_path)
    files.delete(stats_path)
    failed = sum(stats["failed"].values())
    total = stats["scored"] + failed
    seconds = finished - started
    return {
        "inputs": total,
        "scored": stats["scored"],
        "failed": failed,
        "failed_by_stage": stats["failed"],
        "error_rate": round(failed / total if total else 0.0, 6),
        "max_error_rate": config.max_error_rate,
        "model": model_id,
        "started": files.utc_timestamp(started),
        "finished": files.utc_timestamp(finished),
        "seconds": round(seconds, 2),
        "inputs_per_second": round(total / max(seconds, 1e-9), 1),
        "statuses": stats["statuses"],
        "coverage": round(stats["statuses"]["accepted"] / max(stats["scored"], 1), 6),
        "reasons": stats["reasons"],
        "predicted_digits": dict(enumerate(stats["digits"])),
        "confidence_histogram": _bins(stats["confidence"]),
        "calibrated_confidence_histogram": _bins(stats["calibrated_confidence"]),
        "config": asdict(config),
    }


def _bins(counts: list[int]) -> dict:
    return {
        f"{i / CONFIDENCE_BINS:.1f}-{(i + 1) / CONFIDENCE_BINS:.1f}": n
        for i, n in enumerate(counts)
    }


def report(summary: dict, target: str, config: ScoreConfig) -> None:
    print(
        f"Scored {summary['scored']} of {summary['inputs']} inputs ({summary['failed']} failed: "
        f"{json.dumps(summary['failed_by_stage'])}) in {summary['seconds']:.1f} s, "
        f"{summary['inputs_per_second']:.0f}/s -> {target}\n"
        f"Statuses: {json.dumps(summary['statuses'])} (coverage {summary['coverage']:.1%}); "
        f"what to look at: {target}/review-*.{config.format}"
    )
    if summary["error_rate"] > config.max_error_rate:
        print(
            f"digits score: {summary['error_rate']:.1%} of inputs failed, over --max-error-rate "
            f"{config.max_error_rate:.1%}; see {target}/errors-*.jsonl",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    from model.serving import ModelRefused

    try:
        return run(argv)
    except (ValueError, ModelRefused) as error:
        print(f"digits score: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a bucket that is missing or closed to us: say so, no trace
        if (problem := files.storage_problem(error)) is None:
            raise
        print(f"digits score: error: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run the installed module, not this file as __main__: Beam pickles what it runs by
    # module name, and workers import the module, never `__main__`.
    from jobs import score as job

    sys.exit(job.main())
