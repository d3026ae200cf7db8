"""The blessing gate: a worse candidate is not blessed and the scorer refuses it; a model
file swapped after blessing is refused; --allow-unblessed scores anyway and says so."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from common import schema
from evaluation import gate
from model import serving, shape_check
from tests.conftest import TEST_GATE, evaluated
from tests.helpers import DATE, run_scorer
from training import calibrate

ACCEPTED = (0.85, None)  # validation digits accepted: candidate, baseline (none)


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
    verdict = gate.bless(gate.GateConfig(), labels, predicted, 0.01, 0.9, accepted=ACCEPTED)
    assert [c["check"] for c in verdict["checks"]] == [
        "accuracy", "class_recall", "ece_after_scaling", "mean_corruption_accuracy",
        "non_inferiority", "source_floors", "source_non_inferiority", "accepted_share",
    ]  # fmt: skip
    assert verdict["failed"] == ["class_recall"] and not verdict["blessed"]
    assert verdict["checks"][1]["value"] == {"worst_digit": 0, "recall": 0.9}
    assert verdict["checks"][4]["skipped"] == "no baseline model"
    assert verdict["checks"][5]["skipped"] == "no --source-floor"
    assert verdict["checks"][6]["skipped"] == "no baseline model"
    ok = gate.bless(
        gate.GateConfig(min_class_recall=0.85), labels, predicted, 0.01, 0.9, accepted=ACCEPTED
    )
    assert ok["blessed"]


def _two_sources():
    """900 MNIST test digits and 100 of a labelled folder's; every prediction right."""
    labels = np.repeat(np.arange(10), 100)
    sources = np.array(["mnist"] * 900 + ["forms"] * 100)
    return labels, sources


def test_a_source_below_its_floor_or_missing_is_not_blessed():
    labels, sources = _two_sources()
    predicted = labels.copy()
    predicted[900:915] = (labels[900:915] + 1) % 10  # forms: 85% right
    floors = gate.GateConfig(min_class_recall=0.5, source_floors=(("mnist", 0.99), ("forms", 0.9)))
    verdict = gate.bless(floors, labels, predicted, 0.01, 0.9, sources=sources, accepted=ACCEPTED)
    assert verdict["failed"] == ["source_floors"]
    assert verdict["checks"][5]["value"]["forms"] == {"images": 100, "accuracy": 0.85}
    lower = gate.GateConfig(min_class_recall=0.5, source_floors=(("forms", 0.85),))
    assert gate.bless(lower, labels, predicted, 0.01, 0.9, sources=sources, accepted=ACCEPTED)[
        "blessed"
    ]
    missing = gate.GateConfig(min_class_recall=0.5, source_floors=(("scans", 0.5),))
    verdict = gate.bless(missing, labels, predicted, 0.01, 0.9, sources=sources, accepted=ACCEPTED)
    assert verdict["failed"] == ["source_floors"]
    assert verdict["checks"][5]["value"]["missing"] == ["scans"]


def test_a_candidate_that_unlearns_one_source_is_refused_though_better_overall():
    labels, sources = _two_sources()
    baseline = labels.copy()
    baseline[:20] = (labels[:20] + 1) % 10  # the baseline: 20 MNIST digits wrong
    candidate = labels.copy()
    candidate[900:903] = (labels[900:903] + 1) % 10  # the candidate: 3 of the forms wrong
    config = gate.GateConfig(min_class_recall=0.5, max_source_drop=0.02)
    verdict = gate.bless(config, labels, candidate, 0.01, 0.9, baseline, sources, accepted=ACCEPTED)
    assert verdict["failed"] == ["source_non_inferiority"]
    assert verdict["checks"][6]["value"]["forms"] == {
        "images": 100, "candidate_accuracy": 0.97, "baseline_accuracy": 1.0,
    }  # fmt: skip
    looser = gate.GateConfig(min_class_recall=0.5, max_source_drop=0.035)
    assert gate.bless(looser, labels, candidate, 0.01, 0.9, baseline, sources, accepted=ACCEPTED)[
        "blessed"
    ]


def one_image(directory):
    inputs = directory / "in"
    inputs.mkdir()
    Image.fromarray(np.eye(28, dtype=np.uint8) * 255).save(inputs / "stroke.png")
    return inputs


@pytest.fixture(scope="module")
def worse_model(tmp_path_factory, tiny_model, tiny_dataset):
    """The tiny model with its last layer zeroed (every image gets the same probabilities,
    so it says 0 to all: worse than any model that learned anything), calibrated as
    digits train does, then evaluated against the tiny model as the baseline."""
    folder = tmp_path_factory.mktemp("worse") / "model"
    shutil.copytree(tiny_model, folder)
    model = serving.load_model(str(tiny_model))
    model.layers[-1].set_weights([np.zeros_like(w) for w in model.layers[-1].get_weights()])
    model.save(folder / schema.KERAS_FILE)
    # A changed model file needs its own calibration, as digits train fits it.
    config = calibrate.CalibrationConfig(shape_check=shape_check.ShapeCheckConfig(epochs=0))
    calibrate.fit(model, str(folder), str(tiny_dataset), config)
    gate_options = (*TEST_GATE, "--baseline", str(tiny_model))
    return evaluated(folder, tiny_dataset, gate=gate_options)


def test_a_worse_candidate_is_not_blessed_and_the_scorer_refuses_it(
    worse_model, tiny_model, tmp_path, capsys
):
    blessing = json.loads((worse_model / schema.BLESSING_FILE).read_text())
    assert not blessing["blessed"] and blessing["failed"] == ["non_inferiority"]
    (figures,) = [c["value"] for c in blessing["checks"] if c["check"] == "non_inferiority"]
    assert figures["candidate_accuracy"] < figures["baseline_accuracy"] and figures["p"] < 0.05
    assert blessing["baseline"]["model_id"] == serving.model_id(str(tiny_model / schema.KERAS_FILE))
    inputs = one_image(tmp_path)
    assert run_scorer(worse_model, inputs / "*", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "not blessed: failed non_inferiority" in error and "--allow-unblessed" in error
    assert not (tmp_path / "out" / f"dt={DATE}").exists()
    assert run_scorer(worse_model, inputs / "*", tmp_path / "out", allow_unblessed=True) == 0
    summary = json.loads((tmp_path / "out" / f"dt={DATE}" / schema.SUMMARY_FILE).read_text())
    assert summary["blessing"]["allowed_unblessed"] and not summary["blessing"]["blessed"]


def test_a_model_file_swapped_after_blessing_is_refused(worse_model, tiny_model, tmp_path, capsys):
    swapped = tmp_path / "model"
    shutil.copytree(tiny_model, swapped)
    shutil.copy(worse_model / schema.KERAS_FILE, swapped / schema.KERAS_FILE)
    assert run_scorer(swapped, one_image(tmp_path) / "*", tmp_path / "out") == 2
    assert "changed since it was blessed" in capsys.readouterr().err


def test_a_calibration_swapped_after_blessing_is_refused(tiny_model, tmp_path, capsys):
    # The same network with another review threshold (what digits calibrate writes into a
    # new folder) gives other statuses than the gate judged.
    swapped = tmp_path / "model"
    shutil.copytree(tiny_model, swapped)
    calibration = json.loads((swapped / schema.CALIBRATION_FILE).read_text())
    calibration["threshold"] = 0.5
    (swapped / schema.CALIBRATION_FILE).write_text(json.dumps(calibration))
    assert run_scorer(swapped, one_image(tmp_path) / "*", tmp_path / "out") == 2
    assert "calibration.json changed since the model was blessed" in capsys.readouterr().err
    # A blessing written before blessings recorded the calibration still vouches for the file.
    blessing = json.loads((swapped / schema.BLESSING_FILE).read_text())
    del blessing["calibration_sha256"]
    (swapped / schema.BLESSING_FILE).write_text(json.dumps(blessing))
    assert serving.check_blessing(str(swapped))["blessed"]


def test_the_blessed_model_is_scored_and_the_summary_records_the_blessing(tiny_model):
    blessing = json.loads((tiny_model / schema.BLESSING_FILE).read_text())
    assert blessing["blessed"] and blessing["model_sha256"] == serving.files.sha256_file(
        str(tiny_model / schema.KERAS_FILE)
    )
    assert blessing["calibration_sha256"] == serving.files.sha256_file(
        str(tiny_model / schema.CALIBRATION_FILE)
    )
    assert serving.check_blessing(str(tiny_model))["blessed"]


def test_the_gate_refuses_a_model_that_accepts_too_little_or_much_less_than_the_baseline():
    from evaluation.gate import GateConfig, bless

    labels = np.arange(100) % 10
    verdict = lambda accepted: bless(GateConfig(), labels, labels, 0.0, 1.0, accepted=accepted)  # noqa: E731
    assert verdict((0.85, None))["blessed"]
    nothing = verdict((0.0, None))  # a threshold that meets the target nowhere
    assert not nothing["blessed"] and nothing["failed"] == ["accepted_share"]
    assert not verdict((None, None))["blessed"]  # no calibration: nothing is known accepted
    assert not verdict((0.70, 0.85))["blessed"]  # 15 points below the promoted model
    assert verdict((0.82, 0.85))["blessed"]  # within --max-accepted-drop
    assert not bless(
        GateConfig(min_accepted_share=0.9), labels, labels, 0.0, 1.0, accepted=(0.85, None)
    )["blessed"]
