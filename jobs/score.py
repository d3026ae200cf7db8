"""Batch-scoring job: predictions for large sets of digit images, safe to run every night.

    digits score --model out/model --input 'images/*.png' --output out/scores --date 2026-11-25
    python -m jobs.score --model gs://BUCKET/model --input 'gs://BUCKET/in/*' \\
        --output gs://BUCKET/scores \\
        --date 2026-11-25 --runner DataflowRunner --project P --region R \\
        --temp_location gs://BUCKET/tmp --setup_file ./setup.py

Inputs (--input, repeatable, local or gs:// globs): PNG and JPEG files of any size and
colour, and TFRecord shards in the project's schema (names containing `.tfrecord`).

    MatchInputs >> BatchPaths >> DecodeImages ─┐
    MatchInputs >> ReadRecords ────────────────┴> Predict >> WritePredictions
    (every stage's rejects)                          >> WriteErrors
    (batch statistics)                               >> Summarise

Output, in OUT_DIR or OUT_DIR/dt=DATE: predictions-SSSSS-of-NNNNN.jsonl (or .csv),
errors-SSSSS-of-NNNNN.jsonl, summary.json and, last, _SUCCESS. Every input is either in
the predictions or in the errors. If more than --max-error-rate of the inputs fail, the
job still writes everything, then exits with status 3.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils import shared

from jobs import images, partition
from pipeline import schema

EXIT_TOO_MANY_ERRORS = 3
CONFIDENCE_BINS = 10
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


def parse_args(argv) -> tuple[ScoreConfig, list[str]]:
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
    parser.add_argument("--force", action="store_true", help="rescore a date already scored")
    args, beam_args = parser.parse_known_args(argv)
    if args.date in ("today", "yesterday"):  # for schedulers that cannot template a date
        day = time.time() - (86_400 if args.date == "yesterday" else 0)
        args.date = time.strftime("%Y-%m-%d", time.gmtime(day))
    if args.date:
        try:
            time.strptime(args.date, "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"--date {args.date!r}: expected YYYY-MM-DD") from None
    if not 0 <= args.max_error_rate <= 1:
        raise ValueError(f"--max-error-rate {args.max_error_rate}: must be between 0 and 1")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: must be at least 1")
    args.inputs = tuple(args.inputs)
    return ScoreConfig(**vars(args)), beam_args


def is_tfrecord(path: str) -> bool:
    return ".tfrecord" in path.rsplit("/", 1)[-1]


def match_pattern(pattern: str) -> list[tuple[str, int]]:
    """(path, size) of each file a glob matches; size -1 for one that cannot be read.

    Local globs go through Python's glob (`**` recurses) rather than Beam's, which quietly
    skips files it cannot stat (a broken link): those must reach the errors output.
    """
    if "://" in pattern:
        return [(m.path, m.size_in_bytes) for m in FileSystems.match([pattern])[0].metadata_list]
    matched = []
    for path in glob.glob(os.path.expanduser(pattern), recursive=True):
        if not os.path.isdir(path):
            matched.append(
                (os.path.abspath(path), os.path.getsize(path) if os.path.exists(path) else -1)
            )
    return matched


def match_inputs(patterns) -> list[tuple[str, int]]:
    """(path, size) of every file the patterns match; a pattern matching nothing is an error."""
    found = {}
    for pattern in patterns:
        matched = match_pattern(pattern)
        if not matched:
            raise ValueError(f"--input {pattern!r} matches no files")
        found.update(matched)
    return sorted(found.items())


def error_record(key: str, stage: str, error: str) -> dict:
    return {"key": key, "stage": stage, "error": error}


# --- Stages. ----------------------------------------------------------------------------


@dataclass
class PixelBatch:
    keys: list[str]
    pixels: np.ndarray  # uint8 [n, 28, 28]


class _MatchFn(beam.DoFn):
    def process(self, pattern):
        for path, _ in match_pattern(pattern):
            yield path


class MatchInputs(beam.PTransform):
    """Patterns -> image paths (main) and TFRecord paths (`tfrecords`)."""

    def expand(self, patterns):
        paths = (
            patterns
            | "Match" >> beam.ParDo(_MatchFn())
            | "Distinct" >> beam.Distinct()  # a file matched by two patterns is one input
        )
        return paths | "ByKind" >> beam.Partition(lambda path, _: int(is_tfrecord(path)), 2)


class _DecodeFn(beam.DoFn):
    ERRORS = "errors"

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self.decoded = Metrics.counter("DecodeImages", "decoded")
        self.rejected = Metrics.counter("DecodeImages", "rejected")

    def process(self, paths):
        keys, pixels = [], []
        for path in paths:
            try:
                try:
                    with FileSystems.open(
                        path, compression_type=CompressionTypes.UNCOMPRESSED
                    ) as f:
                        data = f.read()
                except OSError as error:
                    raise images.Rejected("read", f"cannot read the file ({error})") from None
                array = images.decode(data, self.max_pixels)
                try:
                    pixels.append(images.to_mnist_pixels(array))
                except Exception as error:  # noqa: BLE001 - one image never fails the batch
                    raise images.Rejected("normalise", f"{type(error).__name__}: {error}") from None
                keys.append(path)
                self.decoded.inc()
            except images.Rejected as rejected:
                self.rejected.inc()
                yield beam.pvalue.TaggedOutput(
                    self.ERRORS, error_record(path, rejected.stage, str(rejected))
                )
        if keys:
            yield PixelBatch(keys, np.stack(pixels))


class DecodeImages(beam.PTransform):
    """Batches of image paths -> PixelBatches (main) and error records (`errors`)."""

    def __init__(self, max_pixels: int):
        super().__init__()
        self.max_pixels = max_pixels

    def expand(self, path_batches):
        return path_batches | "ReadDecodeNormalise" >> beam.ParDo(
            _DecodeFn(self.max_pixels)
        ).with_outputs(_DecodeFn.ERRORS, main="batches")


class _ReadRecordsFn(beam.DoFn):
    ERRORS = "errors"

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def process(self, path):
        import tensorflow as tf

        read = 0
        try:
            # Shards written with `digits preprocess --compression gzip` keep their names.
            with tf.io.gfile.GFile(path, "rb") as handle:
                compression = "GZIP" if handle.read(2) == b"\x1f\x8b" else None
            dataset = tf.data.TFRecordDataset(path, compression_type=compression)
            for serialized in dataset.batch(self.batch_size):
                try:
                    parsed = schema.parse_examples(serialized)
                except tf.errors.InvalidArgumentError as error:
                    for i in range(int(serialized.shape[0])):
                        yield beam.pvalue.TaggedOutput(
                            self.ERRORS,
                            error_record(
                                f"{path}#{read + i}",
                                "parse",
                                "not a record in the project's schema: "
                                + error.message.splitlines()[0],
                            ),
                        )
                    read += int(serialized.shape[0])
                    continue
                pixels = np.round(parsed[schema.IMAGE_KEY].numpy()[..., 0] * schema.PIXEL_MAX)
                keys = [k.decode() for k in parsed[schema.KEY_KEY].numpy()]
                read += len(keys)
                yield PixelBatch(keys, np.clip(pixels, 0, 255).astype(np.uint8))
        except (
            tf.errors.DataLossError,
            tf.errors.NotFoundError,
            tf.errors.PermissionDeniedError,
        ) as error:
            yield beam.pvalue.TaggedOutput(
                self.ERRORS,
                error_record(
                    f"{path}#{read}+",
                    "read",
                    f"corrupt or unreadable TFRecord file after {read} records: "
                    + error.message.splitlines()[0],
                ),
            )


class ReadRecords(beam.PTransform):
    """TFRecord shard paths -> PixelBatches (main) and error records (`errors`)."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def expand(self, paths):
        return (
            paths
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadParse"
            >> beam.ParDo(_ReadRecordsFn(self.batch_size)).with_outputs(
                _ReadRecordsFn.ERRORS, main="batches"
            )
        )


class _PredictFn(beam.DoFn):
    """Scores PixelBatches with the model, loaded once per worker process and shared."""

    ERRORS = "errors"

    def __init__(self, model: str, model_id: str, output_format: str, handle: shared.Shared):
        self.model, self.model_id, self.output_format = model, model_id, output_format
        self._handle = handle
        self.scored = Metrics.counter("Predict", "scored")

    def setup(self):
        from model.serving import Predictor

        self.predictor = self._handle.acquire(lambda: _Holder(Predictor(self.model)))

    def process(self, batch: PixelBatch):
        try:
            probabilities = self.predictor.value.predict(batch.pixels)
        except Exception as error:  # noqa: BLE001 - account for the batch, never lose it
            for key in batch.keys:
                yield beam.pvalue.TaggedOutput(
                    self.ERRORS, error_record(key, "predict", f"{type(error).__name__}: {error}")
                )
            return
        self.scored.inc(len(batch.keys))
        digits = probabilities.argmax(axis=1)
        confidence = probabilities.max(axis=1)
        yield format_predictions(
            batch.keys, digits, confidence, probabilities, self.model_id, self.output_format
        )
        yield beam.pvalue.TaggedOutput(
            "stats",
            {
                "scored": len(batch.keys),
                "digits": np.bincount(digits, minlength=schema.NUM_CLASSES).tolist(),
                "confidence": np.histogram(confidence, bins=CONFIDENCE_BINS, range=(0, 1))[
                    0
                ].tolist(),
            },
        )


class _Holder:
    """Shared.acquire needs a weak-referenceable object."""

    def __init__(self, value):
        self.value = value


CSV_HEADER = ",".join(["key", "digit", "confidence", *[f"p{d}" for d in range(10)], "model"])


def format_predictions(keys, digits, confidence, probabilities, model_id, output_format) -> str:
    """A batch's predictions as lines of JSON (or CSV), joined: one sink write per batch."""
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for key, digit, conf, probs in zip(keys, digits, confidence, probabilities, strict=True):
            writer.writerow(
                [key, int(digit), f"{conf:.6f}", *[f"{p:.6f}" for p in probs], model_id]
            )
        return buffer.getvalue().rstrip("\n")
    return "\n".join(
        json.dumps(
            {
                "key": key,
                "digit": int(digit),
                "confidence": round(float(conf), 6),
                "probabilities": [round(float(p), 6) for p in probs],
                "model": model_id,
            },
            ensure_ascii=False,
        )
        for key, digit, conf, probs in zip(keys, digits, confidence, probabilities, strict=True)
    )


class Predict(beam.PTransform):
    """PixelBatches -> formatted prediction lines (main), `stats`, and `errors`."""

    def __init__(self, config: ScoreConfig, model_id: str):
        super().__init__()
        self.config, self.model_id = config, model_id

    def expand(self, batches):
        return batches | "RunModel" >> beam.ParDo(
            _PredictFn(self.config.model, self.model_id, self.config.format, shared.Shared())
        ).with_outputs("stats", _PredictFn.ERRORS, main="lines")


def merge_stats(parts) -> dict:
    total = {"scored": 0, "digits": [0] * 10, "confidence": [0] * CONFIDENCE_BINS, "failed": {}}
    for part in parts:
        total["scored"] += part.get("scored", 0)
        total["digits"] = [
            a + b for a, b in zip(total["digits"], part.get("digits", [0] * 10), strict=True)
        ]
        total["confidence"] = [
            a + b
            for a, b in zip(
                total["confidence"], part.get("confidence", [0] * CONFIDENCE_BINS), strict=True
            )
        ]
        for stage, count in part.get("failed", {}).items():
            total["failed"][stage] = total["failed"].get(stage, 0) + count
    return total


class Summarise(beam.PTransform):
    """Batch stats + error records -> one dict of counts and distributions."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def expand(self, inputs):
        stats, errors = inputs
        failed = errors | "CountFailure" >> beam.Map(lambda e: {"failed": {e["stage"]: 1}})
        return (
            (stats, failed)
            | "AllStats" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(merge_stats)
            | "Write" >> beam.Map(lambda s, path: partition.write_json(path, s), self.path)
        )


def _shard_prefix(staging: str, name: str) -> str:
    return FileSystems.join(staging, name)


def build(p, config: ScoreConfig, model_id: str, staging: str) -> None:
    image_paths, record_paths = (
        p | "Inputs" >> beam.Create(config.inputs) | "MatchInputs" >> MatchInputs()
    )
    decoded = (
        image_paths
        | "BatchPaths"
        >> beam.BatchElements(min_batch_size=config.batch_size, max_batch_size=config.batch_size)
        | "SpreadBatches" >> beam.Reshuffle()
        | "DecodeImages" >> DecodeImages(config.max_pixels)
    )
    records = record_paths | "ReadRecords" >> ReadRecords(config.batch_size)
    predicted = (
        (decoded.batches, records.batches)
        | "AllBatches" >> beam.Flatten()
        | "Predict" >> Predict(config, model_id)
    )
    suffix = "." + config.format
    predicted.lines | "WritePredictions" >> beam.io.WriteToText(
        _shard_prefix(staging, "predictions"),
        file_name_suffix=suffix,
        shard_name_template="-SSSSS-of-NNNNN",
        header=CSV_HEADER if config.format == "csv" else None,
    )
    errors = (decoded.errors, records.errors, predicted.errors) | "AllErrors" >> beam.Flatten()
    (
        errors
        | "ErrorsToJson" >> beam.Map(json.dumps, ensure_ascii=False)
        | "WriteErrors"
        >> beam.io.WriteToText(
            _shard_prefix(staging, "errors"),
            file_name_suffix=".jsonl",
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )
    (predicted.stats, errors) | "Summarise" >> Summarise(FileSystems.join(staging, "_stats.json"))


def run(argv: list[str] | None = None) -> int:
    config, beam_args = parse_args(argv)
    from model.serving import keras_path
    from model.serving import model_id as compute_model_id

    model_id = compute_model_id(keras_path(config.model))
    inputs = match_inputs(config.inputs)
    target = partition.partition_dir(config.output, config.date)
    fingerprint = partition.fingerprint(inputs, model_id)
    done = partition.read_success(target)
    if done is not None and done.get("fingerprint") == fingerprint and not config.force:
        print(
            f"{target} is already scored for these {len(inputs)} inputs with model {model_id}; "
            "nothing to do (--force rescores)"
        )
        return done.get("exit_code", 0)

    started = time.time()
    staging = partition.new_staging(config.output, target)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        build(p, config, model_id, staging)
    finished = time.time()

    stats_path = FileSystems.join(staging, "_stats.json")
    with FileSystems.open(stats_path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        stats = json.loads(handle.read())
    FileSystems.delete([stats_path])
    failed = sum(stats["failed"].values())
    total = stats["scored"] + failed
    rate = failed / total if total else 0.0
    exit_code = EXIT_TOO_MANY_ERRORS if rate > config.max_error_rate else 0
    summary = {
        "inputs": total,
        "scored": stats["scored"],
        "failed": failed,
        "failed_by_stage": stats["failed"],
        "error_rate": round(rate, 6),
        "max_error_rate": config.max_error_rate,
        "model": model_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
        "seconds": round(finished - started, 2),
        "inputs_per_second": round(total / max(finished - started, 1e-9), 1),
        "predicted_digits": dict(enumerate(stats["digits"])),
        "confidence_histogram": {
            f"{i / CONFIDENCE_BINS:.1f}-{(i + 1) / CONFIDENCE_BINS:.1f}": n
            for i, n in enumerate(stats["confidence"])
        },
        "config": asdict(config),
    }
    partition.write_json(FileSystems.join(staging, "summary.json"), summary)
    partition.publish(
        staging,
        target,
        {"fingerprint": fingerprint, "model": model_id, "inputs": total, "exit_code": exit_code},
        dated=bool(config.date),
    )
    print(
        f"Scored {stats['scored']} of {total} inputs ({failed} failed: "
        f"{json.dumps(stats['failed'])}) in {summary['seconds']:.1f} s, "
        f"{summary['inputs_per_second']:.0f}/s -> {target}"
    )
    if exit_code:
        print(
            f"digits score: {rate:.1%} of inputs failed, over --max-error-rate "
            f"{config.max_error_rate:.1%}; see {target}/errors-*.jsonl",
            file=sys.stderr,
        )
    return exit_code


def main(argv: list[str] | None = None) -> int:
    from model.serving import ModelRefused

    try:
        return run(argv)
    except (ValueError, ModelRefused) as error:
        print(f"digits score: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run the installed module, not this file as __main__: Beam pickles the classes and
    # functions defined here by module name; workers import the module, never `__main__`.
    from jobs import score as job

    sys.exit(job.main())
