"""A labelled folder through training and evaluation: its digits weigh --labelled-weight in
the loss, its not-a-digit images join the negatives, and evaluate reports and gates every
source on its own test images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common import schema
from jobs import evaluate, preprocess, train
from model import data
from model.configs import recipe
from tests.conftest import TEST_CALIBRATION, TEST_GATE
from tests.fakes import write_labelled_folder, write_tiny_mnist
from training.train import outlier_pool


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict]:
    """Tiny MNIST-like IDX data and a labelled folder `forms` of 120 digits and 20
    not-a-digit images, preprocessed together."""
    root = tmp_path_factory.mktemp("mixed")
    raw = write_tiny_mnist(root / "raw", train=400, test=100)
    write_labelled_folder(root / "forms", count=120, negatives=20)
    out = root / "data"
    manifest = preprocess.run(
        ["--source", str(raw), "--output", str(out), "--no-digest-check",
         "--validation-size", "100", "--labelled", str(root / "forms")]
    )  # fmt: skip
    return out, manifest


@pytest.fixture(scope="module")
def mixed_model(mixed) -> Path:
    out, _ = mixed
    model = out.parent / "model"
    argv = ["--data", str(out), "--output", str(model), "--epochs", "2", "--batch-size", "32"]
    train.run([*argv, "--labelled-weight", "3", *TEST_CALIBRATION])
    return model


def test_labelled_digits_weigh_their_weight_in_the_training_batches(mixed):
    out, manifest = mixed
    batches = data.supervised(str(out), "train", 64, labelled_weight=3.0)
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    forms_train = manifest["by_source"]["forms"]["train"]
    assert (weights == 3.0).sum() == forms_train["records"] - forms_train["not_a_digit"]
    assert (weights == 1.0).sum() == manifest["by_source"]["mnist"]["train"]["records"]


def test_not_a_digit_answers_join_the_outlier_exposure_negatives(mixed):
    out, manifest = mixed
    with data.local_dataset(str(out)) as dataset:
        pool = outlier_pool(recipe("strong"), dataset)
    given = manifest["not_a_digit"]["train"]["records"]
    made = round(data.split_size(manifest, "train") * recipe("strong").outlier_share)
    assert given > 0 and len(pool) == made + given
    negatives = data.not_a_digit_pixels(str(out), "train", manifest)
    np.testing.assert_array_equal(pool[-given:], negatives)


def test_evaluate_reports_every_source_on_its_own_test_images(mixed, mixed_model, tmp_path):
    out, manifest = mixed
    assert (
        json.loads((mixed_model / schema.METRICS_FILE).read_text())["config"]["labelled_weight"]
        == 3.0
    )
    argv = ["--data", str(out), "--model", str(mixed_model), "--output", str(tmp_path / "r")]
    results = evaluate.run([*argv, "--suite-size", "50", "--suite-per-kind", "5", *TEST_GATE])
    test_counts = {
        source: splits["test"]["records"] - splits["test"]["not_a_digit"]
        for source, splits in manifest["by_source"].items()
    }
    assert {s: v["images"] for s, v in results["by_source"].items()} == test_counts
    assert set(test_counts) == {"mnist", "forms"}
    for figures in results["by_source"].values():
        assert 0 <= figures["accuracy"] <= 1 and 0 <= figures["accepted_share"] <= 1
    card = (tmp_path / "r" / "report.md").read_text()
    assert "## By source (test split)" in card and "| forms |" in card
    assert "Labelled folders" in card

    floors = ["--source-floor", "forms=0", "--source-floor", "scans=0.5"]
    refused = evaluate.run([*argv[:-1], str(tmp_path / "r2"), *TEST_GATE, *floors,
                            "--suite-size", "50", "--suite-per-kind", "5"])  # fmt: skip
    assert refused["blessing"]["failed"] == ["source_floors"]
    blessing = json.loads((mixed_model / schema.BLESSING_FILE).read_text())
    assert not blessing["blessed"]
    (check,) = [c for c in blessing["checks"] if c["check"] == "source_floors"]
    assert check["value"]["missing"] == ["scans"] and "forms" in check["value"]
