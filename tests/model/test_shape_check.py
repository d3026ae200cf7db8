"""The shape check (model/shape_check.py): its TensorFlow-ops forward pass is the Keras
network it was trained as, trained briefly it already tells digits from the not-a-digit
images it has not seen, and trained with damaged copies it takes blurred digits for
digits."""

from __future__ import annotations

import json

import numpy as np

from model import calibration, outliers, screening, shape_check
from pipeline import idx


def test_score_is_the_trained_networks_sigmoid_after_a_trip_through_json():
    import keras

    keras.utils.set_random_seed(4)
    network = shape_check.network()
    pixels = np.random.default_rng(0).integers(0, 256, (16, 28, 28)).astype(np.uint8)
    weights = json.loads(json.dumps(shape_check.encode(network)))  # as calibration.json holds it
    expected = keras.ops.sigmoid(network(pixels[..., None] / 255.0))[:, 0]
    np.testing.assert_allclose(shape_check.score(pixels, weights), expected, atol=1e-5)
    assert len(weights["layers"]) == len(shape_check.FILTERS) + 2


def test_members_score_their_networks_mean_sigmoid():
    import keras

    pixels = np.random.default_rng(1).integers(0, 256, (16, 28, 28)).astype(np.uint8)
    networks = []
    for seed in (5, 6):
        keras.utils.set_random_seed(seed)
        networks.append(shape_check.network())
    members = [shape_check.encode(network) for network in networks]
    weights = json.loads(json.dumps(shape_check.combine(members)))  # as calibration.json
    sigmoids = [keras.ops.sigmoid(n(pixels[..., None] / 255.0))[:, 0] for n in networks]
    got = shape_check.score(pixels, weights).numpy()
    np.testing.assert_allclose(got, np.mean(sigmoids, axis=0), atol=1e-5)
    # two networks of different seeds disagree, so the mean is neither of them
    alone = [shape_check.score(pixels, member).numpy() for member in members]
    assert all(np.abs(got - one).max() > 1e-3 for one in alone)


def test_briefly_trained_it_scores_unseen_outliers_above_unseen_digits(mnist_dir):
    images = idx.parse_images(
        "train", idx.read_bytes(str(mnist_dir / "train-images-idx3-ubyte.gz"))
    )
    digits, held_out_digits = images[:3000], images[50_000:51_000]
    not_digits = outliers.pool(digits, 1600, seed=0)
    config = shape_check.ShapeCheckConfig(epochs=4)
    weights = shape_check.train(digits, not_digits[:1200], config)
    digit_scores = shape_check.score(held_out_digits, weights).numpy()
    outlier_scores = shape_check.score(not_digits[1200:], weights).numpy()
    assert calibration.auroc(outlier_scores, digit_scores) > 0.9
    # and the screen, its limits fitted on digits, gives them the reason odd_shape
    measured = {k: v.numpy() for k, v in screening.features(held_out_digits, weights).items()}
    screen = screening.fit(measured, np.eye(10)[np.zeros(1000, int)], 0.02, weights)
    judged = screening.assess(
        np.eye(10)[np.zeros(400, int)], not_digits[1200:], screen
    )  # a classifier sure of every one: only the input checks speak
    odd = (judged["reasons"].numpy() & (1 << screening.REASONS.index("odd_shape"))) > 0
    assert odd.mean() > 10 * 0.02  # ten times the share of digits all checks may flag


def test_trained_with_damaged_copies_it_scores_blurred_digits_as_digits(mnist_dir):
    """Damage tells it nothing when both sides are damaged alike (digits train's
    --check-damage-share): far fewer of the suite's glass-blurred digits, never trained
    on, score above almost every clean digit, and not-a-digit images it has not seen
    still score above digits."""
    from evaluation import suites
    from model.images import normalise_all
    from training import calibrate

    images = idx.parse_images(
        "train", idx.read_bytes(str(mnist_dir / "train-images-idx3-ubyte.gz"))
    )
    digits, held_out = images[:8000], images[50_000:50_500]
    blurred = normalise_all(suites.corrupt("glass_blur", held_out)[..., None])
    unseen = outliers.pool(images[40_000:41_000], 400, seed=9)
    scores = {}
    for share in (0.0, 1.0):
        config = calibrate.CalibrationConfig(
            check_damage_share=share,
            shape_check=shape_check.ShapeCheckConfig(epochs=3, max_outliers=3000),
        )
        weights = calibrate.train_shape_check(digits, config)
        scores[share] = {
            name: shape_check.score(pixels, weights).numpy()
            for name, pixels in (("digits", held_out), ("blurred", blurred), ("unseen", unseen))
        }
    # The share of blurred digits above what all but 2% of clean ones score (the review
    # limit's place): 28% trained on clean digits, 8% trained on damaged ones too (here).
    above = {
        share: np.mean(got["blurred"] > np.quantile(got["digits"], 0.98))
        for share, got in scores.items()
    }
    assert above[0.0] > 0.2 and above[1.0] < above[0.0] / 2, above
    assert calibration.auroc(scores[1.0]["unseen"], scores[1.0]["digits"]) > 0.9
