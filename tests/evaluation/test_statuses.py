"""What a team acts on: every prediction's calibrated confidence and status, the review
file, the summary's counts, and the SavedModel giving the same answers as the batch job."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common import schema
from evaluation import suites
from model import screening
from tests.helpers import DATE, _mnist_test_digits, _read_lines, run_scorer

NOT_DIGITS = ("blank", "paper_texture", "noise", "smudge")


@pytest.fixture(scope="module")
def mixed_set(tmp_path_factory, mnist_dataset):
    """30 clean test digits, 3 scans of others, and 3 pages of each of NOT_DIGITS."""
    directory = tmp_path_factory.mktemp("mixed") / "in"
    directory.mkdir()
    digits, labels = _mnist_test_digits(mnist_dataset, 33)
    truth = {}
    for i in range(30):
        Image.fromarray(digits[i]).save(directory / f"digit_{i:02d}.png")
        truth[f"digit_{i:02d}.png"] = int(labels[i])
    for i, jpeg in enumerate(suites.scan(digits[30:], seed=0)):
        (directory / f"scan_{i}.jpg").write_bytes(jpeg)
        truth[f"scan_{i}.jpg"] = int(labels[30 + i])
    for kind in NOT_DIGITS:
        for i, page in enumerate(suites.not_a_digit(kind, 3, digits, seed=0)):
            Image.fromarray(page[..., 0] if page.shape[2] == 1 else page).save(
                directory / f"{kind}_{i}.png"
            )
            truth[f"{kind}_{i}.png"] = None
    return directory, truth


@pytest.fixture(scope="module")
def screened(tmp_path_factory, mnist_model, mixed_set):
    directory, truth = mixed_set
    out = tmp_path_factory.mktemp("screened") / "scores"
    assert run_scorer(mnist_model, directory / "*", out) == 0
    part = out / f"dt={DATE}"
    return {
        "truth": truth,
        "predictions": {Path(p["key"]).name: p for p in _read_lines(part, "predictions")},
        "review": {Path(p["key"]).name: p for p in _read_lines(part, "review")},
        "summary": json.loads((part / schema.SUMMARY_FILE).read_text()),
        "directory": directory,
    }


def test_every_prediction_has_a_calibrated_confidence_status_and_reasons(screened):
    for row in screened["predictions"].values():
        assert 0 <= row["calibrated_confidence"] <= 1
        assert row["status"] in screening.STATUSES
        assert set(row["reasons"]) <= set(screening.REASONS)
        assert (row["status"] == "accepted") == (row["reasons"] == [])
        if row["status"] == "review":  # only the review reasons, never a not-a-digit one
            assert row["reasons"] and set(row["reasons"]) <= {"low_confidence", "unusual_shape"}


def test_pages_without_a_digit_are_not_a_digit_and_digits_mostly_accepted(screened):
    statuses = {name: row["status"] for name, row in screened["predictions"].items()}
    for name, label in screened["truth"].items():
        if label is None:  # a smudge may go to review (the checks pass blurred digits)
            assert statuses[name] != "accepted", name
            if not name.startswith("smudge_"):
                assert statuses[name] == "not_a_digit", name
    scans = [n for n in screened["truth"] if n.startswith("scan_")]
    right = sum(screened["predictions"][n]["digit"] == screened["truth"][n] for n in scans)
    assert right >= 2  # of 3
    digits = [statuses[n] for n in screened["truth"] if n.startswith("digit_")]
    assert Counter(digits)["accepted"] >= 18  # of 30; the 1-epoch model reviews the rest
    assert Counter(digits)["not_a_digit"] <= 1


def test_the_review_file_holds_exactly_what_is_not_accepted(screened):
    expected = {n: r for n, r in screened["predictions"].items() if r["status"] != "accepted"}
    assert screened["review"] == expected
    assert expected  # the not-digits at least


def test_summary_counts_statuses_reasons_and_coverage(screened):
    summary, rows = screened["summary"], screened["predictions"].values()
    assert summary["statuses"] == {
        s: sum(r["status"] == s for r in rows) for s in screening.STATUSES
    }
    assert summary["coverage"] == pytest.approx(
        summary["statuses"]["accepted"] / len(rows), abs=1e-6
    )
    reasons = Counter(reason for r in rows for reason in r["reasons"])
    assert summary["reasons"] == {name: reasons.get(name, 0) for name in screening.REASONS}
    assert sum(summary["calibrated_confidence_histogram"].values()) == len(rows)


def test_the_saved_model_returns_what_the_batch_job_wrote(screened, mnist_model):
    loaded = tf.saved_model.load(str(mnist_model / schema.SAVED_MODEL_DIR))
    names = sorted(screened["predictions"])
    data = [(screened["directory"] / name).read_bytes() for name in names]
    out = loaded.signatures["predict_encoded"](image_bytes=tf.constant(data))
    for i, name in enumerate(names):
        row = screened["predictions"][name]
        assert int(out["digits"][i]) == row["digit"], name
        # JPEG decoders may differ by a level here and there (TensorFlow's and Pillow's)
        tolerance = 1e-4 if name.endswith(".png") else 2e-2
        assert float(out["calibrated_confidence"][i]) == pytest.approx(
            row["calibrated_confidence"], abs=tolerance
        )
        assert out["status"][i].numpy().decode() == row["status"], name
        assert out["reasons"][i].numpy().decode() == ",".join(row["reasons"]), name
    digits = [n for n in names if n.startswith("digit_")][:3]
    pixels = np.stack([np.asarray(Image.open(screened["directory"] / n)) for n in digits])
    assert set(loaded.signatures["serving_default"](images=tf.constant(pixels))) >= {
        "status", "reasons", "calibrated_confidence", "digits", "probabilities",
    }  # fmt: skip


def test_a_model_without_calibration_or_with_a_stale_one_is_refused(
    mnist_model, mixed_set, tmp_path, capsys
):
    model = tmp_path / "model"
    shutil.copytree(mnist_model, model)
    (model / schema.CALIBRATION_FILE).unlink()
    assert run_scorer(model, mixed_set[0] / "*", tmp_path / "out") == 2
    assert "digits train" in capsys.readouterr().err
    shutil.copy(mnist_model / schema.CALIBRATION_FILE, model / schema.CALIBRATION_FILE)
    stale = json.loads((model / schema.CALIBRATION_FILE).read_text())
    stale["model_id"] = "sha256:0000000000000000"
    (model / schema.CALIBRATION_FILE).write_text(json.dumps(stale))
    assert run_scorer(model, mixed_set[0] / "*", tmp_path / "out") == 2
    assert "calibration.json changed since the model was blessed" in capsys.readouterr().err
    assert run_scorer(model, mixed_set[0] / "*", tmp_path / "out", allow_unblessed=True) == 2
    assert "fitted for model sha256:0000000000000000" in capsys.readouterr().err
    assert not (tmp_path / "out" / f"dt={DATE}").exists()


def test_the_not_digits_accepted_are_recorded_and_shown(mnist_model, mnist_dataset):
    # digits evaluate records which not-a-digit images the model accepted (the first few of
    # each kind) and draws them: made again from that record, the model accepts each one
    # and reads the digit recorded.
    from evaluation import robustness
    from model import data, serving

    report = mnist_model.parent / "report"
    result = json.loads((report / "evaluation.json").read_text())["robustness"]
    predictor = serving.Predictor(str(mnist_model))
    test = data.predict_split(serving.load_model(str(mnist_model)), str(mnist_dataset))
    accepted_in_all = 0
    for kind, r in result["not_a_digit"]["per_kind"].items():
        examples = r["accepted_examples"]
        count = round(r["statuses"]["accepted"] * result["not_a_digit"]["count_per_kind"])
        assert len(examples) == min(count, robustness.ACCEPTED_SHOWN), kind
        if examples:
            again = predictor.predict(robustness.accepted_images(test, result, kind))
            assert (again["status"] == screening.ACCEPTED).all(), kind
            assert again["digit"].tolist() == [e["digit"] for e in examples], kind
        accepted_in_all += count
    assert accepted_in_all > 0  # a one-epoch model lets some through: the check above ran
    assert Image.open(report / "not_a_digit_accepted.png").size[0] > 300
    assert "not_a_digit_accepted.png" in (report / "report.md").read_text()
