"""Labelled image folders into the dataset (`digits preprocess --labelled DIR`): every file
accounted for, the scorer's own pixels, splits by content, sources, and TFDS."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from common import schema
from jobs import preprocess
from model import images as image_files
from pipeline import labelled
from tests.fakes import encoded, write_labelled_folder, write_tiny_mnist

TINY = ["--no-digest-check", "--validation-size", "10"]


def _preprocess(raw: Path, out: Path, *folders: Path, extra=()) -> dict:
    given = [arg for folder in folders for arg in ("--labelled", str(folder))]
    return preprocess.run(["--source", str(raw), "--output", str(out), *TINY, *given, *extra])


def _records(out: Path) -> dict[bytes, dict]:
    """Every record of the folder, digits and not-a-digit, by key."""
    paths = sorted(str(p) for p in out.glob("*.tfrecord*"))
    found = {}
    for batch in tf.data.TFRecordDataset(paths).batch(1000).map(schema.parse_examples):
        for i, key in enumerate(batch["key"].numpy()):
            found[key] = {name: batch[name].numpy()[i] for name in ("image", "label", "source")}
    return found


def _excluded(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "excluded.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    return write_tiny_mnist(tmp_path_factory.mktemp("raw"), train=60, test=20)


@pytest.fixture(scope="module")
def forms(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """A labelled folder with one of each kind of trouble besides its good images."""
    folder = tmp_path_factory.mktemp("labelled") / "forms"
    written = write_labelled_folder(folder)
    shutil.copy(folder / "3/7-3.png", folder / "3/copy.png")  # a duplicate
    shutil.copy(folder / "4/7-4.png", folder / "5/conflict.png")  # the same image as a 5
    (folder / "7/broken.png").write_bytes(b"not an image at all")
    (folder / "stray.png").write_bytes((folder / "1/7-1.png").read_bytes())  # no class
    (folder / "notes").mkdir()
    (folder / "notes/todo.txt").write_text("relabel the 9s")
    return folder, written


@pytest.fixture(scope="module")
def with_forms(raw, forms, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("with_forms") / "data"
    return out, _preprocess(raw, out, forms[0])


def test_every_file_is_a_record_or_excluded_with_its_reason(forms, with_forms):
    folder, written = forms
    out, manifest = with_forms
    reasons = {Path(row["path"]).relative_to(folder).as_posix(): row for row in _excluded(out)}
    assert {path: row["reason"] for path, row in reasons.items()} == {
        "3/copy.png": "duplicate",
        "4/7-4.png": "conflict",
        "5/conflict.png": "conflict",
        "7/broken.png": "unreadable",
        "stray.png": "misplaced",
        "notes/todo.txt": "misplaced",
    }
    assert "not a PNG or JPEG" in reasons["7/broken.png"]["detail"]
    assert "says 4" in reasons["5/conflict.png"]["detail"]
    assert "says 5" in reasons["5/conflict.png"]["detail"]
    account = manifest["labelled"]["forms"]
    negatives = sum(1 for label in written.values() if label == schema.NOT_A_DIGIT)
    digits = len(written) - negatives - 1  # 4/7-4.png is in conflict
    assert account["records"] == digits and account["not_a_digit"] == negatives
    assert account["files"] == len(written) + 5  # answers.jsonl is the review page's, not data
    assert account["excluded"] == {"conflict": 2, "duplicate": 1, "misplaced": 2, "unreadable": 1}
    records = _records(out)
    ours = {key: r for key, r in records.items() if r["source"] == b"forms"}
    assert len(ours) == digits + negatives
    assert sum(1 for r in records.values() if r["source"] == b"mnist") == 80


def test_a_record_holds_the_pixels_the_scorer_shows_the_model(forms, with_forms):
    folder, written = forms
    records = _records(with_forms[0])
    for relative, label in list(written.items())[:12]:
        if relative == "4/7-4.png":
            continue
        data = (folder / relative).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        record = records[schema.labelled_key("forms", digest)]
        expected = image_files.to_mnist_pixels(image_files.decode(data))
        np.testing.assert_array_equal(np.round(record["image"][..., 0] * 255), expected)
        assert record["label"] == label


def test_splits_follow_each_image_and_stay_put_as_the_folder_grows(raw, forms, tmp_path):
    folder, _ = forms
    grown = tmp_path / "forms"
    shutil.copytree(folder, grown)
    write_labelled_folder(grown, count=60, seed=8, negatives=3)
    before = _preprocess(raw, tmp_path / "before", folder)
    after = _preprocess(raw, tmp_path / "after", grown)
    assert after["labelled"]["forms"]["records"] > before["labelled"]["forms"]["records"]

    def split_of_each(out: Path, manifest: dict) -> dict[bytes, str]:
        splits = {}
        for split in schema.SPLITS:
            paths = [str(out / s["file"]) for s in manifest["splits"][split]["shards"]]
            if split in manifest["not_a_digit"]:
                paths.append(str(out / manifest["not_a_digit"][split]["file"]))
            for batch in tf.data.TFRecordDataset(paths).batch(1000).map(schema.parse_examples):
                splits.update(dict.fromkeys(batch["key"].numpy().tolist(), split))
        return splits

    old = split_of_each(tmp_path / "before", before)
    new = split_of_each(tmp_path / "after", after)
    assert {key: new[key] for key in old} == old
    labelled_splits = [s for k, s in new.items() if not k.startswith((b"train-", b"test-"))]
    assert set(labelled_splits) == set(schema.SPLITS)  # 100 images: every split gets some


def test_the_first_folder_keeps_a_duplicate_and_sources_are_counted(raw, forms, tmp_path):
    folder, written = forms
    scans = tmp_path / "scans"
    (scans / "3").mkdir(parents=True)
    shutil.copy(folder / "3/7-3.png", scans / "3/same.png")
    (scans / "8").mkdir()
    (scans / "8/own.png").write_bytes(encoded(np.eye(40, dtype=np.uint8) * 255))
    manifest = _preprocess(raw, tmp_path / "data", folder, scans)
    assert manifest["labelled"]["scans"]["records"] == 1
    assert manifest["labelled"]["scans"]["excluded"] == {"duplicate": 1}
    per_source = {
        source: sum(s["records"] for s in splits.values())
        for source, splits in manifest["by_source"].items()
    }
    assert per_source["mnist"] == 80 and per_source["scans"] == 1
    assert (
        per_source["forms"]
        == manifest["labelled"]["forms"]["records"] + manifest["labelled"]["forms"]["not_a_digit"]
    )


def test_the_output_loads_with_tfds_and_carries_the_source(with_forms):
    import tensorflow_datasets as tfds

    out, manifest = with_forms
    builder = tfds.builder_from_directory(str(out))
    assert set(builder.info.splits) == set(schema.SPLITS)
    train = list(builder.as_dataset(split="train"))
    assert len(train) == manifest["splits"]["train"]["records"]
    sources = {example["source"].numpy() for example in train}
    assert sources == {b"mnist", b"forms"}
    assert all(int(example["label"]) < schema.NUM_CLASSES for example in train)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda tmp: tmp / "mnist", "not 'mnist'"),
        (lambda tmp: tmp / "empty", "no files there"),
        (lambda tmp: tmp / "my forms", "letters, digits"),
    ],
)
def test_a_folder_that_cannot_be_a_source_is_refused_by_name(raw, tmp_path, capsys, make, expected):
    folder = make(tmp_path)
    folder.mkdir()
    if folder.name != "empty":
        write_labelled_folder(folder, count=3, negatives=0)
    argv = ["--source", str(raw), "--output", str(tmp_path / "out"), *TINY]
    assert preprocess.main([*argv, "--labelled", str(folder)]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and expected in err
    assert not (tmp_path / "out").exists()


def test_two_folders_of_one_name_and_bad_split_percentages_are_refused(raw, tmp_path, capsys):
    for parent in ("a", "b"):
        write_labelled_folder(tmp_path / parent / "forms", count=3, negatives=0)
    argv = ["--source", str(raw), "--output", str(tmp_path / "out"), *TINY]
    twice = ["--labelled", str(tmp_path / "a/forms"), "--labelled", str(tmp_path / "b/forms")]
    assert preprocess.main([*argv, *twice]) == 2
    assert "the same name 'forms'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse's own refusal, exit status 2
        preprocess.main([*argv, "--labelled-split", "80/10/20"])
    assert refused.value.code == 2 and "add up to 100" in capsys.readouterr().err


def test_split_of_is_a_function_of_the_digest_alone():
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    splits = [labelled.split_of(d, (80, 10, 10)) for d in digests]
    shares = {s: splits.count(s) / len(splits) for s in schema.SPLITS}
    assert shares["train"] == pytest.approx(0.8, abs=0.05)
    assert splits == [labelled.split_of(d, (80, 10, 10)) for d in digests]
