"""A wrong label in the validation split is put before a person, and a person's
correction (digits preprocess --relabel) reaches the model's calibration."""

from __future__ import annotations

import csv
import json
import shutil

import keras
import numpy as np

from common import schema
from evaluation import label_review
from jobs import preprocess
from model import data
from tests.conftest import evaluated


def test_a_mislabelled_validation_digit_is_listed_first_for_a_person(
    tiny_model, tiny_dataset, tmp_path
):
    # The validation digit the model reads right with the highest confidence, given a
    # wrong label by a "correction": it becomes the most confident disagreement.
    model = keras.models.load_model(tiny_model / schema.KERAS_FILE, compile=False)
    validation = data.predict_split(model, str(tiny_dataset), "validation")
    read = validation.probabilities.argmax(axis=1)
    right = np.flatnonzero(read == validation.labels)
    chosen = right[np.argmax(validation.probabilities.max(axis=1)[right])]
    key, label = validation.keys[chosen], int(validation.labels[chosen])
    wrong = (label + 1) % 10
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(f"key,label,note\n{key},{wrong},a test's deliberate mistake\n")
    relabelled = tmp_path / "data"
    raw = tiny_dataset.parent / "raw"
    preprocess.run(["--source", str(raw), "--output", str(relabelled), "--no-digest-check",
                    "--validation-size", "100", "--num-shards", "2",
                    "--relabel", str(corrections)])  # fmt: skip
    manifest = data.read_manifest(str(relabelled))
    assert manifest["relabelled"]["labels_changed"] == {"train": 0, "validation": 1}

    model_copy = tmp_path / "model"
    shutil.copytree(tiny_model, model_copy)
    evaluated(model_copy, relabelled, suite_size=50, per_kind=5)
    report = tmp_path / "report"
    with open(report / "label_review.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["key"] == key
    assert (int(rows[0]["mnist_label"]), int(rows[0]["read_as"])) == (wrong, label)
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    disagreements = int((read != validation.labels).sum()) + 1
    assert len(rows) == min(label_review.LIMIT, disagreements)
    saved = json.loads((report / "evaluation.json").read_text())
    assert saved["label_review"][0]["key"] == key
    card = (report / "report.md").read_text()
    assert "Validation labels corrected by a person: 1" in card and "label_review.png" in card
