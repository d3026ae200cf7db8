"""The batch-scoring job: awkward and bad inputs, nightly reruns, kills, error rates."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from jobs import images, partition, score
from model import data, digit_image, serving
from tests.conftest import REPO

DATE = "2026-11-25"


def _mnist_test_digits(dataset: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    batch = next(iter(data.records(str(dataset), "test", count)))
    pixels = np.round(batch["image"].numpy()[..., 0] * 255).astype(np.uint8)
    return pixels, batch["label"].numpy()


def _big(pixels: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR))


AWKWARD = (
    "rgb",
    "inverted",
    "palette",
    "rgba_alpha_only",
    "sixteen_bit",
    "jpeg",
    "large",
    "space name",
    "ünïcødé 数字",
    "-leading-dash",
)
BAD = {  # file name -> expected stage
    "zero.png": "read",
    "truncated.png": "decode",
    "truncated.jpg": "decode",
    "notes.png": "decode",
    "animation.gif": "decode",
    "bomb.png": "decode",
    "dangling.png": "read",
}


def write_image_set(directory: Path, dataset: Path, clean: int = 40) -> dict[str, int]:
    """MNIST test digits as files, awkward-but-valid variants, and bad files. Returns labels."""
    directory.mkdir(parents=True)
    pixels, labels = _mnist_test_digits(dataset, clean + len(AWKWARD))
    truth = {}
    for i in range(clean):
        path = directory / f"clean_{i:03d}.png"
        Image.fromarray(pixels[i]).save(path)
        truth[str(path)] = int(labels[i])
    for j, kind in enumerate(AWKWARD):
        image, label = pixels[clean + j], int(labels[clean + j])
        path = directory / f"{kind}.png"
        if kind == "rgb":
            Image.fromarray(_big(image, 56)).convert("RGB").save(path)
        elif kind == "inverted":
            Image.fromarray(255 - _big(image, 84)).save(path)
        elif kind == "palette":
            Image.fromarray(255 - _big(image, 56)).convert("RGB").convert("P").save(path)
        elif kind == "rgba_alpha_only":  # as a browser canvas exports a drawing
            rgba = np.zeros((140, 140, 4), np.uint8)
            rgba[..., 3] = _big(image, 140)
            Image.fromarray(rgba, "RGBA").save(path)
        elif kind == "sixteen_bit":
            Image.fromarray(_big(image, 56).astype(np.uint16) * 257).save(path)
        elif kind == "jpeg":
            path = directory / "photo.jpg"
            Image.fromarray(255 - _big(image, 200)).convert("RGB").save(path, quality=85)
        elif kind == "large":
            canvas = np.full((900, 1200), 250, np.uint8)
            canvas[200:760, 300:860] = 255 - _big(image, 560)
            Image.fromarray(canvas).save(path)
        else:
            Image.fromarray(image).save(path)
        truth[str(path)] = label
    png, jpeg = io.BytesIO(), io.BytesIO()
    Image.fromarray(_big(pixels[0], 64)).save(png, "PNG")
    Image.fromarray(_big(pixels[0], 64)).save(jpeg, "JPEG")
    (directory / "zero.png").write_bytes(b"")
    (directory / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (directory / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (directory / "notes.png").write_text("shopping list: milk, eggs\n")
    Image.fromarray(pixels[1]).save(directory / "animation.gif")
    Image.new("L", (5000, 5000)).save(directory / "bomb.png")  # 25 Mpx, under Pillow's own limit
    os.symlink(directory / "deleted-long-ago.png", directory / "dangling.png")
    return truth


def _read_lines(partition_dir: Path, prefix: str) -> list[dict]:
    rows = []
    for shard in sorted(partition_dir.glob(f"{prefix}-*-of-*.jsonl")):
        rows += [json.loads(line) for line in shard.read_text().splitlines() if line]
    return rows


@pytest.fixture(scope="module")
def image_set(tmp_path_factory, mnist_dataset):
    directory = tmp_path_factory.mktemp("images") / "in"
    return directory, write_image_set(directory, mnist_dataset)


def _score(model, directory, out, *extra):
    return score.main(
        [
            "--model",
            str(model),
            "--input",
            str(directory / "*"),
            "--output",
            str(out),
            "--date",
            DATE,
            "--max-error-rate",
            "0.2",
            *extra,
        ]
    )


def test_every_input_is_scored_or_explained(mnist_model, image_set, tmp_path):
    directory, truth = image_set
    out = tmp_path / "scores"
    assert _score(mnist_model, directory, out) == 0
    part = out / f"dt={DATE}"
    predictions, errors = _read_lines(part, "predictions"), _read_lines(part, "errors")
    summary = json.loads((part / "summary.json").read_text())

    assert summary["inputs"] == len(truth) + len(BAD) == len(predictions) + len(errors)
    assert {Path(e["key"]).name: e["stage"] for e in errors} == BAD
    assert all(e["error"] for e in errors)
    scored = {p["key"]: p for p in predictions}
    assert set(scored) == set(truth)
    right = sum(scored[key]["digit"] == label for key, label in truth.items() if "clean_" in key)
    assert right >= 37  # of 40 clean MNIST test digits
    awkward_right = sum(
        scored[key]["digit"] == label for key, label in truth.items() if "clean_" not in key
    )
    assert awkward_right >= 8  # of 10 awkward-but-valid files
    model_id = serving.model_id(serving.keras_path(str(mnist_model)))
    assert json.loads((mnist_model / "metrics.json").read_text())["model_id"] == model_id
    for row in predictions:
        assert row["model"] == model_id and len(row["probabilities"]) == 10
        assert row["confidence"] == pytest.approx(max(row["probabilities"]), abs=1e-6)
    assert summary["failed_by_stage"] == {"read": 2, "decode": 5}
    assert sum(summary["predicted_digits"].values()) == summary["scored"] == len(truth)
    assert json.loads((part / partition.SUCCESS).read_text())["model"] == model_id


def test_rerunning_a_date_is_idempotent_and_force_rescores(
    mnist_model, image_set, tmp_path, capsys
):
    directory, _ = image_set
    out = tmp_path / "scores"
    assert _score(mnist_model, directory, out) == 0
    part = out / f"dt={DATE}"
    first = (part / "summary.json").read_text()
    capsys.readouterr()
    assert _score(mnist_model, directory, out) == 0
    assert "already scored" in capsys.readouterr().out
    assert (part / "summary.json").read_text() == first
    assert _score(mnist_model, directory, out, "--force") == 0
    assert (part / "summary.json").read_text() != first  # a new run (new times)
    assert not (out / partition.STAGING).exists()


def test_new_inputs_for_a_date_are_rescored(mnist_model, mnist_dataset, tmp_path):
    directory = tmp_path / "in"
    directory.mkdir()
    pixels, _ = _mnist_test_digits(mnist_dataset, 6)
    for i in range(5):
        Image.fromarray(pixels[i]).save(directory / f"{i}.png")
    out = tmp_path / "scores"
    assert _score(mnist_model, directory, out) == 0
    Image.fromarray(pixels[5]).save(directory / "5.png")
    assert _score(mnist_model, directory, out) == 0
    assert len(_read_lines(out / f"dt={DATE}", "predictions")) == 6


def test_too_many_failures_write_everything_then_exit_non_zero(mnist_model, image_set, tmp_path):
    directory, truth = image_set
    out = tmp_path / "scores"
    code = score.main(
        [
            "--model",
            str(mnist_model),
            "--input",
            str(directory / "*"),
            "--output",
            str(out),
            "--max-error-rate",
            "0.05",
        ]
    )
    assert code == score.EXIT_TOO_MANY_ERRORS  # 7 of 57 failed: 12%
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored"] == len(truth) and summary["failed"] == len(BAD)
    assert (out / partition.SUCCESS).exists()


def test_killed_run_leaves_the_partition_untouched_and_a_rerun_completes(
    mnist_model, mnist_dataset, tmp_path
):
    directory = tmp_path / "in"
    directory.mkdir()
    pixels, _ = _mnist_test_digits(mnist_dataset, 1000)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(directory / f"{i:04d}.png")
    out = tmp_path / "scores"
    command = [
        sys.executable,
        "-m",
        "jobs.score",
        "--model",
        str(mnist_model),
        "--input",
        str(directory / "*.png"),
        "--output",
        str(out),
        "--date",
        DATE,
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while (
        time.time() < deadline and process.poll() is None and not (out / partition.STAGING).exists()
    ):
        time.sleep(0.02)
    time.sleep(0.5)  # well into the pipeline
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / f"dt={DATE}" / partition.SUCCESS).exists()
    assert subprocess.run(command, cwd=REPO, capture_output=True).returncode == 0
    part = out / f"dt={DATE}"
    assert (part / partition.SUCCESS).exists()
    assert len(_read_lines(part, "predictions")) == 1000
    assert not (out / partition.STAGING).exists()


def test_multi_processing_runner_and_tfrecord_inputs(mnist_model, mnist_dataset, tmp_path):
    out = tmp_path / "scores"
    pattern = str(mnist_dataset / "mnist-validation.tfrecord-*")
    code = score.main(
        [
            "--model",
            str(mnist_model),
            "--input",
            pattern,
            "--output",
            str(out),
            "--format",
            "csv",
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ]
    )
    assert code == 0
    rows = []
    for shard in sorted(out.glob("predictions-*-of-*.csv")):
        lines = shard.read_text().splitlines()
        assert lines[0] == score.CSV_HEADER
        rows += [line.split(",") for line in lines[1:]]
    assert len(rows) == 5000 and len({row[0] for row in rows}) == 5000
    assert rows[0][0].startswith("train-5")
    labels = np.concatenate(
        [b["label"].numpy() for b in data.records(str(mnist_dataset), "validation", 5000)]
    )
    keys = [
        k.decode()
        for b in data.records(str(mnist_dataset), "validation", 5000)
        for k in b["key"].numpy()
    ]
    truth = dict(zip(keys, labels.tolist(), strict=True))
    accuracy = np.mean([int(row[1]) == truth[row[0]] for row in rows])
    assert accuracy > 0.95


def test_pattern_matching_nothing_is_a_clear_error(mnist_model, tmp_path, capsys):
    code = score.main(
        [
            "--model",
            str(mnist_model),
            "--input",
            str(tmp_path / "*.png"),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "matches no files" in capsys.readouterr().err


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
    from pipeline import preprocess
    from tests.conftest import write_tiny_mnist

    raw = write_tiny_mnist(tmp_path / "raw", train=40, test=20)
    dataset = tmp_path / "gz"
    preprocess.run(
        [
            "--source",
            str(raw),
            "--output",
            str(dataset),
            "--no-digest-check",
            "--validation-size",
            "10",
            "--compression",
            "gzip",
        ]
    )
    broken = tmp_path / "broken.tfrecord"
    broken.write_bytes(b"\x00" * 40)
    out = tmp_path / "scores"
    code = score.main(
        [
            "--model",
            str(tiny_model),
            "--input",
            str(dataset / "mnist-test.tfrecord-*"),
            "--input",
            str(broken),
            "--output",
            str(out),
            "--max-error-rate",
            "0.5",
        ]
    )
    assert code == 0
    assert len(_read_lines(out, "predictions")) == 20
    [error] = _read_lines(out, "errors")
    assert error["stage"] == "read" and error["key"].startswith(str(broken))
