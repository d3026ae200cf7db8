"""Label corrections: MNIST training digits whose label a person found wrong.

    digits preprocess --output out/data --relabel corrections.csv

A CSV file (local or gs://) with the header `key,label,note`: the record key of an MNIST
training digit (`train-59915`, as predictions, reports and the TFRecords name it), the
label a person reads in it (0-9), and why (free text, may be empty). Every listed digit
gets that label in the split it falls in (train or validation); the manifest records the
file's SHA-256 and how many labels it changed in each split.

Why: the review threshold is fitted on the validation split and its 95% bound counts every
validation digit the model reads differently from its label as an error. A handful of
MNIST's labels are wrong, and a good model reads those digits confidently as what they
are: four of them among 10,000 validation digits can take ten points off the share of
digits accepted without a person. Test digits are never relabelled: the test split is the
judge, and its labels stay MNIST's. Since those hold the same kind of noise, corrected
validation labels let the threshold accept more than MNIST's test labels confirm, so the
jobs never apply corrections unless asked (docs/calibration.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, replace

import numpy as np

from common import files, schema

HEADER = ("key", "label", "note")
SOURCE_SPLIT = "train"  # the only source file whose labels may be corrected


class RelabelError(ValueError):
    """A corrections file that cannot be applied as it is (the message says where)."""


@dataclass(frozen=True)
class Corrections:
    path: str
    sha256: str
    labels: dict[bytes, int]  # record key -> corrected label

    def per_split(self, validation_start: int) -> dict[str, int]:
        """How many corrections fall in train and validation (validation: the training
        file's images from `validation_start` on)."""
        indices = [int(key.decode().split("-")[1]) for key in self.labels]
        in_validation = sum(i >= validation_start for i in indices)
        return {"train": len(indices) - in_validation, "validation": in_validation}

    def record(self, validation_start: int) -> dict:
        """What the manifest says of the corrections."""
        return {
            "file": self.path,
            "sha256": self.sha256,
            "labels_changed": self.per_split(validation_start),
        }


def read(path: str, train_count: int) -> Corrections:
    """The corrections in `path`, checked against a training file of `train_count` images."""
    if not files.exists(path):
        raise RelabelError(f"--relabel {path}: no such file")
    raw = files.read_bytes(path)
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    if not rows or tuple(cell.strip() for cell in rows[0][:2]) != HEADER[:2]:
        raise RelabelError(
            f"{path}: the first line must be the header {','.join(HEADER)} (note optional)"
        )
    labels: dict[bytes, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        key, label = _checked(path, line, row, train_count)
        if key in labels:
            raise RelabelError(f"{path}, line {line}: {key.decode()} is listed twice")
        labels[key] = label
    return Corrections(path, hashlib.sha256(raw).hexdigest(), labels)


def _checked(path: str, line: int, row: list[str], train_count: int) -> tuple[bytes, int]:
    where = f"{path}, line {line}"
    if len(row) < 2:
        raise RelabelError(f"{where}: expected key,label[,note], got {','.join(row)!r}")
    key, label = row[0].strip(), row[1].strip()
    split, _, index = key.partition("-")
    if split == "test":
        raise RelabelError(
            f"{where}: {key} is a test digit; the test split is the judge and its labels "
            "are never changed (list training digits only: train-NNNNN)"
        )
    if split != SOURCE_SPLIT or not index.isdigit() or len(index) != 5:
        raise RelabelError(f"{where}: {key!r} is not an MNIST training digit's key (train-NNNNN)")
    if int(index) >= train_count:
        raise RelabelError(
            f"{where}: {key} is past the training file's {train_count} images (keys count from "
            "train-00000)"
        )
    if label not in {str(d) for d in range(schema.NUM_CLASSES)}:
        raise RelabelError(f"{where}: label {label!r} for {key}: expected a digit 0-9")
    return schema.make_key(SOURCE_SPLIT, int(index)), int(label)


def apply(records, corrections: Corrections):
    """A pipeline.transforms.Records with the corrected labels (the same object when none
    of its keys is listed)."""
    changed = [i for i, key in enumerate(records.keys) if key in corrections.labels]
    if not changed:
        return records
    labels = np.array(records.labels, copy=True)
    for i in changed:
        labels[i] = corrections.labels[records.keys[i]]
    return replace(records, labels=labels)
