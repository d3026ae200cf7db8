"""The batch-scoring job end to end: awkward and bad inputs, nightly reruns, kills, error
rates, model loading, on the tiny model the tests train (nothing here depends on what it
predicts), and one test of learned quality on the real MNIST model. Its stages alone:
tests/scoring/test_transforms.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from common import errors, schema
from jobs import score
from model import data, digit_image, images, serving
from scoring import partition
from scoring.transforms import CSV_HEADER
from tests.conftest import kill_job_when
from tests.fakes import AWKWARD, BAD, write_image_set
from tests.helpers import DATE, _mnist_test_digits, _read_lines, _write_pngs, run_scorer


def _image_set(directory, dataset):
    """40 clean test digits of `dataset`, the AWKWARD valid files and the BAD files."""
    digits, labels = _mnist_test_digits(dataset, 40 + len(AWKWARD))
    return directory, write_image_set(directory, digits, labels)


@pytest.fixture(scope="module")
def image_set(tmp_path_factory, tiny_dataset):
    return _image_set(tmp_path_factory.mktemp("images") / "in", tiny_dataset)


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_model, image_set):
    """One scoring run over the image set, shared by the tests that read its outputs."""
    directory, truth = image_set
    out = tmp_path_factory.mktemp("scored") / "scores"
    code = run_scorer(tiny_model, directory / "*", out)
    part = out / f"dt={DATE}"
    return {
        "code": code,
        "truth": truth,
        "partition": part,
        "predictions": {p["key"]: p for p in _read_lines(part, "predictions")},
        "errors": _read_lines(part, "errors"),
        "summary": json.loads((part / schema.SUMMARY_FILE).read_text()),
    }


def test_every_input_is_either_predicted_or_explained(scored):
    assert scored["code"] == 0
    assert set(scored["predictions"]) == set(scored["truth"])
    assert len(scored["predictions"]) + len(scored["errors"]) == len(scored["truth"]) + len(BAD)
    assert scored["summary"]["inputs"] == len(scored["truth"]) + len(BAD)


def test_each_bad_file_is_rejected_at_its_stage_with_a_reason(scored):
    assert {Path(e["key"]).name: e["stage"] for e in scored["errors"]} == {
        name: stage for name, (_, stage) in BAD.items()
    }
    assert all(e["error"] for e in scored["errors"])


def test_every_prediction_names_the_model_and_its_confidence(scored, tiny_model):
    model_id = serving.model_id(serving.keras_path(str(tiny_model)))
    assert json.loads((tiny_model / schema.METRICS_FILE).read_text())["model_id"] == model_id
    for row in scored["predictions"].values():
        assert row["model"] == model_id and len(row["probabilities"]) == 10
        assert row["confidence"] == pytest.approx(max(row["probabilities"]), abs=1e-6)
        assert row["digit"] == int(np.argmax(row["probabilities"]))
    success = json.loads((scored["partition"] / schema.SUCCESS_FILE).read_text())
    assert success["model"] == model_id


def test_summary_counts_agree_with_the_outputs(scored):
    summary = scored["summary"]
    assert summary["failed_by_stage"] == dict(Counter(stage for _, stage in BAD.values()))
    assert summary["scored"] == len(scored["predictions"])
    assert sum(summary["predicted_digits"].values()) == summary["scored"]
    assert sum(summary["confidence_histogram"].values()) == summary["scored"]
    digits = Counter(str(p["digit"]) for p in scored["predictions"].values())
    assert {k: v for k, v in summary["predicted_digits"].items() if v} == dict(digits)


def test_rerunning_a_date_is_idempotent_and_force_rescores(tiny_model, image_set, tmp_path, capsys):
    directory, _ = image_set
    out = tmp_path / "scores"
    assert run_scorer(tiny_model, directory / "*", out) == 0
    part = out / f"dt={DATE}"
    first = (part / schema.SUMMARY_FILE).read_text()
    capsys.readouterr()
    assert run_scorer(tiny_model, directory / "*", out) == 0
    assert "already scored" in capsys.readouterr().out
    assert (part / schema.SUMMARY_FILE).read_text() == first
    assert run_scorer(tiny_model, directory / "*", out, force=True) == 0
    assert (part / schema.SUMMARY_FILE).read_text() != first  # a new run (new times)
    assert not (out / partition.STAGING).exists()


def test_new_inputs_for_a_date_are_rescored(tiny_model, mnist_dataset, tmp_path):
    directory = tmp_path / "in"
    pixels, _ = _mnist_test_digits(mnist_dataset, 6)
    _write_pngs(directory, pixels[:5])
    out = tmp_path / "scores"
    assert run_scorer(tiny_model, directory / "*", out) == 0
    Image.fromarray(pixels[5]).save(directory / "5.png")
    assert run_scorer(tiny_model, directory / "*", out) == 0
    assert len(_read_lines(out / f"dt={DATE}", "predictions")) == 6


def test_too_many_failures_write_everything_then_exit_non_zero(tiny_model, image_set, tmp_path):
    directory, truth = image_set
    out = tmp_path / "scores"
    code = run_scorer(tiny_model, directory / "*", out, date=None, max_error_rate=0.05)
    assert code == errors.TOO_MANY_ERRORS  # 7 of 57 failed: 12%
    summary = json.loads((out / schema.SUMMARY_FILE).read_text())
    assert summary["scored"] == len(truth) and summary["failed"] == len(BAD)
    assert (out / schema.SUCCESS_FILE).exists()


def test_killed_run_leaves_the_partition_untouched_and_a_rerun_completes(
    tiny_model, mnist_dataset, tmp_path
):
    directory = tmp_path / "in"
    _write_pngs(directory, _mnist_test_digits(mnist_dataset, 1000)[0])
    out = tmp_path / "scores"
    argv = ["jobs.score", "--model", str(tiny_model), "--input", str(directory / "*.png")]
    argv += ["--output", str(out), "--date", DATE]
    # Killed once Beam's sinks have started (their temporary folders exist in the staging).
    kill_job_when(argv, lambda: any((out / partition.STAGING).glob("*/beam-temp-*")))
    part = out / f"dt={DATE}"
    assert not (part / schema.SUCCESS_FILE).exists()
    assert score.main(argv[1:]) == 0
    assert (part / schema.SUCCESS_FILE).exists()
    assert len(_read_lines(part, "predictions")) == 1000
    assert not (out / partition.STAGING).exists()


def test_multi_processing_runner_and_tfrecord_inputs(tiny_model, mnist_dataset, tmp_path):
    out = tmp_path / "scores"
    beam = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    pattern = mnist_dataset / "mnist-validation.tfrecord-*"
    assert run_scorer(tiny_model, pattern, out, date=None, format="csv", beam=beam) == 0
    rows = []
    for shard in sorted(out.glob("predictions-*-of-*.csv")):
        lines = shard.read_text().splitlines()
        assert lines[0] == CSV_HEADER
        rows += [line.split(",") for line in lines[1:]]
    records = data.read_manifest(str(mnist_dataset))["splits"]["validation"]["records"]
    assert len(rows) == records and len({row[0] for row in rows}) == records
    # the validation split: the training file's last images, by their MNIST keys
    assert all(60_000 - records <= int(row[0].removeprefix("train-")) < 60_000 for row in rows)
    assert all(0 <= int(row[1]) <= 9 for row in rows)


def test_pattern_matching_nothing_is_a_clear_error(tiny_model, tmp_path, capsys):
    assert run_scorer(tiny_model, tmp_path / "*.png", tmp_path / "o", date=None) == 2
    assert "matches no files" in capsys.readouterr().err


def test_an_unfinished_model_folder_is_refused(tiny_model, tmp_path, capsys):
    unfinished = tmp_path / "model"
    unfinished.mkdir()
    (unfinished / schema.KERAS_FILE).write_bytes((tiny_model / schema.KERAS_FILE).read_bytes())
    assert run_scorer(unfinished, tmp_path / "*", tmp_path / "o", date=None) == 2
    assert "not a finished model folder" in capsys.readouterr().err


# --- The shared normalisation. --------------------------------------------------------------


def test_normalisation_of_hand_checked_images():
    # A dark 20x10 bar on a white 100x60 canvas: inverted, fitted to 20 px high, centred.
    canvas = np.full((100, 60, 3), 255, np.uint8)
    canvas[10:50, 5:25] = 0
    out = digit_image.normalise_digit(canvas).numpy()
    rows, cols = np.nonzero(out > 128)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (20, 10)
    assert abs(rows.mean() - 13.5) <= 1 and abs(cols.mean() - 13.5) <= 1
    assert out[0, 0] == 0 and out.max() == 255

    # Drawn only in the alpha channel (black strokes on transparent): seen.
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 20:30, 3] = 255
    assert digit_image.normalise_digit(rgba).numpy().max() == 255

    # MNIST-shaped images pass through unchanged; blank ones stay blank.
    mnist_like = np.zeros((28, 28, 1), np.uint8)
    mnist_like[5:20, 12:15] = 200
    np.testing.assert_array_equal(
        digit_image.normalise_digit(mnist_like).numpy(), mnist_like[..., 0]
    )
    assert digit_image.normalise_digit(np.full((40, 40, 1), 255, np.uint8)).numpy().max() == 0


def test_a_low_resolution_digit_keeps_its_strokes_whole():
    # A "0" in MNIST's 20-pixel box, reduced to 8x8 and scaled up to 32x32 as an old form
    # scanner's crops are (evaluation.suites.low_resolution): framed as MNIST frames its
    # digits, so it is only resized, soft grey levels and all (the contrast stretch cut
    # such digits into hard strokes that read worse than a plain resize). The same ring on
    # grey paper is not MNIST-framed: the full normalisation keeps it a closed ring around
    # a hole, bold or not (it once came out in pieces; a bold one blurs over more than
    # half the page, which must not be taken for the paper's grain: it came out blank).
    from PIL import ImageDraw

    from evaluation import suites

    for box, width in (([8, 4, 20, 24], 3), ([5, 3, 23, 25], 6)):
        canvas = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(canvas).ellipse(box, outline=255, width=width)
        page = suites.low_resolution(np.asarray(canvas)[None], 8)[0]
        out = digit_image.normalise_digit(page[..., None]).numpy()
        on_grey = np.clip(page.astype(int) * 0.6 + 90, 0, 255).astype(np.uint8)
        normalised = [digit_image.normalise_digit(on_grey[..., None]).numpy()]
        if width == 3:
            plain = suites.plain_resize(page[None])[0]
            assert np.abs(out.astype(int) - plain).max() <= 8  # resized, nothing else
        else:  # blurred into the page's border: not MNIST-framed, normalised
            normalised.append(out)
        for image in normalised:
            ink = image >= 128
            outside = _reachable_from_the_corner(~ink)
            assert ink.sum() > 60 and not outside[14, 14], width  # a hole enclosed by ink


def test_only_a_digit_framed_as_mnist_frames_it_is_only_resized():
    # An MNIST-like digit drawn at 4x on a black 112x112 page: resized to 28x28, no more.
    # The same digit small in a corner of the page, or drawn with a hair-thin pen, is not
    # framed as MNIST frames its digits: it is fitted to 20 pixels, centred and inked.
    digit = np.zeros((112, 112), np.uint8)
    digit[20:92, 48:64] = 255  # a "1": 72 x 16 at 4x, 18 x 4 at 28x28
    out = digit_image.normalise_digit(digit[..., None]).numpy()
    rows, cols = np.nonzero(out >= 128)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (18, 4)
    small = np.zeros_like(digit)
    small[4:22, 4:8] = 255  # the same "1" at 28x28 size, in the top-left corner
    thin = np.zeros_like(digit)
    thin[20:92, 55:57] = 255  # half a pixel wide at 28x28
    for page in (small, thin):
        out = digit_image.normalise_digit(page[..., None]).numpy()
        rows, cols = np.nonzero(out >= 128)
        assert rows.max() - rows.min() + 1 == 20 and abs(rows.mean() - 13.5) <= 1
        assert out.max() == 255  # full ink, not the faint line a plain resize makes


def test_framing_goes_by_a_blurred_digits_faint_ink_and_fits_a_small_one():
    # Strokes crossing at one point, reduced to 8x8 and scaled up: only the crossing keeps
    # half the peak (10 pixels a side), but its faint ink spans MNIST's box: framed, only
    # resized (it was once normalised, and the stretch cut such digits into pieces). A
    # "0" 11x14 pixels at 28x28, centred on its page, is not framed as MNIST frames its
    # digits (a plain resize left it that small): it is fitted to 20 pixels.
    from PIL import ImageDraw

    from evaluation import suites

    canvas = Image.new("L", (28, 28), 0)
    for line in ([14, 5, 14, 23], [6, 9, 22, 19], [6, 19, 22, 9]):
        ImageDraw.Draw(canvas).line(line, fill=255, width=1)
    page = suites.low_resolution(np.asarray(canvas)[None], 8)[0]
    out = digit_image.normalise_digit(page[..., None]).numpy()
    assert np.abs(out.astype(int) - suites.plain_resize(page[None])[0]).max() <= 8
    small = Image.new("L", (56, 56), 0)
    ImageDraw.Draw(small).ellipse([17, 14, 39, 42], outline=255, width=5)
    out = digit_image.normalise_digit(np.asarray(small)[..., None]).numpy()
    rows, _ = np.nonzero(out >= 128)
    assert rows.max() - rows.min() + 1 == 20


def test_a_printed_r_keeps_its_arm():
    # An r as a font prints it, dark on white paper: a stem 3 pixels wide the whole height
    # of the ink and a thinner arm at its top. The stroke width was once measured without
    # the edges along the crop's sides, so the stem counted as twice as wide, was thinned
    # and the arm thinned away: a bare "1", which the model read as one, surely.
    page = np.full((60, 60, 1), 235, np.uint8)
    page[20:38, 25:28] = 30  # the stem
    page[20:22, 28:33] = 30  # the arm, 2 pixels thick
    out = digit_image.normalise_digit(page).numpy()
    rows, cols = np.nonzero(out >= 128)
    stem = np.bincount(cols).argmax()
    arm = out[rows.min() : rows.min() + 4, stem + 3 :]  # right of the stem, at its top
    assert (arm >= 128).sum() >= 8  # a stroke, not a speck
    assert (out[:, stem] >= 128).sum() == rows.max() - rows.min() + 1  # the stem is whole


def _reachable_from_the_corner(free: np.ndarray) -> np.ndarray:
    """Pixels of `free` connected (4-neighbours) to the top-left corner."""
    seen = np.zeros_like(free)
    todo = [(0, 0)]
    while todo:
        y, x = todo.pop()
        if 0 <= y < free.shape[0] and 0 <= x < free.shape[1] and free[y, x] and not seen[y, x]:
            seen[y, x] = True
            todo += [(y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)]
    return seen


def test_a_digit_shifted_in_a_28x28_image_is_shifted_back_and_nothing_else():
    centred = np.zeros((28, 28), np.uint8)
    centred[6:22, 10:18] = 255  # a 16x8 block, its centre of mass at the centre
    centred[8:20, 12:16] = 90
    shifted = np.zeros_like(centred)
    shifted[1:17, 16:24] = centred[6:22, 10:18]  # 5 up, 6 right, still on a black border
    for pixels in (centred, shifted):
        np.testing.assert_array_equal(digit_image.normalise_digit(pixels[..., None]), centred)
        np.testing.assert_array_equal(images.to_mnist_pixels(pixels[..., None]), centred)
    # A mark across the image is not a shifted digit: no shift, no other change.
    marked = centred.copy()
    marked[24, 1:27] = 255
    np.testing.assert_array_equal(digit_image.normalise_digit(marked[..., None]), marked)
    assert images.is_mnist_shaped(marked[..., None]) and not images.is_mnist_shaped(
        shifted[..., None]
    )


def test_paper_grain_does_not_widen_the_crop():
    # The same dark bar on grainy off-white paper: its box is the bar's, not the page's,
    # so it is fitted to 20 px high as on clean paper (grain above the paper's lower
    # envelope once made the crop span the page and the digit come out small).
    rng = np.random.default_rng(4)
    page = np.clip(235 + rng.normal(0, 4, (100, 60)), 0, 255)
    page[10:50, 5:25] = 30
    out = digit_image.normalise_digit(np.round(page).astype(np.uint8)[..., None]).numpy()
    rows, cols = np.nonzero(out > 128)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (20, 10)
    around = np.ones_like(out, bool)
    around[rows.min() - 1 : rows.max() + 2, cols.min() - 1 : cols.max() + 2] = False
    assert out[around].max() == 0


def test_scorer_and_saved_model_share_the_normalisation():
    rng = np.random.default_rng(3)
    cases = [
        np.zeros((28, 28, 1), np.uint8),
        np.full((28, 28, 1), 255, np.uint8),
        rng.integers(0, 255, (28, 28, 1), dtype=np.uint8),
        rng.integers(0, 255, (28, 28, 3), dtype=np.uint8),
        rng.integers(0, 255, (33, 47, 4), dtype=np.uint8),
    ]
    for case in cases:
        np.testing.assert_array_equal(
            images.to_mnist_pixels(case), digit_image.normalise_digit(case).numpy()
        )
    png = io.BytesIO()
    Image.fromarray(cases[4], "RGBA").save(png, "PNG")
    decoded = images.decode(png.getvalue())
    np.testing.assert_array_equal(
        images.to_mnist_pixels(decoded), digit_image.decode_and_normalise(png.getvalue()).numpy()
    )


# --- Loading models safely. -------------------------------------------------------------------


def test_loader_refuses_a_keras_file_with_a_lambda_layer(tmp_path):
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    )
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(serving.ModelRefused, match="safe mode"):
        serving.Predictor(str(path))


def test_loader_refuses_formats_that_run_code(tmp_path):
    for name in ("model.h5", "model.pkl"):
        (tmp_path / name).write_bytes(b"\0")
        with pytest.raises(serving.ModelRefused, match="refusing to load"):
            serving.Predictor(str(tmp_path / name))


def test_gzip_tfrecord_shards_and_corrupt_shards(tiny_model, tmp_path):
    from jobs import preprocess
    from tests.fakes import write_tiny_mnist

    raw = write_tiny_mnist(tmp_path / "raw", train=40, test=20)
    dataset = tmp_path / "gz"
    preprocess.run(
        ["--source", str(raw), "--output", str(dataset), "--no-digest-check"]
        + ["--validation-size", "10", "--compression", "gzip"]
    )
    broken = tmp_path / "broken.tfrecord"
    broken.write_bytes(b"\x00" * 40)
    out = tmp_path / "scores"
    inputs = [dataset / "mnist-test.tfrecord-*", broken]
    assert run_scorer(tiny_model, inputs, out, date=None, max_error_rate=0.5) == 0
    assert len(_read_lines(out, "predictions")) == 20
    [error] = _read_lines(out, "errors")
    assert error["stage"] == "read" and error["key"].startswith(str(broken))


def test_a_run_longer_than_the_interval_logs_progress_and_starts_quietly(
    tiny_model, mnist_dataset, tmp_path
):
    from common.startup import is_noise

    directory = tmp_path / "in"
    _write_pngs(directory, _mnist_test_digits(mnist_dataset, 1000)[0])
    argv = [sys.executable, "-m", "jobs.score", "--model", str(tiny_model)]
    argv += ["--progress-interval", "0.1"]

    quiet = subprocess.run(
        [*argv, "--input", str(directory / "*.png"), "--output", str(tmp_path / "a")],
        capture_output=True,
    )
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    progress = [line for line in quiet.stderr.splitlines() if b"progress: " in line]
    assert progress and b" of 1,000 (" in progress[0] and b"errors so far" in progress[0]
    assert not [line for line in quiet.stderr.splitlines(keepends=True) if is_noise(line)]

    verbose = subprocess.run(  # a few images: the start-up is what is looked at
        [
            *argv,
            "--input",
            str(directory / "00*.png"),
            "--output",
            str(tmp_path / "b"),
            "--verbose",
        ],
        capture_output=True,
    )
    assert verbose.returncode == 0
    assert [line for line in verbose.stderr.splitlines(keepends=True) if is_noise(line)]


# --- Learned quality (the real MNIST model). -----------------------------------------------


def test_clean_and_awkward_digits_are_recognised(mnist_model, mnist_dataset, tmp_path):
    """Learned quality: a one-epoch seed model reads about 98% of MNIST test digits, so 37
    of 40 clean ones and 8 of the 10 awkward-but-valid files leave a wide margin."""
    directory, truth = _image_set(tmp_path / "in", mnist_dataset)
    assert run_scorer(mnist_model, directory / "*", tmp_path / "out") == 0
    predictions = {p["key"]: p for p in _read_lines(tmp_path / "out" / f"dt={DATE}", "predictions")}
    right = Counter(
        "clean" if Path(key).name.startswith("clean_") else "awkward"
        for key, label in truth.items()
        if predictions[key]["digit"] == label
    )
    assert right["clean"] >= 37  # of 40 clean MNIST test digits
    assert right["awkward"] >= 8  # of 10 awkward-but-valid files
