"""The blessing gate: a worse candidate is not blessed and the scorer refuses it; a model
file swapped after blessing is refused; --allow-unblessed scores anyway and says so."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from common import schema
from jobs import calibration_report
from model import gate, serving, shape_check
from tests.conftest import TEST_GATE, evaluated
from tests.test_score import DATE, run_scorer


def test_mcnemar_is_exact_and_one_sided():
    right = np.array([True] * 90 + [False] * 10)
    same = gate.mcnemar_worse_p(right, right)
    assert same["p"] == 1.0 and same["only_baseline_right"] == 0
    baseline = right.copy()
    baseline[90:] = True  # the baseline gets 10 more right, the candidate none more
    worse = gate.mcnemar_worse_p(right, baseline)
    assert worse["only_baseline_right"] == 10 and worse["p"] == pytest.approx(0.5**10)
    better = gate.mcnemar_worse_p(baseline, right)
    assert better["p"] == 1.0


def test_bless_names_every_check_and_skips_non_inferiority_without_a_baseline():
    labels = np.repeat(np.arange(10), 100)
    predicted = labels.copy()
    predicted[:10] = 1  # digit 0: recall 0.90
    verdict = gate.bless(gate.GateConfig(), labels, predicted, 0.01, 0.9)
    assert [c["check"] for c in verdict["checks"]] == [
        "accuracy", "class_recall", "ece_after_scaling", "mean_corruption_accuracy",
        "non_inferiority",
    ]  # fmt: skip
    assert verdict["failed"] == ["class_recall"] and not verdict["blessed"]
    assert verdict["checks"][1]["value"] == {"worst_digit": 0, "recall": 0.9}
    assert verdict["checks"][-1]["skipped"] == "no baseline model"
    ok = gate.bless(gate.GateConfig(min_class_recall=0.85), labels, predicted, 0.01, 0.9)
    assert ok["blessed"]


def one_image(directory):
    inputs = directory / "in"
    inputs.mkdir()
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(inputs / "stroke.png")
    return inputs


@pytest.fixture(scope="module")
def worse_model(tmp_path_factory, mnist_model, mnist_dataset):
    """The MNIST model with noise in its last layer's weights: deliberately worse, then
    evaluated against the MNIST model as the baseline."""
    folder = tmp_path_factory.mktemp("worse") / "model"
    shutil.copytree(mnist_model, folder)
    model = serving.load_model(str(mnist_model))
    kernel, bias = model.layers[-1].get_weights()
    noise = np.random.default_rng(0).normal(0, kernel.std() * 1.5, kernel.shape)
    model.layers[-1].set_weights([kernel + noise.astype(kernel.dtype), bias])
    model.save(folder / schema.KERAS_FILE)
    # A changed model file needs its own calibration, as digits train fits it.
    config = calibration_report.CalibrationConfig(
        target_error=0.005, shape_check=shape_check.ShapeCheckConfig(epochs=1, max_outliers=1500)
    )
    calibration_report.fit(model, str(folder), str(mnist_dataset), config)
    gate_options = (*TEST_GATE, "--baseline", str(mnist_model))
    return evaluated(folder, mnist_dataset, gate=gate_options)


def test_a_worse_candidate_is_not_blessed_and_the_scorer_refuses_it(
    worse_model, mnist_model, tmp_path, capsys
):
    blessing = json.loads((worse_model / schema.BLESSING_FILE).read_text())
    assert not blessing["blessed"] and blessing["failed"] == ["non_inferiority"]
    figures = blessing["checks"][-1]["value"]
    assert figures["candidate_accuracy"] < figures["baseline_accuracy"] and figures["p"] < 0.05
    assert blessing["baseline"]["model_id"] == serving.model_id(
        str(mnist_model / schema.KERAS_FILE)
    )
    inputs = one_image(tmp_path)
    assert run_scorer(worse_model, inputs / "*", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "not blessed: failed non_inferiority" in error and "--allow-unblessed" in error
    assert not (tmp_path / "out" / f"dt={DATE}").exists()
    assert run_scorer(worse_model, inputs / "*", tmp_path / "out", allow_unblessed=True) == 0
    summary = json.loads((tmp_path / "out" / f"dt={DATE}" / schema.SUMMARY_FILE).read_text())
    assert summary["blessing"]["allowed_unblessed"] and not summary["blessing"]["blessed"]


def test_a_model_file_swapped_after_blessing_is_refused(worse_model, mnist_model, tmp_path, capsys):
    swapped = tmp_path / "model"
    shutil.copytree(mnist_model, swapped)
    shutil.copy(worse_model / schema.KERAS_FILE, swapped / schema.KERAS_FILE)
    assert run_scorer(swapped, one_image(tmp_path) / "*", tmp_path / "out") == 2
    assert "changed since it was blessed" in capsys.readouterr().err


def test_the_blessed_model_is_scored_and_the_summary_records_the_blessing(mnist_model):
    blessing = json.loads((mnist_model / schema.BLESSING_FILE).read_text())
    assert blessing["blessed"] and blessing["model_sha256"] == serving.files.sha256_file(
        str(mnist_model / schema.KERAS_FILE)
    )
    assert serving.check_blessing(str(mnist_model))["blessed"]
