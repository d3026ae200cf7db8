"""The model builders, the tf.data input, the training job, export and evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common import schema
from jobs import evaluate, train
from model import cnn, data, serving
from model.configs import recipe
from tests.conftest import REPO, TEST_GATE, kill_job_when, preprocess_tiny
from training import train as training


def test_seed_model_is_the_notebooks_cnn():
    model = cnn.build(recipe("seed"))
    assert model.count_params() == 110_986
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
    ]
    assert model.output_shape == (None, 10)


def test_strong_model_gives_probabilities_and_augments_only_in_training():
    model = cnn.build(recipe("strong"))
    images = tf.random.uniform([4, 28, 28, 1], seed=1)
    probabilities = model(images, training=False).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(model(images, training=False), probabilities)


def test_strong_recipe_mixes_not_a_digit_images_with_a_uniform_target(tiny_dataset):
    from model import outliers

    config = recipe("strong", batch_size=50)
    manifest = data.read_manifest(str(tiny_dataset))
    dataset = data.LocalDataset(str(tiny_dataset), str(tiny_dataset), manifest, verified=True)
    pool = training.outlier_pool(config, dataset)
    assert pool.dtype == np.uint8 and pool.shape[1:] == (28, 28)
    assert len(pool) == round(0.1 * dataset.manifest["splits"]["train"]["records"])
    np.testing.assert_array_equal(pool[:6], outliers.pool(_train_digits(tiny_dataset), 6, 0))
    splits = training.make_inputs(config, dataset, training.plan_devices([], "float32", False))
    images, targets = next(iter(splits["train"]))
    assert images.shape[0] == 50 + 5
    np.testing.assert_allclose(targets.numpy()[50:], 0.1)  # the five not-a-digit images
    assert set(targets.numpy()[:50].max(axis=1)) == {1.0}  # digits keep their one-hot label
    validation_targets = next(iter(splits["validation"]))[1].numpy()
    assert set(validation_targets.max(axis=1)) == {1.0}  # never in validation
    assert training.outlier_pool(recipe("seed"), dataset) is None  # the notebook's recipe: none


def test_robust_recipe_mixes_damaged_digits_with_their_own_labels(tiny_dataset):
    from model import damage

    config = recipe("robust", batch_size=40)
    manifest = data.read_manifest(str(tiny_dataset))
    dataset = data.LocalDataset(str(tiny_dataset), str(tiny_dataset), manifest, verified=True)
    images, labels = training.damage_pool(config, dataset)
    n_train = manifest["splits"]["train"]["records"]
    assert images.dtype == np.uint8 and len(images) == len(labels) == round(0.25 * n_train)
    digits, digit_labels = _train_digits(tiny_dataset), _train_labels(tiny_dataset)
    again = damage.pool(digits, digit_labels, len(images), config.seed)
    np.testing.assert_array_equal(images, again[0])  # seeded
    assert (images.max(axis=(1, 2)) >= 128).all()  # none left blank by its damage
    assert set(labels) <= set(digit_labels) and len(set(labels)) == 10
    splits = training.make_inputs(config, dataset, training.plan_devices([], "float32", False))
    batch, targets = next(iter(splits["train"]))
    assert batch.shape[0] == 40 + 4 + 10  # digits, not-a-digit images, damaged digits
    np.testing.assert_allclose(targets.numpy()[40:44], 0.1)
    assert set(targets.numpy()[44:].max(axis=1)) == {1.0}
    assert next(iter(splits["validation"]))[0].shape[0] == 40  # never in validation


def test_every_kind_of_damage_changes_a_digit_and_keeps_its_format(tiny_dataset):
    from model import damage

    digit = _train_digits(tiny_dataset)[0]
    for name, kind in damage.KINDS.items():
        out = np.clip(np.round(kind(digit, np.random.default_rng(0))), 0, 255)
        assert out.shape == (28, 28) and not np.array_equal(out, digit), name


def test_outlier_pool_has_every_kind_drawn_and_is_seeded(tiny_dataset):
    from model import outliers, screening

    digits = _train_digits(tiny_dataset)
    kinds = outliers.SHAPE_CHECK_ROUND  # the classifier's ROUND and the shape check's kinds
    assert set(kinds) == set(outliers.KINDS) and set(outliers.ROUND) < set(kinds)
    pool = outliers.pool(digits, 2 * len(kinds), seed=3, kinds=kinds)
    # every kind survives the normalisation, inked
    assert (pool.max(axis=(1, 2)) >= screening.LIT).all()
    turns = [pool[i :: len(kinds)] for i in range(len(kinds))]
    assert all(not np.array_equal(k[0], k[1]) for k in turns)
    np.testing.assert_array_equal(pool, outliers.pool(digits, len(pool), seed=3, kinds=kinds))
    assert not np.array_equal(pool, outliers.pool(digits, len(pool), seed=4, kinds=kinds))


def test_printed_letters_are_letters_in_typefaces_the_evaluation_never_uses():
    # A character a typeface lacks prints as its "missing" box, which reads as a 0; and a
    # typeface of the evaluation's would no longer be a held-out check.
    from evaluation import suites
    from model import outliers

    assert not set(outliers.PRINT_FACES) & set(suites.OTHER_TYPEFACES)
    assert set(outliers.PRINTED) < set(outliers.LETTERS) and "$" in outliers.PRINTED
    for face in outliers.PRINT_FACES:
        font = outliers._font(face, 60)
        missing = bytes(font.getmask("\u4e00"))  # a character no Computer Modern face has
        for character in outliers.PRINTED:
            assert bytes(font.getmask(character)) != missing, (face, character)


def test_every_hand_letter_is_drawn_whole_inside_its_canvas():
    # A template outside its unit box would be cut at the canvas edge: a part of a letter,
    # which can be a digit's part too.
    from model import outliers

    rng = np.random.default_rng(0)
    for name, strokes in outliers.LETTERS.items():
        for _ in range(20):
            ink = outliers.hand_drawn(strokes, rng) > 0
            assert ink.any(), name
            assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any()), name


def test_a_hand_drawn_c_is_open_on_the_right_and_round_on_the_left():
    # It once ended its arc at the top: the not-a-digit images held a flat arch, never a
    # c, and a written c went on to be read as a confident 0.
    from model import outliers

    rng = np.random.default_rng(0)
    for _ in range(5):
        ink = outliers.hand_drawn(outliers.LETTERS["c"], rng) > 128
        rows, cols = np.nonzero(ink)
        top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
        assert bottom - top > 0.6 * (right - left)  # as tall as it is round, not an arch
        middle = (top + bottom) // 2
        assert ink[middle, left : left + (right - left) // 3].any()  # round on the left
        assert not ink[middle, (left + right) // 2 :].any()  # open on the right


def test_images_made_by_a_generator_are_normalised_in_order_as_scored_images_are():
    """model.outliers feeds normalise_all a generator (drawing while the threads work)."""
    from model.digit_image import normalise_digit
    from model.images import normalise_all, to_mnist_pixels

    rng = np.random.default_rng(0)
    images = []
    for size in rng.choice([28, 44, 60, 112], 300):  # 28: MNIST-shaped, passed through
        image = np.zeros((size, size), np.uint8)
        top, left = rng.integers(1, size // 2, 2)
        image[top : top + size // 3, left : left + rng.integers(2, size // 2)] = 255
        images.append(image[..., None])
    expected = np.stack([normalise_digit(image).numpy() for image in images])
    assert any(size == 28 for size in (image.shape[0] for image in images))
    np.testing.assert_array_equal(normalise_all(image for image in images), expected)
    np.testing.assert_array_equal(expected[:5], [to_mnist_pixels(i) for i in images[:5]])


def _train_digits(dataset_dir) -> np.ndarray:
    first = next(iter(data.records(str(dataset_dir), "train", 5000, verify=False)))
    return np.round(first[schema.IMAGE_KEY].numpy()[..., 0] * 255).astype(np.uint8)


def _train_labels(dataset_dir) -> np.ndarray:
    return next(iter(data.records(str(dataset_dir), "train", 5000, verify=False)))[
        schema.LABEL_KEY
    ].numpy()


def test_configuration_errors_name_the_flag():
    with pytest.raises(ValueError, match="--recipe 'huge'"):
        recipe("huge")
    with pytest.raises(ValueError, match="--epochs must be at least 1"):
        recipe("seed", epochs=0)


def test_input_pipeline_reads_the_manifests_counts_eagerly_and_in_tf_data(tiny_dataset):
    manifest = data.read_manifest(str(tiny_dataset))
    for split in schema.SPLITS:
        expected = manifest["splits"][split]["records"]
        dataset = data.records(str(tiny_dataset), split, 64, training=split == "train")
        eager = sum(int(batch["label"].shape[0]) for batch in dataset)
        in_graph = int(
            dataset.reduce(np.int64(0), lambda n, b: n + tf.shape(b["label"], tf.int64)[0])
        )
        assert eager == in_graph == expected
        labels = np.concatenate([b["label"].numpy() for b in dataset])
        assert np.bincount(labels, minlength=10).tolist() == manifest["splits"][split]["labels"]


def test_device_plan_picks_the_precision_from_the_hardware_and_ignores_xla_on_cpu():
    amx = training.plan_devices([], "auto", xla=True, bfloat16_units=True)
    assert (amx.strategy, amx.prefetch_device, amx.policy, amx.xla) == (
        "default",
        None,
        "mixed_bfloat16",
        False,
    )
    assert amx.notes == ("--xla ignored: no GPU",)
    assert training.plan_devices([], "auto", False, bfloat16_units=False).policy == "float32"
    assert training.plan_devices([], "float32", False, bfloat16_units=True).policy == "float32"
    assert training.plan_devices([], "mixed", False, bfloat16_units=False).policy == (
        "mixed_bfloat16"
    )
    one = training.plan_devices(["/physical_device:GPU:0"], "mixed", xla=False)
    assert (one.strategy, one.prefetch_device, one.policy) == ("default", "/gpu:0", "mixed_float16")
    assert training.plan_devices(["/physical_device:GPU:0"], "auto", False).policy == "float32"
    two = training.plan_devices(["/physical_device:GPU:0", "/physical_device:GPU:1"], "auto", True)
    assert (two.strategy, two.xla) == ("mirrored", True)
    with pytest.raises(ValueError, match="--precision 'half'"):
        training.plan_devices([], "half", False)


def test_bfloat16_arithmetic_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert training.cpu_has_bfloat16_units(str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert training.cpu_has_bfloat16_units(str(cpuinfo))  # AMD Zen 4
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\nbugs\t\t: amx_bf16\n")
    assert not training.cpu_has_bfloat16_units(str(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_vnni avx512_bf\n")
    assert not training.cpu_has_bfloat16_units(str(cpuinfo))
    assert not training.cpu_has_bfloat16_units(str(tmp_path / "missing"))


def test_one_epoch_on_the_real_mnist_learns(mnist_model):
    """Learned quality: one epoch of the notebook's recipe reaches about 98% on test."""
    metrics = json.loads((mnist_model / schema.METRICS_FILE).read_text())
    assert metrics["test"]["accuracy"] > 0.95 and metrics["validation"]["accuracy"] > 0.95


def test_training_writes_its_outputs(tiny_model):
    metrics = json.loads((tiny_model / schema.METRICS_FILE).read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1 and metrics["chosen_epoch"] == 2
    assert metrics["parameters"] == 110_986
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    for entry in metrics["epochs"]:
        assert {
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "seconds",
            "examples_per_second",
        } <= set(entry)
    # Trained in mixed bfloat16; what is exported computes in float32.
    assert metrics["device"]["policy"] == "mixed_bfloat16"
    model = serving.load_model(str(tiny_model))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert (tiny_model / "saved_model" / "saved_model.pb").exists()
    assert any((tiny_model / "logs").rglob("*tfevents*"))
    assert not (tiny_model / "backup").exists()


_NO_PROJECT_CODE = """
import sys, json, numpy as np
class Block:
    def find_spec(self, name, *args):
        if name.split(".")[0] in ("pipeline", "model", "jobs"):
            raise ImportError("project code must not be needed: " + name)
sys.meta_path.insert(0, Block())
import tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
pixels = np.load(sys.argv[2])
raw = m.signatures["serving_default"](images=tf.constant(pixels))
files = [open(p, "rb").read() for p in sys.argv[3:]]
encoded = m.signatures["predict_encoded"](image_bytes=tf.constant(files))
print(json.dumps({"raw": raw["digits"].numpy().tolist(),
                  "encoded": encoded["digits"].numpy().tolist(),
                  "probabilities": raw["probabilities"].numpy().tolist(),
                  "dtypes": [raw["digits"].dtype.name, raw["probabilities"].dtype.name]}))
"""


def test_saved_model_works_alone_on_pixels_and_png_bytes(tiny_model, tiny_dataset, tmp_path):
    batch = next(iter(data.records(str(tiny_dataset), "test", 16)))
    pixels = np.round(batch["image"].numpy()[..., 0] * 255).astype(np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)
    paths = []
    for i, image in enumerate(pixels):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    keras_model = serving.load_model(str(tiny_model))
    expected = keras_model.predict(pixels[..., None].astype(np.float32) / 255, verbose=0)

    script = tmp_path / "load.py"
    script.write_text(_NO_PROJECT_CODE)
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tiny_model / "saved_model"),
            str(tmp_path / "pixels.npy"),
            *paths,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["dtypes"] == ["int64", "float32"]
    assert served["raw"] == expected.argmax(axis=1).tolist()
    assert served["encoded"] == served["raw"]
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)


def test_evaluation_outputs_are_consistent(tiny_model, tiny_dataset, tmp_path):
    report = tmp_path / "report"
    results = evaluate.run(
        ["--data", str(tiny_dataset), "--model", str(tiny_model), "--output", str(report)]
        + ["--suite-size", "50", "--suite-per-kind", "5", *TEST_GATE]
    )
    saved = json.loads((report / "evaluation.json").read_text())
    confusion = np.array(saved["confusion_matrix"])
    assert (
        confusion.sum() == data.read_manifest(str(tiny_dataset))["splits"]["test"]["records"] == 200
    )
    assert saved["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert [saved["per_class"][str(d)]["support"] for d in range(10)] == confusion.sum(
        axis=1
    ).tolist()
    metrics = json.loads((tiny_model / schema.METRICS_FILE).read_text())
    assert saved["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    for picture in ("confusion_matrix.png", "misclassified.png", "samples.png"):
        assert Image.open(report / picture).size[0] > 300
    card = (report / "report.md").read_text()
    assert f"{results['accuracy']:.4f}" in card and "## Limits" in card
    low = saved["robustness"]["low_resolution"]
    assert list(low["per_side"]) == ["8", "12", "16"] and "| 8x8 |" in card
    # what the threshold, set on clean digits, lets through of damaged ones
    for r in saved["robustness"]["corruptions"]["per_corruption"].values():
        error, accepted = r["error_among_accepted"], r["statuses"]["accepted"]
        assert (error is None) == (accepted == 0)
        assert error is None or error * accepted <= 1 - r["accuracy"] + 1e-9  # some errors
    assert "| error among accepted |" in card
    assert Image.open(report / "low_resolution.png").size[0] > 300


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing"])
def test_damaged_shard_stops_training_naming_the_shard(tmp_path, damage, capsys):
    dataset = preprocess_tiny(tmp_path, train=200, test=50, validation=50)
    shard = sorted(dataset.glob("mnist-train.tfrecord-*"))[1]
    if damage == "corrupt":
        raw = bytearray(shard.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        shard.write_bytes(bytes(raw))
    elif damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:-100])
    else:
        shard.unlink()
    code = train.main(["--data", str(dataset), "--output", str(tmp_path / "m"), "--epochs", "1"])
    assert code != 0
    assert shard.name in capsys.readouterr().err
    assert not (tmp_path / "m" / schema.METRICS_FILE).exists()


def test_incomplete_dataset_is_not_trusted(tmp_path, capsys):
    dataset = preprocess_tiny(tmp_path, train=200, test=50, validation=50)
    (dataset / schema.MANIFEST_FILE).unlink()
    assert train.main(["--data", str(dataset), "--output", str(tmp_path / "m")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_killed_training_resumes_from_its_last_epoch(tmp_path):
    dataset = preprocess_tiny(tmp_path, train=1200, test=100, validation=100)
    model_dir = tmp_path / "model"
    argv = ["jobs.train", "--data", str(dataset), "--output", str(model_dir)]
    argv += ["--epochs", "4", "--batch-size", "16", "--shape-check-epochs", "0"]
    history = model_dir / schema.HISTORY_FILE
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    kill_job_when(
        argv,
        lambda: history.exists() and len(history.read_text().splitlines()) >= 2,
        timeout=300,
        env=env,
    )
    done_before = len(training.read_history(str(history)))
    assert 2 <= done_before < 4, "the job finished before it could be killed"
    assert (model_dir / "backup").exists() and not (model_dir / schema.METRICS_FILE).exists()

    result = subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert "Resuming" in result.stdout
    resumed_epochs = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert resumed_epochs[0] != "Epoch 1/4"
    metrics = json.loads((model_dir / schema.METRICS_FILE).read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4]
    shutil.rmtree(tmp_path)


def test_a_trained_model_folder_is_servable_without_evaluate(tiny_dataset, tmp_path, capsys):
    from jobs import score
    from tests.conftest import TEST_TARGET
    from tests.fakes import digit_like_images

    model = tmp_path / "model"
    argv = ["--data", str(tiny_dataset), "--output", str(model), "--epochs", "1"]
    train.run([*argv, "--batch-size", "32", *TEST_TARGET, "--shape-check-epochs", "0"])
    assert not (model / schema.BLESSING_FILE).exists()  # evaluate blesses; train calibrates
    saved = tf.saved_model.load(str(model / schema.SAVED_MODEL_DIR))
    outputs = saved.signatures["predict_encoded"].structured_outputs
    assert {"status", "reasons", "calibrated_confidence"} <= set(outputs)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, pixels in enumerate(digit_like_images(5, seed=2)[0]):
        Image.fromarray(pixels).save(inputs / f"{i}.png")
    flags = ["--model", str(model), "--input", str(inputs / "*.png"), "--max-error-rate", "1"]
    assert score.main([*flags, "--output", str(tmp_path / "refused")]) == 2
    assert "blessing" in capsys.readouterr().err
    out = tmp_path / "scores"
    assert score.main([*flags, "--output", str(out), "--allow-unblessed"]) == 0
    shards = sorted(out.glob("predictions-*"))
    rows = [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]
    assert len(rows) == 5 and all(row["status"] for row in rows)


def test_members_are_trained_apart_and_exported_as_their_mean_with_a_second_look(
    tiny_dataset, tmp_path
):
    from tests.conftest import TEST_TARGET

    model_dir = tmp_path / "model"
    argv = ["--data", str(tiny_dataset), "--output", str(model_dir), "--recipe", "robust"]
    argv += ["--epochs", "1", "--batch-size", "32", *TEST_TARGET]  # robust: two members
    metrics = train.run([*argv, "--shape-check-epochs", "0"])
    assert metrics["config"]["members"] == 2
    single = cnn.build(recipe("robust", members=1)).count_params()
    assert metrics["parameters"] == 2 * single
    assert {"val_member_0_loss", "val_member_1_loss"} <= set(metrics["epochs"][0])
    loaded = serving.load_model(str(model_dir))  # one file, safe mode, one output
    assert loaded.output_shape == (None, 10)
    second_look = loaded.get_layer("probabilities")  # robust's: unsure digits read again
    assert isinstance(second_look, cnn.SecondLook) and second_look.below == 0.8
    ensemble = second_look.network
    first, second = ensemble.get_layer("member_0"), ensemble.get_layer("member_1")
    images = data.split_pixels(str(tiny_dataset), "test", 64)[..., None] / 255.0
    p0, p1 = first(images, training=False).numpy(), second(images, training=False).numpy()
    assert np.abs(p0 - p1).max() > 0.01  # seeded apart: two opinions, not one twice
    mean = ensemble(images, training=False).numpy()
    np.testing.assert_allclose(mean, (p0 + p1) / 2, atol=1e-6)
    # The exported model: the members' mean where it is sure (p1 / (p1 + p2) at least
    # 0.8); where not, the mean of it and of the digit shifted one pixel each way.
    top = np.sort(mean, axis=1)[:, ::-1]
    score = top[:, 0] / (top[:, 0] + top[:, 1])
    views = [images] + [np.roll(images, shift, axis=(1, 2)) for shift in cnn.SHIFTS]
    looked = np.mean([ensemble(v, training=False).numpy() for v in views], axis=0)
    # 21 unsure digits, the rest sure: read again in a batch of 32 (padded), then 21 kept
    partly = float(np.sort(score)[21])
    for model, below in ((loaded, 0.8), (cnn.with_second_look(ensemble, partly), partly)):
        unsure = score < below
        exported = model(images, training=False).numpy()
        np.testing.assert_allclose(exported[~unsure], mean[~unsure], atol=1e-6)
        np.testing.assert_allclose(exported[unsure], looked[unsure], atol=1e-6)
    assert (score < partly).sum() == 21
    test = data.predict_split(loaded, str(tiny_dataset), "test")
    accuracy = float((test.predicted == test.labels).mean())
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)  # the export's


def test_the_recipe_is_named_recipe_and_model_stays_a_folder(tiny_dataset, tmp_path, capsys):
    argv = ["--data", str(tiny_dataset), "--output", str(tmp_path / "m")]
    assert train.parse_args([*argv, "--recipe", "strong"]).recipe.model == "strong"
    with pytest.raises(SystemExit) as stopped:
        train.parse_args([*argv, "--model", "strong"])
    assert stopped.value.code == 2
    assert "the training recipe is --recipe strong" in capsys.readouterr().err


def test_options_replace_the_recipes_label_smoothing_and_damage_share(tiny_dataset, tmp_path):
    argv = ["--data", str(tiny_dataset), "--output", str(tmp_path / "m"), "--recipe", "robust"]
    robust = train.parse_args(argv).recipe
    assert (robust.label_smoothing, robust.damage_share) == (0.1, 0.25)
    changed = train.parse_args([*argv, "--label-smoothing", "0", "--damage-share", "0"]).recipe
    assert (changed.label_smoothing, changed.damage_share) == (0.0, 0.0)
    assert changed.members == robust.members and changed.augment  # the rest is robust's
    with pytest.raises(ValueError, match="--label-smoothing must be at least 0 and below 1"):
        train.parse_args([*argv, "--label-smoothing", "1"])
    with pytest.raises(ValueError, match="--damage-share must be between 0 and 1, got -0.5"):
        train.parse_args([*argv, "--damage-share", "-0.5"])
    assert robust.second_look_below == 0.8
    assert train.parse_args([*argv, "--second-look-below", "0"]).recipe.second_look_below == 0
    with pytest.raises(ValueError, match="--second-look-below must be between 0 and 1, got 2"):
        train.parse_args([*argv, "--second-look-below", "2"])
    assert train.parse_args(argv).calibration.shape_check.members == 3
    with pytest.raises(ValueError, match="--shape-check-members must be at least 1, got 0"):
        train.parse_args([*argv, "--shape-check-members", "0"])


def test_the_review_threshold_is_set_on_the_top_two_share_unless_asked_otherwise(
    tiny_dataset, tmp_path, capsys
):
    argv = ["--data", str(tiny_dataset), "--output", str(tmp_path / "m")]
    assert train.parse_args(argv).calibration.ranking == "top_two"
    assert train.parse_args([*argv, "--ranking", "confidence"]).calibration.ranking == "confidence"
    with pytest.raises(SystemExit):
        train.parse_args([*argv, "--ranking", "margin"])
    assert "--ranking: invalid choice: 'margin'" in capsys.readouterr().err
