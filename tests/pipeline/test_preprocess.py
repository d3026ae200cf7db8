"""The preprocessing job: bad input, the Beam transforms, reruns, kills, and real MNIST."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from common import schema
from jobs import preprocess
from pipeline import idx, output, relabel, sources
from pipeline.preprocess import PreprocessConfig
from pipeline.transforms import Normalise, ReadIdx, ShardPlan, SplitSource, ToExamples
from tests.conftest import REPO, kill_job_when
from tests.fakes import digit_like_images, write_idx

TINY = ["--no-digest-check", "--validation-size", "10"]


def _run_main(argv, capsys):
    code = preprocess.main(argv)
    return code, capsys.readouterr().err


def _read_split(out, split):
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    files = [str(out / s["file"]) for s in manifest["splits"][split]["shards"]]
    batches = tf.data.TFRecordDataset(files).batch(10_000).map(schema.parse_examples)
    return {k: np.concatenate([b[k].numpy() for b in batches]) for k in ("image", "label", "key")}


# --- Bad input: each case is an error that names the file and what is wrong. -------------


def _gz_bytes(path):
    return gzip.decompress(path.read_bytes())


def _rewrite(path, payload: bytes):
    path.write_bytes(gzip.compress(payload))


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("truncated_gzip", "damaged gzip data"),
        ("wrong_magic", "magic number 2049, expected 2051"),
        ("mismatched_counts", "holds 40 images but"),
        ("bad_length", "the file is truncated or has trailing data"),
        ("label_10", "labels outside 0-9, the first is 10 at index 3"),
        ("missing_file", "missing train-labels-idx1-ubyte.gz"),
    ],
)
def test_bad_raw_files_fail_with_a_message_naming_the_file(
    tiny_mnist, tmp_path, capsys, damage, expected
):
    images = tiny_mnist / "train-images-idx3-ubyte.gz"
    labels = tiny_mnist / "train-labels-idx1-ubyte.gz"
    damaged = labels
    if damage == "truncated_gzip":
        images.write_bytes(images.read_bytes()[:-200])
        damaged = images
    elif damage == "wrong_magic":
        _rewrite(images, _gz_bytes(labels))
        damaged = images
    elif damage == "mismatched_counts":
        _, fewer = digit_like_images(39)
        write_idx(str(labels), fewer)
        damaged = images
    elif damage == "bad_length":
        _rewrite(images, _gz_bytes(images)[:-5])
        damaged = images
    elif damage == "label_10":
        data = bytearray(_gz_bytes(labels))
        data[8 + 3] = 10
        _rewrite(labels, bytes(data))
    elif damage == "missing_file":
        labels.unlink()
    out = tmp_path / "out"
    code, err = _run_main(["--source", str(tiny_mnist), "--output", str(out), *TINY], capsys)
    assert code != 0
    assert expected in err
    assert damaged.name in err
    assert not (out / schema.MANIFEST_FILE).exists()


def test_wrong_digest_is_refused_unless_checks_are_off(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--source", str(tiny_mnist), "--output", str(out), "--validation-size", "10"]
    code, err = _run_main(argv, capsys)
    assert code != 0
    # The first file of the pair checked is named (the labels: they are read first).
    assert re.search(r"train-(labels-idx1|images-idx3)-ubyte\.gz: MD5 of the uncompressed", err)
    assert "--no-digest-check" in err
    code, _ = _run_main(["--source", str(tiny_mnist), "--output", str(out), *TINY], capsys)
    assert code == 0


def test_bad_configuration_names_the_flag(tiny_mnist, tmp_path, capsys):
    base = ["--source", str(tiny_mnist), "--output", str(tmp_path / "o"), "--no-digest-check"]
    code, err = _run_main([*base, "--validation-size", "40"], capsys)
    assert code == 2 and "--validation-size 40 must be between 1 and 39" in err
    code, err = _run_main([*base, "--validation-size", "5", "--num-shards", "6"], capsys)
    assert code == 2 and "--num-shards 6 is more than the 5 records" in err


# --- The transforms, on tiny in-memory inputs. -------------------------------------------


def test_read_normalise_and_serialise_transforms(tiny_mnist):
    images, labels = digit_like_images(40, seed=1)
    plans = (
        ShardPlan("train", 0, 2, 0, 15),
        ShardPlan("train", 1, 2, 15, 30),
        ShardPlan("validation", 0, 1, 30, 40),
    )
    source = SplitSource(
        "train",
        str(tiny_mnist / "train-images-idx3-ubyte.gz"),
        str(tiny_mnist / "train-labels-idx1-ubyte.gz"),
        None,
        plans,
    )
    with TestPipeline() as p:
        blocks, digests = p | beam.Create([source]) | ReadIdx()
        normalised = blocks | Normalise()
        assert_that(
            normalised | beam.Map(lambda b: (b.file_name, len(b.labels), float(b.images.max()))),
            equal_to(
                [
                    ("mnist-train.tfrecord-00000-of-00002", 15, 1.0),
                    ("mnist-train.tfrecord-00001-of-00002", 15, 1.0),
                    ("mnist-validation.tfrecord-00000-of-00001", 10, 1.0),
                ]
            ),
            label="ShardSizes",
        )
        parsed = (
            normalised
            | ToExamples()
            | beam.FlatMap(lambda shard: _unframe(shard[1]))
            | beam.Map(_summarise_record)
        )
        expected = [
            (f"train-{i:05d}", int(labels[i]), round(float(images[i].sum() / np.float32(255)), 3))
            for i in range(40)
        ]
        assert_that(parsed, equal_to(expected), label="Records")
        assert_that(digests | beam.Map(len), equal_to([2]), label="Digests")


def _summarise_record(record: bytes):
    feature = tf.train.Example.FromString(record).features.feature
    return (
        feature["key"].bytes_list.value[0].decode(),
        feature["label"].int64_list.value[0],
        round(sum(feature["image"].float_list.value), 3),
    )


def _unframe(data: bytes):
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 8], "little")
        yield data[offset + 12 : offset + 12 + length]
        offset += 16 + length


# --- Output folder: reruns, kills, foreign folders. ----------------------------------------


def test_rerun_with_another_shard_count_replaces_the_output_whole(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    base = ["--source", str(tiny_mnist), "--output", str(out), *TINY]
    preprocess.run([*base, "--num-shards", "3"])
    assert len(list(out.glob("mnist-train.tfrecord-*"))) == 3
    preprocess.run([*base, "--num-shards", "2"])
    shards = sorted(p.name for p in out.glob("mnist-*.tfrecord-*"))
    assert shards == [
        "mnist-test.tfrecord-00000-of-00002",
        "mnist-test.tfrecord-00001-of-00002",
        "mnist-train.tfrecord-00000-of-00002",
        "mnist-train.tfrecord-00001-of-00002",
        "mnist-validation.tfrecord-00000-of-00002",
        "mnist-validation.tfrecord-00001-of-00002",
    ]
    assert not [p for p in out.iterdir() if "temp" in p.name]
    assert _read_split(out, "train")["label"].size == 30


def test_relabel_corrects_the_listed_training_digits_and_the_manifest_says_so(tiny_mnist, tmp_path):
    # 40 training digits: train-00000..29 in train, train-00030..39 in validation.
    _, labels = digit_like_images(40, seed=1)
    corrections = tmp_path / "corrections.csv"
    wanted = {3: (labels[3] + 1) % 10, 35: (labels[35] + 2) % 10}
    corrections.write_text(
        "key,label,note\n"
        f"train-00003,{wanted[3]},looks like a {wanted[3]}\n"
        f"train-00035,{wanted[35]},\n"
    )
    out = tmp_path / "out"
    preprocess.run(["--source", str(tiny_mnist), "--output", str(out), *TINY,
                    "--relabel", str(corrections)])  # fmt: skip
    for split in ("train", "validation"):
        read = _read_split(out, split)
        for key, label in zip(read["key"], read["label"], strict=True):
            index = int(key.decode().split("-")[1])
            assert label == wanted.get(index, labels[index]), key
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    assert manifest["relabelled"]["labels_changed"] == {"train": 1, "validation": 1}
    assert manifest["relabelled"]["sha256"] == hashlib.sha256(corrections.read_bytes()).hexdigest()
    per_label = np.bincount([wanted.get(i, labels[i]) for i in range(30)], minlength=10)
    assert manifest["splits"]["train"]["labels"] == per_label.tolist()


def test_the_projects_own_corrections_are_mnist_validation_digits():
    corrections = relabel.read(str(REPO / "docs" / "mnist-relabel.csv"), 60_000)
    start = 60_000 - PreprocessConfig.validation_size  # the default split's
    assert corrections.per_split(validation_start=start) == {"train": 0, "validation": 4}


@pytest.mark.parametrize(
    "rows, expected",
    [
        ("train-00003,7,\ntest-00001,3,", "line 3: test-00001 is a test digit"),
        ("train-00040,7,", "line 2: train-00040 is past the training file's 40 images"),
        ("train-00003,seven,", "line 2: label 'seven' for train-00003: expected a digit"),
        ("train-3,7,", "line 2: 'train-3' is not an MNIST training digit's key"),
        ("train-00003,7,\ntrain-00003,1,", "line 3: train-00003 is listed twice"),
    ],
)
def test_relabel_refuses_a_bad_corrections_file_naming_the_line(
    tiny_mnist, tmp_path, capsys, rows, expected
):
    corrections = tmp_path / "c.csv"
    corrections.write_text("key,label,note\n" + rows + "\n")
    out = tmp_path / "out"
    argv = ["--source", str(tiny_mnist), "--output", str(out), *TINY, "--relabel", str(corrections)]
    code, err = _run_main(argv, capsys)
    assert code == 2 and f"{corrections}, {expected}" in err
    assert not out.exists()  # refused before anything is written


def test_refuses_to_replace_a_folder_that_is_not_its_own(tiny_mnist, tmp_path, capsys):
    precious = tmp_path / "home"
    (precious / "photos").mkdir(parents=True)
    (precious / "photos" / "cat.jpg").write_bytes(b"meow")
    code, err = _run_main(["--source", str(tiny_mnist), "--output", str(precious), *TINY], capsys)
    assert code == 2 and "refusing to replace it" in err
    assert (precious / "photos" / "cat.jpg").read_bytes() == b"meow"


def test_killed_run_leaves_no_complete_looking_output_and_a_rerun_just_works(mnist_dir, tmp_path):
    out = tmp_path / "out"
    argv = ["jobs.preprocess", "--source", str(mnist_dir), "--output", str(out)]
    # Killed once it has started writing shards.
    kill_job_when(argv, lambda: any(out.glob(".beam-temp/*")), timeout=60)
    assert (out / output.MARKER_FILE).exists()
    assert not (out / schema.MANIFEST_FILE).exists()
    manifest = preprocess.run(argv[1:])
    assert manifest["splits"]["test"]["records"] == 10_000


def test_multi_processing_runner(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    preprocess.run(
        [
            "--source",
            str(tiny_mnist),
            "--output",
            str(out),
            *TINY,
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ]
    )
    assert _read_split(out, "test")["label"].tolist() == digit_like_images(20, 2)[1].tolist()


def test_gzip_output_is_readable_and_described(tiny_mnist, tmp_path):
    out = tmp_path / "out"
    manifest = preprocess.run(
        ["--source", str(tiny_mnist), "--output", str(out), *TINY, "--compression", "gzip"]
    )
    files = [str(out / s["file"]) for s in manifest["splits"]["train"]["shards"]]
    count = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    assert count == manifest["splits"]["train"]["records"] == 30


# --- Where the raw files come from. ---------------------------------------------------------


def test_download_goes_through_the_mirror_into_the_cache(tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("DIGITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_MIRROR", tiny_mnist.as_uri())
    assert sources.locate(None) == str(tmp_path / "cache")
    assert sorted(os.listdir(tmp_path / "cache")) == sorted(idx.MNIST_FILE_NAMES)
    monkeypatch.setenv("MNIST_MIRROR", "file:///nonexistent")
    assert sources.locate(None) == str(tmp_path / "cache")  # the cache answers, no download


def test_no_files_and_no_network_names_source_and_mnist_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("DIGITS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MNIST_MIRROR", (tmp_path / "no-mirror").as_uri())
    with pytest.raises(sources.SourceNotFound) as error:
        sources.locate(None)
    assert "--source" in str(error.value) and "MNIST_DIR" in str(error.value)


def test_mnist_dir_is_used_and_checked(tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tiny_mnist))
    assert sources.locate(None) == str(tiny_mnist)
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    with pytest.raises(sources.SourceNotFound, match="MNIST_DIR="):
        sources.locate(None)


# --- End to end on the real MNIST files. ---------------------------------------------------


def test_real_mnist_end_to_end(mnist_dataset):
    manifest = json.loads((mnist_dataset / schema.MANIFEST_FILE).read_text())
    counts = {split: manifest["splits"][split]["records"] for split in schema.SPLITS}
    assert counts == {"train": 44_000, "validation": 16_000, "test": 10_000}
    assert manifest["splits"]["test"]["labels"] == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    train_labels = np.add(
        manifest["splits"]["train"]["labels"], manifest["splits"]["validation"]["labels"]
    )
    assert train_labels.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert sorted(manifest["sources"].values()) == sorted(
        f.md5 for pair in idx.MNIST_FILES.values() for f in pair
    )

    test = _read_split(mnist_dataset, "test")
    assert test["label"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert test["key"][0] == b"test-00000" and len(set(test["key"].tolist())) == 10_000
    train = _read_split(mnist_dataset, "train")
    assert train["label"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert train["image"].min() == 0.0 and train["image"].max() == 1.0
    validation = _read_split(mnist_dataset, "validation")
    assert validation["key"][0] == b"train-44000"
    pixels = np.concatenate([train["image"], validation["image"]])
    assert pixels.mean() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std() == pytest.approx(0.3081, abs=1e-4)


def test_real_mnist_output_loads_with_tfds(mnist_dataset):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(mnist_dataset))
    assert builder.info.splits["train"].num_examples == 44_000
    labels = [int(ex["label"]) for ex in builder.as_dataset(split="test").take(10)]
    assert labels == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    image = next(iter(builder.as_dataset(split="test", as_supervised=True)))[0]
    assert image.shape == (28, 28) and image.dtype == tf.float32


def test_a_run_longer_than_the_interval_logs_progress_and_starts_quietly(mnist_dir, tmp_path):
    from common.startup import is_noise

    result = subprocess.run(
        [sys.executable, "-m", "jobs.preprocess", "--source", str(mnist_dir)]
        + ["--output", str(tmp_path / "out"), "--progress-interval", "0.01"],
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines(keepends=True)
    progress = [line for line in lines if b"progress: " in line]
    assert progress and b" images of 70,000 (" in progress[0]
    assert not [line for line in lines if is_noise(line)]
