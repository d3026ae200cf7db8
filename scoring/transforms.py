"""The scoring job's stages, one named composite transform each.

    work items (batch lists, TFRecord shards) >> SpreadInputs >> ReadInputs >> Predict
    ReadInputs: a batch list's files read and decoded, or a shard's records parsed, in one step
    Predict >> FormatPredictions: the predictions, and the review file (what is not
    accepted), from records formatted once
    (every stage's rejects, `errors`) ──────────────────────┐
    (Predict's scored batches) ───────────────────────────> Summarise, ReportProgress

Elements are batches (of paths, file contents, pixels, predictions), not single images:
one sink write and one model call per batch. The driver lists the inputs once and writes
the image paths as batch lists (scoring.inputs); the pipeline spreads those lists and
the TFRecord shards over the workers once, and everything after that runs in one fused
stage, so no stage ever holds every path, and no image or pixel batch is ever buffered
between stages (on the DirectRunner, a Flatten's inputs are buffered whole). Every stage
sends what it cannot handle to its `errors` output as {key, stage, error}, so every input
ends up scored or explained.
Predict takes a predictor factory (any picklable callable returning an object with
`predict(uint8 [n, 28, 28])` -> probabilities [n, 10], or a dict of arrays with them and,
screened, model.screening's `calibrated_confidence`, `status` and `reasons`), so the
stages run in tests without a trained model.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from common import files, schema, tfrecord
from common.counts import merge_counts
from common.progress import ProgressLog
from model import images
from model.screening import REASONS, STATUSES, reason_names
from monitoring import drift

ERRORS = "errors"
REVIEW = "review"  # FormatPredictions' output for the review file
REVIEW_STATUSES = ("review", "not_a_digit")  # what a person should look at
CONFIDENCE_BINS = 10
SCREEN_FIELDS = ("calibrated_confidence", "status", "reasons")
LINEAGE_FIELDS = ("input_sha256", "run_id")
CSV_HEADER = ",".join(
    ["key", "digit", "confidence", *[f"p{d}" for d in range(10)], "model", *SCREEN_FIELDS]
    + list(LINEAGE_FIELDS)
)


@dataclass
class PixelBatch:
    keys: list[str]
    pixels: np.ndarray  # uint8 [n, 28, 28]
    digests: list[str] | None = None  # SHA-256 of each input's bytes (file or record)
    facts: np.ndarray | None = None  # [n, len(monitoring.drift.FACTS)]: before normalising


class Screened(NamedTuple):
    """One input's statuses: calibrated confidence, status name, reason names."""

    calibrated_confidence: float
    status: str
    reasons: list[str]


class Row(NamedTuple):
    """One input's prediction, as the output files write it."""

    key: str
    digit: int
    confidence: float
    probabilities: np.ndarray
    screened: Screened | None  # None for a model without calibration (tests' fakes)
    digest: str | None  # SHA-256 of the input's bytes


@dataclass
class ScoredBatch:
    keys: list[str]
    probabilities: np.ndarray  # float32 [n, 10]
    screened: dict | None = None  # calibrated_confidence, status, reasons, ink: arrays [n]
    digests: list[str] | None = None
    facts: np.ndarray | None = None

    def rows(self):
        """A Row per input."""
        digits = self.probabilities.argmax(axis=1).tolist()
        confidence = self.probabilities.max(axis=1).tolist()
        screens = self._screens()
        for i, key in enumerate(self.keys):
            digest = self.digests[i] if self.digests is not None else None
            screen = screens[i] if screens is not None else None
            yield Row(key, digits[i], confidence[i], self.probabilities[i], screen, digest)

    def positions(self, statuses) -> list[int]:
        """The inputs whose status is one of `statuses` (none without a screen)."""
        if self.screened is None:
            return []
        codes = [STATUSES.index(name) for name in statuses]
        return np.flatnonzero(np.isin(self.screened["status"], codes)).tolist()

    def _screens(self) -> list[Screened] | None:
        """Per input, made per batch (Python numbers once, each distinct reason set named
        once)."""
        if self.screened is None:
            return None
        reasons = self.screened["reasons"].tolist()
        names = {bits: reason_names(bits) for bits in set(reasons)}
        return [
            Screened(conf, STATUSES[status], names[bits])
            for conf, status, bits in zip(
                self.screened["calibrated_confidence"].tolist(),
                self.screened["status"].tolist(),
                reasons,
                strict=True,
            )
        ]


def error_record(key: str, stage: str, error: str) -> dict:
    return {"key": key, "stage": stage, "error": error}


# --- Reading the driver's batch lists. ---------------------------------------------------------


def read_batch_list(path: str):
    """One batch of image paths per line (written by scoring.inputs)."""
    with files.open_read(path) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


# --- Reading and decoding image files. --------------------------------------------------------


class _ReadFiles:
    """A batch of paths -> one batch of (path, bytes), and an error record per unreadable
    file."""

    def process(self, paths):
        contents = []
        for path in paths:
            try:
                contents.append((path, files.read_bytes(path)))
            except OSError as error:
                yield beam.pvalue.TaggedOutput(
                    ERRORS, error_record(path, "read", f"cannot read the file ({error})")
                )
        if contents:
            yield contents


class _Decode:
    """A batch of (key, image bytes) -> one PixelBatch, and an error record per image that
    cannot be decoded or normalised (with the stage that refused it)."""

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self.decoded = Metrics.counter("ReadInputs", "decoded")
        self.rejected = Metrics.counter("ReadInputs", "rejected")

    def process(self, contents):
        keys, pixels, digests, arrays = [], [], [], []
        for key, data in contents:
            try:
                array = images.decode(data, self.max_pixels)
                pixels.append(self._pixels(array))
                arrays.append(array)
                digests.append(hashlib.sha256(data).hexdigest())
                keys.append(key)
                self.decoded.inc()
            except images.Rejected as rejected:
                self.rejected.inc()
                yield beam.pvalue.TaggedOutput(
                    ERRORS, error_record(key, rejected.stage, str(rejected))
                )
        if keys:
            yield PixelBatch(keys, np.stack(pixels), digests, images.input_facts(arrays))

    def _pixels(self, array: np.ndarray) -> np.ndarray:
        try:
            return images.to_mnist_pixels(array)
        except Exception as error:  # noqa: BLE001 - one image never fails the batch
            raise images.Rejected("normalise", f"{type(error).__name__}: {error}") from None


# --- Reading TFRecord shards. -----------------------------------------------------------------


class _ReadRecords:
    """A TFRecord shard -> PixelBatches of `batch_size` records, and error records."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size

    def process(self, path):
        """Every record up to any damage is scored; the rest is one error with its offset."""
        read, batch, damage = 0, [], None
        try:
            with files.open_read(path) as handle:
                for record in tfrecord.read_records(handle):
                    batch.append(record)
                    if len(batch) == self.batch_size:
                        yield from self._parse(path, batch, read)
                        read, batch = read + len(batch), []
        except (OSError, tfrecord.TFRecordError) as error:
            damage = error
        if batch:
            yield from self._parse(path, batch, read)
            read += len(batch)
        if damage is not None:
            yield beam.pvalue.TaggedOutput(
                ERRORS,
                error_record(
                    f"{path}#{read}+",
                    "read",
                    f"damaged or unreadable TFRecord file: the {read} records before the "
                    f"damage were scored, the rest cannot be read ({damage})",
                ),
            )

    def _parse(self, path: str, serialized: list[bytes], read: int):
        import tensorflow as tf

        try:
            parsed = schema.parse_examples(tf.constant(serialized))
        except tf.errors.InvalidArgumentError as error:
            reason = "not a record in the project's schema: " + error.message.splitlines()[0]
            for i in range(len(serialized)):
                yield beam.pvalue.TaggedOutput(
                    ERRORS, error_record(f"{path}#{read + i}", "parse", reason)
                )
            return
        pixels = np.round(parsed[schema.IMAGE_KEY].numpy()[..., 0] * schema.PIXEL_MAX)
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
        keys = [k.decode() for k in parsed[schema.KEY_KEY].numpy()]
        digests = [hashlib.sha256(record).hexdigest() for record in serialized]
        facts = images.input_facts(list(pixels[..., None]), record=True)
        yield PixelBatch(keys, pixels, digests, facts)


# --- All inputs in one step. -----------------------------------------------------------------


class _ReadInputsFn(beam.DoFn):
    """("images", batch list) or ("records", shard) -> PixelBatches and error records: the
    batch lists' paths read and decoded, or the shard's records parsed, in one step."""

    def __init__(self, batch_size: int, max_pixels: int):
        self.files = _ReadFiles()
        self.decode = _Decode(max_pixels)
        self.records = _ReadRecords(batch_size)

    def process(self, item):
        kind, path = item
        if kind == "records":
            yield from self.records.process(path)
            return
        for paths in read_batch_list(path):
            for output in self.files.process(paths):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield output
                else:
                    yield from self.decode.process(output)


class ReadInputs(beam.PTransform):
    """Work items -> PixelBatches (main) and error records (`errors`), with no Flatten
    before the model: the DirectRunner would buffer a Flatten's inputs whole."""

    def __init__(self, batch_size: int, max_pixels: int = images.DEFAULT_MAX_PIXELS):
        super().__init__()
        self.batch_size, self.max_pixels = batch_size, max_pixels

    def expand(self, items):
        return items | "ReadDecode" >> beam.ParDo(
            _ReadInputsFn(self.batch_size, self.max_pixels)
        ).with_outputs(ERRORS, main="batches")


# --- Predicting. ------------------------------------------------------------------------------


class _Holder:
    """Shared.acquire needs a weak-referenceable object."""

    def __init__(self, value):
        self.value = value


class _PredictFn(beam.DoFn):
    """Scores PixelBatches with a predictor made once per worker process and shared."""

    def __init__(self, predictor_factory: Callable, handle: shared.Shared):
        self.predictor_factory = predictor_factory
        self._handle = handle
        self.scored = Metrics.counter("Predict", "scored")

    def setup(self):
        self.predictor = self._handle.acquire(lambda: _Holder(self.predictor_factory()))

    def process(self, batch: PixelBatch):
        try:
            predicted = self.predictor.value.predict(batch.pixels)
            if not isinstance(predicted, dict):
                predicted = {"probabilities": predicted}
            probabilities = np.asarray(predicted["probabilities"], np.float32)
        except Exception as error:  # noqa: BLE001 - account for the batch, never lose it
            for key in batch.keys:
                yield beam.pvalue.TaggedOutput(
                    ERRORS, error_record(key, "predict", f"{type(error).__name__}: {error}")
                )
            return
        self.scored.inc(len(batch.keys))
        screened = None
        if "status" in predicted:
            screened = {k: predicted[k] for k in (*SCREEN_FIELDS, "ink")}
        yield ScoredBatch(batch.keys, probabilities, screened, batch.digests, batch.facts)


class Predict(beam.PTransform):
    """PixelBatches -> ScoredBatches (main) and error records (`errors`).

    `predictor_factory()` is called once per worker process, e.g.
    `functools.partial(model.serving.Predictor, "out/model")`.
    """

    def __init__(self, predictor_factory: Callable):
        super().__init__()
        self.predictor_factory = predictor_factory

    def expand(self, batches):
        return batches | "RunModel" >> beam.ParDo(
            _PredictFn(self.predictor_factory, shared.Shared())
        ).with_outputs(ERRORS, main="scored")


# --- Formatting and summarising. ----------------------------------------------------------------


def format_predictions(
    batch: ScoredBatch, model_id: str, output_format: str, run_id: str = ""
) -> list[str]:
    """A batch's predictions as lines of JSON (or CSV rows), one per input."""
    if output_format == "csv":
        return [_csv_line(row, model_id, run_id) for row in batch.rows()]
    return [json.dumps(_record(row, model_id, run_id), ensure_ascii=False) for row in batch.rows()]


def _csv_line(row: Row, model_id: str, run_id: str) -> str:
    screen = row.screened
    screened = (
        [f"{screen.calibrated_confidence:.6f}", screen.status, ";".join(screen.reasons)]
        if screen
        else [""] * 3
    )
    buffer = io.StringIO()
    # "\r\n" as the terminator, so that a field holding either is quoted; then cut off
    csv.writer(buffer, lineterminator="\r\n").writerow(
        [row.key, row.digit, f"{row.confidence:.6f}", *[f"{p:.6f}" for p in row.probabilities]]
        + [model_id, *screened, row.digest or "", run_id]
    )
    return buffer.getvalue()[:-2]


def _record(row: Row, model_id: str, run_id: str) -> dict:
    record = {
        "key": row.key,
        "digit": row.digit,
        "confidence": round(row.confidence, 6),
        "probabilities": [round(float(p), 6) for p in row.probabilities],
        "model": model_id,
    }
    if screen := row.screened:
        record.update(calibrated_confidence=round(screen.calibrated_confidence, 6))
        record.update(status=screen.status, reasons=screen.reasons)
    if row.digest:
        record["input_sha256"] = row.digest
    if run_id:
        record["run_id"] = run_id
    return record


class _FormatFn(beam.DoFn):
    def __init__(self, model_id: str, output_format: str, run_id: str):
        self.model_id, self.output_format, self.run_id = model_id, output_format, run_id

    def process(self, batch: ScoredBatch):
        lines = format_predictions(batch, self.model_id, self.output_format, self.run_id)
        yield "\n".join(lines)
        if review := batch.positions(REVIEW_STATUSES):
            yield beam.pvalue.TaggedOutput(REVIEW, "\n".join(lines[i] for i in review))


class FormatPredictions(beam.PTransform):
    """ScoredBatches -> one text element per batch (`predictions`: JSON lines, or CSV rows
    without the header) and, from the same lines, one per batch with any input to look at
    (`review`: status review or not_a_digit). Every record names the model and, given,
    the run."""

    def __init__(self, model_id: str, output_format: str = "jsonl", run_id: str = ""):
        super().__init__()
        self.model_id, self.output_format, self.run_id = model_id, output_format, run_id

    def expand(self, scored):
        return scored | "ToText" >> beam.ParDo(
            _FormatFn(self.model_id, self.output_format, self.run_id)
        ).with_outputs(REVIEW, main="predictions")


def empty_stats() -> dict:
    return {
        "scored": 0,
        "digits": [0] * schema.NUM_CLASSES,
        "confidence": [0] * CONFIDENCE_BINS,
        "failed": {},
        "statuses": dict.fromkeys(STATUSES, 0),
        "reasons": dict.fromkeys(REASONS, 0),
        "calibrated_confidence": [0] * CONFIDENCE_BINS,
    }


def batch_stats(batch: ScoredBatch) -> dict:
    """Counts of one batch: scored, predicted digits, confidence histograms (10 bins),
    statuses and reasons."""
    confidence = batch.probabilities.max(axis=1)
    stats = {
        "scored": len(batch.keys),
        "digits": np.bincount(
            batch.probabilities.argmax(axis=1), minlength=schema.NUM_CLASSES
        ).tolist(),
        "confidence": _histogram(confidence),
    }
    if batch.screened is not None:
        status = np.bincount(batch.screened["status"], minlength=len(STATUSES))
        stats["statuses"] = dict(zip(STATUSES, status.tolist(), strict=True))
        bits = np.asarray(batch.screened["reasons"])[:, None] & (1 << np.arange(len(REASONS)))
        stats["reasons"] = dict(zip(REASONS, (bits > 0).sum(axis=0).tolist(), strict=True))
        stats["calibrated_confidence"] = _histogram(batch.screened["calibrated_confidence"])
        if batch.facts is not None:
            stats["drift"] = drift.histograms(
                batch.facts,
                batch.screened["ink"],
                batch.probabilities.argmax(axis=1),
                batch.screened["calibrated_confidence"],
                batch.screened["status"],
            )
    return stats


def _histogram(values) -> list[int]:
    return np.histogram(values, bins=CONFIDENCE_BINS, range=(0, 1))[0].tolist()


class Summarise(beam.PTransform):
    """(ScoredBatches, error records) -> one dict: scored, digits, confidence, failed by stage."""

    def expand(self, inputs):
        scored, errors = inputs
        counted = scored | "CountScored" >> beam.Map(batch_stats)
        failed = errors | "CountFailure" >> beam.Map(lambda e: {"failed": {e["stage"]: 1}})
        return (
            (counted, failed)
            | "AllCounts" >> beam.Flatten()
            | "Merge" >> beam.CombineGlobally(merge_counts)
            | "Complete" >> beam.Map(lambda total: merge_counts([empty_stats(), total]))
        )


# --- Progress. ----------------------------------------------------------------------------------


class ReportProgress(beam.PTransform):
    """(ScoredBatches, error records) -> a log line every `interval` seconds per worker
    process: inputs done (of `expected`), the rate, errors so far, the time left."""

    def __init__(self, expected: int, interval: float = 30.0):
        super().__init__()
        self.log = ProgressLog(expected, interval, unit="inputs")

    def expand(self, inputs):
        scored, errors = inputs
        log = self.log
        errors | "CountFailed" >> beam.Map(lambda _: log.count(failed=1))
        return scored | "CountScored" >> beam.Map(lambda b: log.count(done=len(b.keys)))
