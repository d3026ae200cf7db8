"""One night of scoring: the stage `digits score` runs (jobs/score.py holds its options).

    exit_status = scoring.night.run(ScoreConfig(model=..., inputs=(...), output=...), beam_args)

    (driver) list the inputs once: fingerprint, batch lists of image paths
    work items >> SpreadInputs >> ReadInputs >> Predict >> FormatPredictions >> WritePredictions
    FormatPredictions >> WriteReview (the same lines, for inputs whose status is review or
        not_a_digit)
    (every stage's rejects) >> WriteErrors
    (scored batches and rejects) >> Summarise, ReportProgress (a log line every 30 s)

The stages are in scoring/transforms.py, the listing in scoring/inputs.py, the partition
and its lock in scoring/partition.py, the drift check in monitoring/; this module wires
them, writes the summary and publishes the partition. Its exit statuses are
common.errors': 3 too many failed inputs, 4 the drift alarm, both after writing
everything.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from common import errors, files, schema
from common.startup import show_job_logs
from model import images
from monitoring import nights
from scoring import partition
from scoring.inputs import InputList, list_inputs
from scoring.transforms import (
    CONFIDENCE_BINS,
    CSV_HEADER,
    FormatPredictions,
    Predict,
    ReadInputs,
    ReportProgress,
    Summarise,
)

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
    drift_alarm: str = "on"
    drift_reference: str | None = None
    drift_nights: int = 7
    drift_min_inputs: int = 500
    progress_interval: float = 30.0
    verbose: bool = False


def predictor_factory(model: str):
    """What each worker calls once to load the model (see transforms.Predict)."""
    from model.serving import Predictor

    return functools.partial(Predictor, model)


def build(
    p,
    config: ScoreConfig,
    model_id: str,
    inputs: InputList,
    staging: str,
    make_predictor=None,
    run_id: str = "",
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
    lines = predicted.scored | "FormatPredictions" >> FormatPredictions(
        model_id, config.format, run_id=run_id
    )
    suffix = "." + config.format
    write_text(lines.predictions, files.join(staging, "predictions"), suffix, config.format)
    write_text(lines.review, files.join(staging, "review"), suffix, config.format, "WriteReview")
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


def run(config: ScoreConfig, beam_args: list[str]) -> int:
    """checks -> the night's lock -> list inputs once -> skip if already scored -> pipeline
    -> summary -> publish; returns the exit status."""
    from model.serving import check_blessing, identifier, load_screen, model_folder

    show_job_logs()
    for folder in (config.output, model_folder(config.model)):  # one line, never minutes
        files.check_reachable(folder)
    target = partition.partition_dir(config.output, config.date)
    # Refused here (exit 2), before any work: a folder holding someone else's files, or a
    # model unblessed, changed since, or uncalibrated.
    partition.claim(config.output, target, bool(config.date))
    blessing = check_blessing(config.model, config.allow_unblessed)
    model_id = identifier(blessing["model_sha256"])
    screen = load_screen(config.model, model_id)
    run_id = new_run_id(config.date)
    with partition.night_lock(config.output, target, run_id):  # NightBusy: exit 75
        return score_night(config, beam_args, blessing, model_id, screen, run_id, target)


def score_night(config, beam_args, blessing, model_id, screen, run_id, target) -> int:
    """Holding the night's lock: list inputs -> skip if already scored -> score -> publish."""
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
        facts = {
            "listing_seconds": round(listing_seconds, 2),
            "blessing": blessing,
            "lineage": lineage(config, model_id, blessing, screen, run_id),
        }
        return score(config, beam_args, model_id, inputs, staging, target, facts)
    finally:
        files.delete_tree(staging + INPUT_LISTS)
        files.delete_tree(staging)  # left only by a no-op or a failure: publish moved it
        partition.remove_empty_staging(staging)


def score(config, beam_args, model_id, inputs, staging, target, facts: dict) -> int:
    """Runs the pipeline into `staging`, then writes the summary and publishes `target`."""
    started = time.time()
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        build(p, config, model_id, inputs, staging, run_id=facts["lineage"]["run_id"])
    summary = summarise_run(config, model_id, staging, started, time.time())
    summary.update(facts)
    checked = check_drift(config, summary)
    files.write_json(files.join(staging, schema.DRIFT_FILE), checked)
    summary["drift_alarm"] = {"alarm": checked["alarm"], "breaches": checked["breaches"],
                              "exit_status": config.drift_alarm == "on"}  # fmt: skip
    exit_code = 0
    if checked["alarm"] and config.drift_alarm == "on":
        exit_code = errors.DRIFT
    if summary["error_rate"] > config.max_error_rate:
        exit_code = errors.TOO_MANY_ERRORS
    files.write_json(files.join(staging, schema.SUMMARY_FILE), summary)
    success = {"fingerprint": inputs.fingerprint, "model": model_id, "inputs": summary["inputs"]}
    partition.publish(staging, target, {**success, "exit_code": exit_code}, bool(config.date))
    report(summary, target, config)
    return exit_code


def check_drift(config: ScoreConfig, summary: dict) -> dict:
    """drift.json: tonight's histograms against the reference and the trailing nights."""
    reference = nights.load_reference(config.model, config.drift_reference)
    trailing = nights.trailing_nights(config.output, config.date, config.drift_nights)
    return nights.check(summary["drift"], reference, trailing, config.drift_min_inputs)


def new_run_id(date: str | None) -> str:
    """Unique per run: the date scored, when it started (UTC), and a random suffix."""
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{date or 'undated'}-{started}-{uuid.uuid4().hex[:8]}"


def lineage(config: ScoreConfig, model_id: str, blessing: dict, screen, run_id: str) -> dict:
    """What this night's predictions came from: the run, the model and its training data,
    the code and the libraries, the calibration."""
    import tensorflow as tf

    from model.serving import ModelRefused, training_metrics

    try:
        metrics = training_metrics(config.model)
    except ModelRefused:  # a bare .keras file has no training record
        metrics = {}
    return {
        "run_id": run_id,
        "model_id": model_id,
        "model_sha256": blessing["model_sha256"],
        "trained_on": metrics.get("data"),
        "dataset_manifest_sha256": metrics.get("dataset_manifest_sha256"),
        "package_version": _package_version(),
        "git_commit": _git_commit(),
        "tensorflow": tf.__version__,
        "apache_beam": beam.__version__,
        "temperature": screen.temperature,
        "threshold": screen.threshold,
        "ranking": screen.ranking,
    }


def _package_version() -> str | None:
    try:
        return importlib.metadata.version("digits")
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The checkout's commit, or DIGITS_GIT_COMMIT (set it in images built from a commit)."""
    if os.environ.get("DIGITS_GIT_COMMIT"):
        return os.environ["DIGITS_GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


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
        "drift": stats.get("drift", {}),
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
    waiting = summary["statuses"].get("review", 0) + summary["statuses"].get("not_a_digit", 0)
    # Always said, so a nightly log (Airflow's task log, cron's mail) shows the queue.
    opens = f": digits review --scores {target} --labels LABELS" if waiting else ""
    print(f"{waiting} inputs wait for review{opens}")
    if summary["error_rate"] > config.max_error_rate:
        print(
            f"digits score: {summary['error_rate']:.1%} of inputs failed, over --max-error-rate "
            f"{config.max_error_rate:.1%}; see {target}/errors-*.jsonl",
            file=sys.stderr,
        )
    if summary["drift_alarm"]["alarm"]:
        print(
            f"digits score: drift alarm: {', '.join(summary['drift_alarm']['breaches'])}; see "
            f"{target}/drift.json"
            + ("" if config.drift_alarm == "on" else " (--drift-alarm off: exit status 0)"),
            file=sys.stderr,
        )
