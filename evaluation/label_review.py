"""The validation digits a person should look at before trusting the review threshold:
those the model reads, most confidently, as another digit than their MNIST label.

    rows = label_review.candidates(validation, temperature, ranking)
    label_review.write(folder, validation, rows, plot_digits)  # label_review.csv, .png

The review threshold's 95% bound counts each of them as a confident error, so the first
few decide how many digits the scorer may accept without a person. Some are the model's
misreadings; others are MNIST's own mislabelled digits. Only a person can tell which: the
ones they find mislabelled go into a corrections file for `digits preprocess --relabel`
(docs/data.md). This list is never applied by itself, and the model only puts it in order.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from common import schema
from model import calibration
from model.data import Split

LIMIT = 30  # rows: well past the handful that decides the threshold
CSV_FILE = "label_review.csv"
PICTURE_FILE = "label_review.png"
COLUMNS = ("key", "mnist_label", "read_as", "confidence", "score", "rank")


def candidates(
    validation: Split, temperature: float, ranking: str, limit: int = LIMIT
) -> list[dict]:
    """MNIST validation digits read as another digit, the highest `ranking` score
    (model.calibration.RANKINGS) first; `rank`: how many validation digits score at least
    as high (where it falls in the order the threshold is chosen in)."""
    probabilities = calibration.scale(validation.probabilities, temperature)
    read, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
    score = calibration.ranking_score(probabilities, ranking)
    mnist = validation.sources == schema.MNIST_SOURCE  # labelled folders are fixed in place
    wrong = np.flatnonzero((read != validation.labels) & mnist)
    chosen = wrong[np.argsort(-score[wrong], kind="stable")][:limit]
    ordered = np.sort(score)
    return [
        {
            "key": validation.keys[i],
            "mnist_label": int(validation.labels[i]),
            "read_as": int(read[i]),
            "confidence": round(float(confidence[i]), 6),
            "score": round(float(score[i]), 6),
            "rank": int(len(ordered) - np.searchsorted(ordered, score[i], side="left")),
        }
        for i in chosen
    ]


def write(folder: str, validation: Split, rows: list[dict], plot_digits) -> None:
    """label_review.csv (COLUMNS, one row per digit) and label_review.png (the digits, each
    captioned label→read) into a local folder."""
    with open(os.path.join(folder, CSV_FILE), "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    index = {key: i for i, key in enumerate(validation.keys)}
    picked = [index[row["key"]] for row in rows]
    plot_digits(
        validation.images[picked],
        [f"{row['mnist_label']}→{row['read_as']} #{row['rank']}" for row in rows],
        os.path.join(folder, PICTURE_FILE),
        "Validation digits read as another digit than their label, most confident first "
        "(label→read #rank); a person decides which labels are wrong",
    )
