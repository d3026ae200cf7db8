"""Calibrated confidence: temperature scaling lowers the calibration error without
changing a single prediction, and the review threshold keeps its error target."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from common import files, schema
from evaluation import calibration as evaluation_calibration
from evaluation import suites
from jobs import evaluate
from model import calibration, data, images, outliers, screening, serving
from tests.conftest import TEST_GATE, TEST_SHAPE, preprocess_tiny
from training import calibrate


@pytest.fixture(scope="module")
def mnist_outputs(mnist_model, mnist_dataset):
    """The real seed model's probabilities on the validation and test splits (the tests
    that use them are of learned quality: a one-epoch model clears them by far)."""
    model = serving.load_model(str(mnist_model))
    return {
        split: data.predict_split(model, str(mnist_dataset), split)
        for split in ("validation", "test")
    }


def _underconfident(split: data.Split, temperature: float = 3.0) -> data.Split:
    """The same predictions with compressed confidences, as label smoothing gives."""
    return replace(split, probabilities=calibration.scale(split.probabilities, temperature))


def test_scaling_recovers_the_temperature_lowers_ece_and_keeps_every_prediction(mnist_outputs):
    validation = _underconfident(mnist_outputs["validation"])
    test = _underconfident(mnist_outputs["test"])
    t = calibration.fit_temperature(validation.probabilities, validation.labels)
    assert 1 / 3.6 < t < 1 / 2.4  # undoes the factor of 3, fitted on validation only
    after = calibration.scale(test.probabilities, t)
    before_ece = calibration.expected_calibration_error(test.probabilities, test.labels)
    after_ece = calibration.expected_calibration_error(after, test.labels)
    assert after_ece < before_ece / 4 and after_ece < 0.01
    np.testing.assert_array_equal(after.argmax(axis=1), test.probabilities.argmax(axis=1))


def test_the_point_rule_threshold_meets_its_target_on_the_data_it_was_chosen_on(mnist_outputs):
    validation = mnist_outputs["validation"]
    for target in (0.001, 0.005, 0.02):
        threshold = calibration.choose_threshold(
            validation.probabilities, validation.labels, target, rule="point"
        )
        chosen = calibration.coverage(validation.probabilities, validation.labels, threshold)
        assert chosen["error_among_accepted"] <= target
        lower = calibration.coverage(validation.probabilities, validation.labels, threshold * 0.999)
        assert lower["accepted"] == chosen["accepted"] or lower["error_among_accepted"] > target


def test_the_bound_rule_threshold_holds_its_target_with_95_percent_confidence(mnist_outputs):
    validation = mnist_outputs["validation"]
    probabilities, labels = validation.probabilities, validation.labels
    for target in (0.005, 0.02):
        point = calibration.choose_threshold(probabilities, labels, target, rule="point")
        bound = calibration.choose_threshold(probabilities, labels, target, rule="bound")
        chosen = calibration.coverage(probabilities, labels, bound)
        assert chosen["accepted"] > 0
        assert calibration.binomial_upper_bound(chosen["errors"], chosen["accepted"]) <= target
        assert bound >= point  # the guarantee costs coverage, never buys it
        lower = calibration.coverage(probabilities, labels, bound * 0.999)
        assert (
            lower["accepted"] == chosen["accepted"]
            or calibration.binomial_upper_bound(lower["errors"], lower["accepted"]) > target
        )
    with pytest.raises(ValueError, match="threshold rule 'median'"):
        calibration.choose_threshold(probabilities, labels, 0.01, rule="median")


def test_binomial_upper_bound_matches_the_rule_of_three_and_grows_with_errors():
    assert calibration.binomial_upper_bound(0, 3000) == pytest.approx(1 - 0.05 ** (1 / 3000))
    bounds = [calibration.binomial_upper_bound(k, 1000) for k in range(6)]
    assert bounds == sorted(bounds) and all(b > k / 1000 for k, b in enumerate(bounds))


def _ranked(wrong_ranks, n: int = 5000):
    """n predictions, surest first, wrong exactly at `wrong_ranks` (0 = the surest)."""
    top = np.linspace(0.999, 0.5, n)
    probabilities = np.repeat(((1 - top) / 9)[:, None], 10, axis=1)
    probabilities[:, 0] = top
    labels = np.zeros(n, int)
    labels[list(wrong_ranks)] = 1
    return probabilities, labels


@pytest.mark.parametrize(
    "wrong_ranks, ceiling_share, says",
    [
        # two errors in 5,000: 0.04% seen, but the bound vouches only for the 3,000 before
        # the first (one error among 4,500 bounds at 0.105%): the split's size holds it
        ({3000, 4500}, 1.0, "a larger validation split"),
        # an error every tenth digit from the 3,000th: three among the first 3,030 are the
        # most 0.1% allows, 30 digits past the bound: the network holds it back
        ({3000, *range(3010, 5000, 10)}, 0.606, "the network's confident errors"),
    ],
)
def test_the_ceiling_says_whether_the_bound_or_the_network_limits_the_threshold(
    wrong_ranks, ceiling_share, says
):
    probabilities, labels = _ranked(wrong_ranks)
    bound = calibration.choose_threshold(probabilities, labels, 0.001)
    chosen = calibration.coverage(probabilities, labels, bound)
    ceiling = calibration.ceiling(probabilities, labels, 0.001)
    assert chosen["accepted"] == 3000 and chosen["errors"] == 0
    assert ceiling["accepted_share"] == pytest.approx(ceiling_share, abs=0.001)
    assert ceiling["error_among_accepted"] <= 0.001
    sentence = evaluation_calibration.validation_sentence(
        {"validation_at_threshold": chosen, "validation_ceiling": ceiling}
    )
    assert "accepts 60.00% (0 errors)" in sentence and says in sentence
    assert evaluation_calibration.validation_sentence({"validation_at_threshold": chosen}) == ""


def _digests(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): files.sha256_file(str(p))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_train_calibrates_for_this_exact_model(mnist_model, mnist_dataset):
    """Learned quality on the real MNIST: one epoch's 10,000 validation digits vouch for a
    0.5% error under the bound rule with thousands of digits to spare."""
    saved = files.read_json(str(mnist_model / schema.CALIBRATION_FILE))  # by digits train
    assert saved["model_id"] == serving.model_id(serving.keras_path(str(mnist_model)))
    assert saved["threshold"] < 1 and saved["threshold_rule"] == "bound"  # the defaults
    assert saved["ranking"] == "top_two"
    chosen = saved["validation_at_threshold"]
    validation = data.read_manifest(str(mnist_dataset))["splits"]["validation"]["records"]
    assert chosen["accepted"] <= validation
    assert calibration.binomial_upper_bound(chosen["errors"], chosen["accepted"]) <= 0.005
    ceiling = saved["validation_ceiling"]  # no bound: as far as the errors seen allow
    assert chosen["accepted"] <= ceiling["accepted"] <= validation
    assert 0 < ceiling["error_among_accepted"] <= saved["target_error"]
    # the shape check's weights are in calibration.json (the scorer's), not in metrics.json
    assert 0 < saved["max_shape"] < 1
    members = saved["shape_check"]["members"]  # --shape-check-members, 2 in these tests
    assert len(members) == 2 and all(len(member["layers"]) == 5 for member in members)
    assert members[0] != members[1]
    # what they were trained against, so a bench never mixes pools of other kinds
    assert saved["fitted"]["shape_check_members"] == 2
    assert saved["fitted"]["shape_check_kinds"] == list(outliers.SHAPE_CHECK_ROUND)
    trained = json.loads((mnist_model / schema.METRICS_FILE).read_text())["calibration"]
    assert trained["screen"]["shape_check"] == {
        "architecture": saved["shape_check"]["architecture"]
    }
    reference = json.loads((mnist_model / schema.REFERENCE_FILE).read_text())
    assert reference["source"] == "validation split"
    assert sum(reference["histograms"]["digit"]) == validation


def test_the_input_limits_fitted_on_damaged_digits_too_take_blurred_digits_for_digits(
    mnist_model, mnist_outputs
):
    """A blurred or low-resolution digit is half-inked all over: limits fitted on clean
    digits alone call it `smudged`, not_a_digit, though the model may read it. Fitted on
    damaged copies too (model.damage, not the suite's corruptions), the limits take the
    suite's glass-blurred and 8x8 digits for digits, and still the suite's pages of paper
    and noise for none (smudges are the shape check's to catch, which learns damaged
    digits as digits: the suite's figures in evaluation.json)."""
    model, validation = serving.load_model(str(mnist_model)), mnist_outputs["validation"]
    digits = mnist_outputs["test"].pixels[:300]
    damaged = calibrate.damaged_split(model, validation, 0.25)
    assert len(damaged["labels"]) == round(0.25 * len(validation.labels))

    def fitted(share: float):
        config = calibrate.CalibrationConfig(check_damage_share=share)
        return calibrate.fit_screen(
            validation, 1.0, 0.0, config, damaged=damaged if share else None
        )

    screens = {share: fitted(share) for share in (0.0, 0.25)}
    assert screens[0.25].fitted["damaged_digits"] == len(damaged["labels"])
    inputs = {
        "glass_blur": suites.corrupt("glass_blur", digits)[..., None],
        "8x8": suites.low_resolution(digits, 8)[..., None],
        "no digit": [p for k in ("paper_texture", "noise") for p in
                     suites.not_a_digit(k, 100, digits)],
    }  # fmt: skip
    predictor = serving.Predictor.of(model, None)
    called = {}  # the share called not_a_digit, by input and screen
    for name, pages in inputs.items():
        pixels = images.normalise_all(pages)
        probabilities = predictor.predict(pixels)["probabilities"]
        for share, screen in screens.items():
            status = screening.assess(probabilities, pixels, screen)["status"].numpy()
            called[name, share] = np.mean(status == screening.NOT_A_DIGIT)
    assert called["glass_blur", 0.0] > 0.9 and called["8x8", 0.0] > 0.9  # about all
    assert called["glass_blur", 0.25] < 0.5 and called["8x8", 0.25] < 0.5  # 16% and 30% here
    assert called["no digit", 0.25] == 1.0


def test_evaluate_measures_the_stored_calibration_and_changes_only_the_blessing(
    tiny_model, tiny_dataset, tmp_path
):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)  # the shared model keeps its own (test) blessing
    (model / schema.BLESSING_FILE).unlink()
    saved = files.read_json(str(model / schema.CALIBRATION_FILE))
    before = _digests(model)
    results = evaluate.run(
        ["--data", str(tiny_dataset), "--model", str(model), "--output", str(tmp_path / "r")]
        + ["--suite-size", "50", "--suite-per-kind", "5", *TEST_GATE]
    )
    after = _digests(model)
    assert set(after) - set(before) == {schema.BLESSING_FILE}
    assert {name: after[name] for name in before} == before  # nothing else changed
    section = json.loads((tmp_path / "r" / "evaluation.json").read_text())["calibration"]
    assert saved["temperature"] == section["temperature"]
    assert section["threshold"] == saved["threshold"]
    assert section["test_accuracy_after"] == results["accuracy"]
    trained = json.loads((model / schema.METRICS_FILE).read_text())["calibration"]
    assert section["screen"]["shape_check"] == trained["screen"]["shape_check"]
    assert (tmp_path / "r" / "reliability.png").stat().st_size > 10_000
    assert "## Calibration and the review threshold" in (tmp_path / "r" / "report.md").read_text()


def test_train_warns_when_no_threshold_meets_the_target(tiny_dataset, tmp_path, capsys):
    # A few dozen validation digits cannot vouch for a 0.1% error: every digit would go to
    # review, and the job says so instead of leaving it to be found in the night's output.
    from jobs import train

    model = tmp_path / "model"
    train.run(
        ["--data", str(tiny_dataset), "--output", str(model), "--epochs", "1"]
        + ["--batch-size", "32", "--shape-check-epochs", "0"]
    )
    assert files.read_json(str(model / schema.CALIBRATION_FILE))["threshold"] > 1.0
    err = capsys.readouterr().err
    assert "no review threshold meets --target-error 0.001" in err
    assert "the scorer will send every digit to review" in err
    ceiling = files.read_json(str(model / schema.CALIBRATION_FILE))["validation_ceiling"]
    assert f"a threshold could accept {ceiling['accepted_share']:.1%}" in err
    # And it does: even predictions whose float32 confidence is exactly 1.0.
    test = data.predict_split(serving.load_model(str(model)), str(tiny_dataset), "test")
    statuses = serving.Predictor(str(model)).predict(data.to_pixels(test.images))["status"]
    assert len(statuses) and not np.any(statuses == screening.ACCEPTED)
    evaluate.run(
        ["--data", str(tiny_dataset), "--model", str(model), "--output", str(tmp_path / "r")]
        + ["--suite-size", "20", "--suite-per-kind", "2", *TEST_GATE]
        + ["--min-accepted-share", "0.5"]  # the default: such a model is not blessed
    )
    report = (tmp_path / "r/report.md").read_text()
    assert "none meets it, so every digit goes to review" in report
    blessing = files.read_json(str(model / schema.BLESSING_FILE))
    assert not blessing["blessed"] and blessing["failed"] == ["accepted_share"]


def test_no_threshold_accepts_nothing_even_saturated_confidences():
    # Float32 softmax saturates at exactly 1.0; a wrong answer among them leaves no
    # threshold that keeps 0.1%, and the sentinel must not accept the saturated ones.
    probabilities = np.zeros((50, 10))
    probabilities[:, 3] = 1.0
    labels = np.full(50, 3)
    labels[0] = 5
    threshold = calibration.choose_threshold(probabilities, labels, 0.001, rule="point")
    assert threshold == calibration.ACCEPT_NOTHING
    assert calibration.coverage(probabilities, labels, threshold)["accepted"] == 0


def test_calibrate_fits_another_target_into_a_new_folder_and_only_reads_the_source(
    tiny_model, tiny_dataset, tmp_path, capsys
):
    from jobs import calibrate

    before = _digests(tiny_model)
    source = files.read_json(str(tiny_model / schema.CALIBRATION_FILE))
    out = tmp_path / "looser"
    argv = ["--model", str(tiny_model), "--data", str(tiny_dataset), "--output", str(out)]
    looser = ("--threshold-rule", "point", "--target-error", "0.2", "--ranking", "confidence")
    calibrate.run([*argv, *TEST_SHAPE, *looser])
    assert _digests(tiny_model) == before  # the source (its blessing too) is only read
    saved = files.read_json(str(out / schema.CALIBRATION_FILE))
    assert saved["model_id"] == source["model_id"]  # the same network...
    assert (saved["target_error"], saved["ranking"]) == (0.2, "confidence")  # ...judged anew
    assert saved["threshold"] < source["threshold"]
    metrics = files.read_json(str(out / schema.METRICS_FILE))
    assert metrics["recalibrated_from"]["model"] == str(tiny_model)
    trained = files.read_json(str(tiny_model / schema.METRICS_FILE))
    assert metrics["test"] == trained["test"] and metrics["config"] == trained["config"]
    # Servable with the new screen, and unblessed until digits evaluate judges it.
    assert serving.load_screen(str(out)).threshold == saved["threshold"]
    with pytest.raises(serving.ModelRefused, match="no blessing.json"):
        serving.check_blessing(str(out))

    # The shape check kept as it is (its two networks, not the one asked for), in seconds
    kept = ["--model", str(tiny_model), "--data", str(tiny_dataset), "--output"]
    calibrate.run([*kept, str(tmp_path / "kept"), "--keep-shape-check", "--shape-check-members",
                   "1", "--target-error", "0.005"])  # fmt: skip
    again = files.read_json(str(tmp_path / "kept" / schema.CALIBRATION_FILE))
    assert again["shape_check"] == source["shape_check"]
    assert again["fitted"]["shape_check_members"] == 2 and again["threshold"] != saved["threshold"]
    older = tmp_path / "older"  # a model whose shape check learnt other kinds than today's
    shutil.copytree(tiny_model, older)
    (older / schema.BLESSING_FILE).unlink()
    fitted = {**source["fitted"], "shape_check_kinds": ["curve"]}
    files.write_json(str(older / schema.CALIBRATION_FILE), {**source, "fitted": fitted})
    kept[1] = str(older)
    assert calibrate.main([*kept, str(tmp_path / "older-kept"), "--keep-shape-check"]) == 2
    assert "was trained against other not-a-digit images (curve; now" in capsys.readouterr().err

    # A rerun replaces its own folder...
    calibrate.run([*argv, *TEST_SHAPE, "--target-error", "0.005"])
    assert files.read_json(str(out / schema.CALIBRATION_FILE))["threshold"] > saved["threshold"]
    # ...but never one digits evaluate has judged: it may be the one the scorer reads.
    shutil.copy(tiny_model / schema.BLESSING_FILE, out / schema.BLESSING_FILE)
    judged = _digests(out)
    assert calibrate.main([*argv, *TEST_SHAPE]) == 2
    assert "holds a model digits evaluate judged" in capsys.readouterr().err
    assert _digests(out) == judged


def test_calibrate_refuses_another_dataset_the_source_folder_and_a_trained_model(
    tiny_model, tiny_dataset, tmp_path, capsys
):
    from jobs import calibrate

    other = preprocess_tiny(tmp_path / "other", train=300, test=100, validation=100)
    shutil.copytree(tiny_model, tmp_path / "trained")
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "notes.txt").write_text("a user's file")
    cases = {
        (str(other), str(tmp_path / "new")): "is not the dataset --model",
        (str(tiny_dataset), str(tiny_model)): "is the --model folder",
        (str(tiny_dataset), str(tmp_path / "trained")): "holds a model (or a training's",
        (str(tiny_dataset), str(tmp_path / "users")): "digits calibrate did not write (notes",
    }
    for (dataset, output), message in cases.items():
        argv = ["--model", str(tiny_model), "--data", dataset, "--output", output]
        assert calibrate.main(argv) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "users" / "notes.txt").read_text() == "a user's file"
    assert _digests(tmp_path / "trained") == _digests(tiny_model)
    with pytest.raises(SystemExit) as stopped:
        calibrate.main(["--model", str(tiny_model), "--data", str(tiny_dataset),
                        "--output", str(tmp_path / "new"), "--target", "0.01"])  # fmt: skip
    assert stopped.value.code == 2 and "unrecognized arguments: --target" in capsys.readouterr().err


def _validation(accepted_share: float, n: int = 4000, seed: int = 3) -> data.Split:
    """Validation digits (measurements in range, no pixels needed) of which about
    `accepted_share` are sure (0.99 on their digit) and the rest unsure (0.3)."""
    rng = np.random.default_rng(seed)
    confidence = np.where(rng.random(n) < accepted_share, 0.99, 0.3)
    probabilities = np.repeat(((1 - confidence) / 9)[:, None], 10, axis=1)
    probabilities[:, 3] = confidence
    measured = {
        "peak": np.ones(n),
        "ink": rng.uniform(0.05, 0.3, n),
        "second_blob": np.zeros(n),
        "roughness": rng.uniform(0.5, 2.0, n),
        "half_ink": rng.uniform(0.1, 0.4, n),
        "aspect": rng.uniform(0.2, 1.4, n),
        "shape": rng.beta(0.5, 5, n),  # the shape check's scores
    }
    empty = np.zeros((n, 28, 28), np.uint8)
    return data.Split("validation", empty, empty, np.full(n, 3), ("k",) * n,
                      np.full(n, "mnist"), probabilities, measured)  # fmt: skip


def test_the_shape_check_spends_what_the_threshold_accepts_above_keep_accepted():
    """A model whose threshold accepts more than --keep-accepted of the validation digits
    has its shape check review more of them (marks that read as digits), up to
    --shape-review-up-to; one that accepts less has it review --shape-review-share."""

    def fitted(validation: data.Split, **options):
        config = calibrate.CalibrationConfig(**options)
        screen = calibrate.fit_screen(validation, 1.0, 0.9, config, {"layers": []})
        status = screening.judge(validation.measured, validation.probabilities, screen)
        shapes = validation.measured["shape"]
        return screen, np.mean(status["status"].numpy() == 0), np.mean(shapes > screen.review_shape)

    sure = _validation(0.985)  # the threshold alone accepts about 98.5%
    asked = dict(shape_review_share=0.02, shape_review_up_to=0.08)
    fixed, accepted_fixed, reviewed_fixed = fitted(sure, **asked, keep_accepted=1.0)
    assert reviewed_fixed == pytest.approx(0.02, abs=0.002)  # the share asked, no more
    more, accepted, reviewed = fitted(sure, **asked, keep_accepted=0.94)
    assert accepted_fixed > 0.94 and 0.94 <= accepted < 0.94 + 2 / len(sure.labels)
    assert 0.03 < reviewed < 0.08 and more.review_shape < fixed.review_shape
    assert more.fitted["shape_reviewed"] == pytest.approx(reviewed)
    assert more.fitted["keep_accepted"] == 0.94 and more.fitted["shape_review_up_to"] == 0.08

    _, _, at_most = fitted(sure, **asked, keep_accepted=0.5)  # much to spend: the most
    assert at_most == pytest.approx(0.08, abs=0.002)
    _, accepted_unsure, reviewed_unsure = fitted(_validation(0.9), **asked, keep_accepted=0.94)
    assert accepted_unsure < 0.94 and reviewed_unsure == pytest.approx(0.02, abs=0.002)
    none, _, _ = fitted(sure, shape_review_share=0.0)  # no review asked: none
    assert none.review_shape == 1.0 and none.fitted["shape_reviewed"] == 0.0
    with pytest.raises(ValueError, match="--keep-accepted must be between 0 and 1, got 1.5"):
        calibrate.CalibrationConfig(keep_accepted=1.5)
