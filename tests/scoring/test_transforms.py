"""The scoring stages production runs (ReadInputs, Predict, FormatPredictions, Summarise,
ReportProgress), each under TestPipeline on tiny files, with a fake predictor: no model."""

from __future__ import annotations

import json
import logging

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from model.screening import REASONS
from scoring.inputs import list_inputs
from scoring.transforms import (
    CSV_HEADER,
    FormatPredictions,
    PixelBatch,
    Predict,
    ReadInputs,
    ReportProgress,
    ScoredBatch,
    Summarise,
    empty_stats,
)
from tests.fakes import (
    BAD,
    BarPredictor,
    BrokenPredictor,
    digit_like_images,
    encoded,
    enlarge,
    write_tfrecord,
)

MODEL_ID = "sha256:0123456789abcdef"


def _keys_and_pixels(batches):
    return batches | beam.FlatMap(
        lambda b: [(k, int(p.sum())) for k, p in zip(b.keys, b.pixels, strict=True)]
    )


def _stages(errors):
    return errors | beam.Map(lambda e: (e["key"], e["stage"]))


def _batch_list(directory, paths) -> tuple[str, str]:
    """A work item as the driver writes it: ("images", a batch list of these paths)."""
    listed = directory / f"list-{len(list(directory.glob('list-*')))}.jsonl"
    listed.write_text(json.dumps([str(p) for p in paths]) + "\n")
    return ("images", str(listed))


def test_listing_splits_images_from_records_and_counts_each_file_once(tmp_path):
    digits, _ = digit_like_images(3)
    (tmp_path / "sub").mkdir()
    for name, digit in zip(("a.png", "b.jpg", "sub/c.png"), digits, strict=True):
        (tmp_path / name).write_bytes(encoded(digit, "JPEG" if name.endswith("jpg") else "PNG"))
    (tmp_path / "mnist-test.tfrecord-00000-of-00001").write_bytes(b"x")
    patterns = [str(tmp_path / "*"), str(tmp_path / "*.png"), str(tmp_path / "**" / "*.png")]
    listed = list_inputs(patterns, MODEL_ID, str(tmp_path / "lists"), batch_size=2)
    assert (listed.files, listed.images) == (4, 3)
    assert listed.records == [str(tmp_path / "mnist-test.tfrecord-00000-of-00001")]
    with TestPipeline() as p:
        work = [("images", path) for path in listed.batch_lists]
        read = p | beam.Create(work) | ReadInputs(batch_size=2)
        assert_that(read.batches | beam.Map(lambda b: len(b.keys)), equal_to([2, 1]), "Sizes")
        assert_that(
            read.batches | beam.FlatMap(lambda batch: batch.keys),
            equal_to([str(tmp_path / n) for n in ("a.png", "b.jpg", "sub/c.png")]),
            label="EachImageOnce",
        )
        assert_that(read.errors, equal_to([]), label="NoErrors")


def test_a_pattern_matching_nothing_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"--input '.*\*\.png' matches no files"):
        list_inputs([str(tmp_path / "*.png")], MODEL_ID, str(tmp_path / "lists"), 256)


def test_the_fingerprint_ignores_listing_order_but_not_a_changed_file_or_model(tmp_path):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"x")

    def fingerprint(patterns, model=MODEL_ID):
        return list_inputs(patterns, model, str(tmp_path / "lists"), 256).fingerprint

    first = fingerprint([str(tmp_path / "*.png")])
    assert fingerprint([str(tmp_path / "b.png"), str(tmp_path / "a.png")]) == first
    assert fingerprint([str(tmp_path / "*.png")], model="sha256:fedcba9876543210") != first
    (tmp_path / "b.png").write_bytes(b"xx")
    assert fingerprint([str(tmp_path / "*.png")]) != first


def test_read_inputs_reads_files_and_explains_unreadable_ones(tmp_path):
    digit = digit_like_images(1)[0][0]
    (tmp_path / "ok.png").write_bytes(encoded(digit))
    paths = [tmp_path / "ok.png", tmp_path / "gone.png"]
    with TestPipeline() as p:
        read = p | beam.Create([_batch_list(tmp_path, paths)]) | ReadInputs(batch_size=256)
        expected = [(str(paths[0]), int(digit.sum()))]
        assert_that(_keys_and_pixels(read.batches), equal_to(expected), label="Pixels")
        assert_that(_stages(read.errors), equal_to([(str(paths[1]), "read")]), label="Errors")


def test_read_inputs_normalises_every_valid_kind_and_rejects_bad_files_by_stage(tmp_path):
    digits, _ = digit_like_images(3)
    valid = {
        "mnist.png": encoded(digits[0]),
        "big-inverted.jpg": encoded(255 - enlarge(digits[1], 90), "JPEG"),
        "rgb.png": encoded(np.stack([enlarge(digits[2], 56)] * 3, axis=-1)),
    }
    for name, data in valid.items():
        (tmp_path / name).write_bytes(data)
    for name, (write, _) in BAD.items():
        write(tmp_path / name, digits[0])
    paths = [tmp_path / name for name in [*valid, *BAD]]
    with TestPipeline() as p:
        decoded = p | beam.Create([_batch_list(tmp_path, paths)]) | ReadInputs(batch_size=256)
        shapes = decoded.batches | beam.FlatMap(
            lambda b: [
                (k, p.shape, str(p.dtype), int(p.max()) > 200)
                for k, p in zip(b.keys, b.pixels, strict=True)
            ]
        )
        assert_that(
            shapes,
            equal_to([(str(tmp_path / name), (28, 28), "uint8", True) for name in valid]),
            label="Decoded",
        )
        expected_errors = [(str(tmp_path / n), stage) for n, (_, stage) in BAD.items()]
        assert_that(_stages(decoded.errors), equal_to(expected_errors), label="Errors")


def test_read_inputs_passes_mnist_shaped_pixels_through_unchanged(tmp_path):
    digits, _ = digit_like_images(2)
    for i, d in enumerate(digits):
        (tmp_path / f"d{i}.png").write_bytes(encoded(d))
    paths = [tmp_path / f"d{i}.png" for i in range(2)]
    with TestPipeline() as p:
        decoded = p | beam.Create([_batch_list(tmp_path, paths)]) | ReadInputs(batch_size=256)
        expected = [(str(path), int(d.sum())) for path, d in zip(paths, digits, strict=True)]
        assert_that(_keys_and_pixels(decoded.batches), equal_to(expected))


def test_read_inputs_gives_records_pixels_and_explains_corrupt_shards(tmp_path):
    digits, labels = digit_like_images(7)
    keys = write_tfrecord(tmp_path / "good.tfrecord", digits, labels)
    (tmp_path / "bad.tfrecord").write_bytes(b"\0" * 40)
    paths = [str(tmp_path / "good.tfrecord"), str(tmp_path / "bad.tfrecord")]
    with TestPipeline() as p:
        work = [("records", path) for path in paths]
        read = p | beam.Create(work) | ReadInputs(batch_size=3)
        expected = [(k, int(d.sum())) for k, d in zip(keys, digits, strict=True)]
        assert_that(_keys_and_pixels(read.batches), equal_to(expected), label="Pixels")
        assert_that(_stages(read.errors), equal_to([(paths[1] + "#0+", "read")]), label="Errors")


def test_predict_uses_the_injected_predictor_and_keeps_keys_with_their_rows():
    digits, labels = digit_like_images(12, seed=4)
    batches = [
        PixelBatch([f"k{i}" for i in range(0, 5)], digits[:5]),
        PixelBatch([f"k{i}" for i in range(5, 12)], digits[5:]),
    ]
    with TestPipeline() as p:
        predicted = p | beam.Create(batches) | Predict(BarPredictor)
        digits_out = predicted.scored | beam.FlatMap(
            lambda b: list(zip(b.keys, b.probabilities.argmax(axis=1).tolist(), strict=True))
        )
        assert_that(
            digits_out, equal_to([(f"k{i}", int(labels[i])) for i in range(12)]), label="Digits"
        )
        assert_that(predicted.errors, equal_to([]), label="NoErrors")


def test_a_failing_predictor_sends_every_key_of_the_batch_to_errors():
    digits, _ = digit_like_images(3)
    with TestPipeline() as p:
        predicted = (
            p | beam.Create([PixelBatch(["a", "b", "c"], digits)]) | Predict(BrokenPredictor)
        )
        assert_that(predicted.scored, equal_to([]), label="NothingScored")
        assert_that(
            predicted.errors | beam.Map(lambda e: (e["key"], e["stage"], e["error"])),
            equal_to([(k, "predict", "RuntimeError: out of memory") for k in "abc"]),
            label="Errors",
        )


def _scored(keys, digits):
    probabilities = np.full((len(keys), 10), 0.01, np.float32)
    probabilities[np.arange(len(keys)), digits] = 0.91
    return ScoredBatch(list(keys), probabilities)


def test_format_predictions_as_json_lines():
    with TestPipeline() as p:
        formatted = (
            p | beam.Create([_scored(["x.png", "ü.png"], [3, 8])]) | FormatPredictions(MODEL_ID)
        )
        rows = formatted.predictions | beam.FlatMap(
            lambda text: [json.loads(line) for line in text.split("\n")]
        )
        assert_that(
            rows,
            equal_to(
                [
                    {
                        "key": key,
                        "digit": digit,
                        "confidence": 0.91,
                        "probabilities": [0.91 if d == digit else 0.01 for d in range(10)],
                        "model": MODEL_ID,
                    }
                    for key, digit in (("x.png", 3), ("ü.png", 8))
                ]
            ),
        )


def test_format_predictions_as_csv_rows_matching_the_header():
    with TestPipeline() as p:
        formatted = (
            p | beam.Create([_scored(["a,b.png"], [5])]) | FormatPredictions(MODEL_ID, "csv")
        )
        assert_that(formatted.review, equal_to([]), label="NoReviewUnscreened")
        assert_that(
            formatted.predictions,
            equal_to(
                [
                    '"a,b.png",5,0.910000,'
                    + ",".join("0.910000" if d == 5 else "0.010000" for d in range(10))
                    + f",{MODEL_ID},,,,,"  # no status (unscreened), no digest, no run id
                ]
            ),
        )
    assert CSV_HEADER.split(",")[:3] == ["key", "digit", "confidence"]
    assert CSV_HEADER.split(",")[13:] == [
        "model", "calibrated_confidence", "status", "reasons", "input_sha256", "run_id",
    ]  # fmt: skip


def bits(*names) -> int:
    return sum(1 << REASONS.index(name) for name in names)


def _screened(keys, digits, statuses, reasons):
    batch = _scored(keys, digits)
    batch.screened = {
        "calibrated_confidence": np.full(len(keys), 0.5, np.float32),
        "status": np.array(statuses, np.int32),
        "reasons": np.array(reasons, np.int32),
    }
    return batch


def test_statuses_go_into_records_csv_and_the_review_file():
    batch = _screened(
        ["a", "b", "c"],
        [1, 2, 3],
        [0, 1, 2],
        [0, bits("low_confidence"), bits("blank", "unlike_a_digit")],
    )
    with TestPipeline() as p:
        batches = p | beam.Create([batch, _screened(["d"], [4], [0], [0])])
        formatted = batches | "Json" >> FormatPredictions(MODEL_ID)
        records = formatted.review | beam.Map(
            lambda t: [json.loads(line) for line in t.split("\n")]
        )
        assert_that(
            records | beam.Map(lambda rs: [(r["key"], r["status"], r["reasons"]) for r in rs]),
            equal_to(
                [
                    [
                        ("b", "review", ["low_confidence"]),
                        ("c", "not_a_digit", ["blank", "unlike_a_digit"]),
                    ]
                ]
            ),
            label="OnlyReviewAndNotADigit",
        )
        csv_rows = batches | "Csv" >> FormatPredictions(MODEL_ID, "csv")
        assert_that(
            csv_rows.review | beam.Map(lambda t: [line.split(",")[0] for line in t.split("\n")]),
            equal_to([["b", "c"]]),
            label="CsvReview",
        )
        assert_that(
            csv_rows.predictions
            | beam.FlatMap(lambda t: [line.split(",")[14:17] for line in t.split("\n")]),
            equal_to(
                [
                    ["0.500000", "accepted", ""],
                    ["0.500000", "review", "low_confidence"],
                    ["0.500000", "not_a_digit", "blank;unlike_a_digit"],
                    ["0.500000", "accepted", ""],
                ]
            ),
            label="CsvColumns",
        )


def test_summarise_counts_scored_digits_confidence_and_failures_by_stage():
    scored = [
        _screened(["a", "b"], [1, 1], [0, 2], [0, bits("blank", "too_little_ink")]),
        _screened(["c"], [7], [1], [bits("low_confidence")]),
    ]
    errors = [{"key": "x", "stage": "read", "error": "?"}] * 2 + [
        {"key": "y", "stage": "decode", "error": "?"}
    ]
    with TestPipeline() as p:
        summary = (
            p | "Scored" >> beam.Create(scored),
            p | "Errors" >> beam.Create(errors),
        ) | Summarise()
        digits = [0] * 10
        digits[1], digits[7] = 2, 1
        confidence = [0] * 10
        confidence[9] = 3
        assert_that(
            summary,
            equal_to(
                [
                    {
                        "scored": 3,
                        "digits": digits,
                        "confidence": confidence,
                        "failed": {"read": 2, "decode": 1},
                        "statuses": {"accepted": 1, "review": 1, "not_a_digit": 1},
                        "reasons": {
                            **dict.fromkeys(REASONS, 0),
                            "blank": 1,
                            "too_little_ink": 1,
                            "low_confidence": 1,
                        },
                        "calibrated_confidence": [0, 0, 0, 0, 0, 3, 0, 0, 0, 0],
                    }
                ]
            ),
        )


def test_summarise_of_nothing_is_all_zeros():
    with TestPipeline() as p:
        empty = p | "Scored" >> beam.Create([]), p | "Errors" >> beam.Create([])
        assert_that(
            empty | Summarise(),
            equal_to([empty_stats()]),
        )


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_progress_lines_give_inputs_done_rate_errors_and_time_left():
    scored = [_scored(["a", "b"], [1, 1]), _scored(["c"], [7])]
    errors = [{"key": "x", "stage": "read", "error": "?"}]
    logger, collected = logging.getLogger("digits.progress"), _Lines()
    logger.addHandler(collected)
    logger.setLevel(logging.INFO)
    try:
        with TestPipeline() as p:
            inputs = p | "Scored" >> beam.Create(scored), p | "Errors" >> beam.Create(errors)
            inputs | ReportProgress(expected=8, interval=0)
    finally:
        logger.removeHandler(collected)
    assert collected.lines, "no progress line"
    assert collected.lines[-1].startswith("progress: 4 inputs of 8 (50.0%) done, ")
    last = collected.lines[-1]
    assert "/s, 1 errors so far, about " in last and last.endswith(" left")
