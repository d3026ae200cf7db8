"""Labelled image folders -> records beside MNIST's (`digits preprocess --labelled DIR`).

A labelled folder has one folder per class, as Keras' `image_dataset_from_directory`,
TFDS' `ImageFolder` and the review page (`digits review`) lay them out:

    DIR/0/ ... DIR/9/      images of that digit (PNG or JPEG, any size)
    DIR/not_a_digit/       images that are no digit at all
    DIR/answers.jsonl      the review page's log (read by nobody here, left alone)

    ListLabelled (before the pipeline) >> ReadLabelled >> Deduplicate >> (the split's shards)

Every file is accounted for: it becomes a record, or a line of `excluded.jsonl` saying
why not (`misplaced`: not inside a class folder; `unreadable`: not a PNG or JPEG, or
broken, with the decoder's reason; `duplicate`: the same bytes once more, in any folder;
`conflict`: the same bytes given two different classes, all copies left out).

Each image goes through the scorer's own normalisation (model.images: decode, EXIF
orientation, model.digit_image.normalise_digit), so a record holds exactly the 28x28
pixels the scorer showed the model. Its split comes from a stable hash of its bytes: the
same image lands in the same split on every run, however the folder grows. Its `source`
is the folder's name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from common import files, schema
from model import images as image_files

CLASS_FOLDERS = {
    **{str(d): d for d in range(schema.NUM_CLASSES)},
    "not_a_digit": schema.NOT_A_DIGIT,
}
IGNORED = ("answers.jsonl", ".lock")  # the review page's log and lock (review/answers.py)
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_SPLIT = (80, 10, 10)  # percent of a folder's images in train, validation, test


class LabelledError(ValueError):
    pass


@dataclass(frozen=True)
class LabelledFile:
    source: str
    order: int  # the folder's place among --labelled: the first copy of a duplicate wins
    path: str
    label: int  # 0-9, or schema.NOT_A_DIGIT


@dataclass(frozen=True)
class LabelledImage:
    file: LabelledFile
    sha256: str
    pixels: np.ndarray  # uint8 [28, 28], as the scorer sees it


def source_name(folder: str) -> str:
    """A folder's source name: its base name, which must be a plain name and not `mnist`."""
    name = files.base_name(folder.rstrip("/"))
    if not SOURCE_NAME.match(name) or name == schema.MNIST_SOURCE:
        raise LabelledError(
            f"--labelled {folder}: its name {name!r} becomes the records' source, so it must "
            "be letters, digits, '.', '_' or '-' (at most 64) and not 'mnist'; rename the folder"
        )
    return name


def list_labelled(folders: tuple[str, ...]) -> tuple[list[LabelledFile], list[dict]]:
    """Every file of every folder: the candidates, and the misplaced ones (as excluded rows)."""
    candidates, misplaced, names = [], [], {}
    for order, folder in enumerate(folders):
        name = source_name(folder)
        if name in names:
            raise LabelledError(
                f"--labelled {folder} and {names[name]} have the same name {name!r}, which "
                "names the records' source; rename one of them"
            )
        names[name] = folder
        listed = files.list_tree(folder)
        if not listed:
            raise LabelledError(
                f"--labelled {folder}: no files there; give a folder with 0/ ... 9/ and "
                "not_a_digit/ inside"
            )
        for relative in listed:
            path = files.join(folder, relative)
            parts = relative.split("/")
            if relative in IGNORED:
                continue
            if len(parts) == 2 and parts[0] in CLASS_FOLDERS:
                candidates.append(LabelledFile(name, order, path, CLASS_FOLDERS[parts[0]]))
            else:
                misplaced.append(
                    excluded(
                        name,
                        path,
                        "misplaced",
                        "not directly inside a class folder (0/ ... 9/ or not_a_digit/)",
                    )
                )
    return candidates, misplaced


def excluded(source: str, path: str, reason: str, detail: str, sha256: str = "") -> dict:
    return {"source": source, "path": path, "reason": reason, "detail": detail, "sha256": sha256}


def split_of(sha256: str, percent: tuple[int, int, int]) -> str:
    """The split an image's digest falls in: stable, and independent of every other image."""
    bucket = int(sha256[:8], 16) % 100
    train, validation, _ = percent
    if bucket < train:
        return "train"
    return "validation" if bucket < train + validation else "test"


def shard_of(sha256: str, num_shards: int) -> int:
    return int(sha256[8:16], 16) % num_shards


class _ReadLabelledFn(beam.DoFn):
    EXCLUDED = "excluded"

    def __init__(self):
        self.read = Metrics.counter("ReadLabelled", "images")
        self.unreadable = Metrics.counter("ReadLabelled", "unreadable")

    def process(self, file: LabelledFile):
        data = files.read_bytes(file.path)
        digest = hashlib.sha256(data).hexdigest()
        try:
            pixels = image_files.to_mnist_pixels(image_files.decode(data))
        except image_files.Rejected as error:
            self.unreadable.inc()
            row = excluded(file.source, file.path, "unreadable", str(error), digest)
            yield beam.pvalue.TaggedOutput(self.EXCLUDED, row)
            return
        self.read.inc()
        yield digest, LabelledImage(file, digest, pixels)


class ReadLabelled(beam.PTransform):
    """LabelledFiles -> (sha256, LabelledImage), and excluded rows for unreadable files."""

    def expand(self, labelled_files):
        outputs = (
            labelled_files
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadAndNormalise"
            >> beam.ParDo(_ReadLabelledFn()).with_outputs(_ReadLabelledFn.EXCLUDED, main="images")
        )
        return outputs.images, outputs[_ReadLabelledFn.EXCLUDED]


def _resolve(item):
    """All copies of one image: the first (by folder order, then path) is kept when they
    agree on the class; they are all left out when they do not."""
    digest, copies = item
    copies = sorted(copies, key=lambda image: (image.file.order, image.file.path))
    labels = sorted({image.file.label for image in copies})
    if len(labels) > 1:
        given = ", ".join(f"{c.file.path} says {_class_name(c.file.label)}" for c in copies)
        for copy in copies:
            row = excluded(copy.file.source, copy.file.path, "conflict", given, digest)
            yield beam.pvalue.TaggedOutput(_ReadLabelledFn.EXCLUDED, row)
        return
    first, *others = copies
    for copy in others:
        detail = f"the same bytes as {first.file.path}, which is kept"
        row = excluded(copy.file.source, copy.file.path, "duplicate", detail, digest)
        yield beam.pvalue.TaggedOutput(_ReadLabelledFn.EXCLUDED, row)
    yield first


def _class_name(label: int) -> str:
    return "not_a_digit" if label == schema.NOT_A_DIGIT else str(label)


class Deduplicate(beam.PTransform):
    """(sha256, LabelledImage) -> one LabelledImage per distinct image, and excluded rows."""

    def expand(self, keyed):
        outputs = (
            keyed
            | "GroupCopies" >> beam.GroupByKey()
            | "Resolve"
            >> beam.FlatMap(_resolve).with_outputs(_ReadLabelledFn.EXCLUDED, main="kept")
        )
        return outputs.kept, outputs[_ReadLabelledFn.EXCLUDED]


def destination(image: LabelledImage, percent: tuple[int, int, int], shards: dict[str, int]):
    """(the file an image goes to, (its split, the image)): a digit joins one of its
    split's shards; a not-a-digit image goes to its split's not_a_digit file."""
    split = split_of(image.sha256, percent)
    if image.file.label == schema.NOT_A_DIGIT:
        return schema.not_a_digit_file_name(split), (split, image)
    shard = shard_of(image.sha256, shards[split])
    return schema.shard_file_name(split, shard, shards[split]), (split, image)


def account(folders: tuple[str, ...], listed: dict[str, int], by_source: dict, rows) -> dict:
    """Per folder: files listed = digit records + not-a-digit records + files left out
    (by reason); anything else stops the job, as a file would otherwise be lost silently."""
    excluded_by = {}
    for line in rows:
        row = json.loads(line)
        reasons = excluded_by.setdefault(row["source"], {})
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    accounts = {}
    for folder in folders:
        name = source_name(folder)
        splits = by_source.get(name, {})
        negatives = sum(s["not_a_digit"] for s in splits.values())
        digits = sum(s["records"] for s in splits.values()) - negatives
        left_out = excluded_by.get(name, {})
        if digits + negatives + sum(left_out.values()) != listed.get(name, 0):
            raise RuntimeError(
                f"--labelled {folder}: {listed.get(name, 0)} files listed, but {digits} "
                f"digits, {negatives} not a digit and {left_out} left out were accounted for"
            )
        accounts[name] = {
            "folder": folder,
            "files": listed.get(name, 0),
            "records": digits,
            "not_a_digit": negatives,
            "excluded": dict(sorted(left_out.items())),
            "splits": splits,
        }
    return accounts
