"""The input checks and statuses (model/screening.py) on images whose answer is known, and
the test sets of evaluation/suites.py."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import suites
from model import calibration, screening


def stroke(rows=slice(4, 24), cols=slice(12, 15)) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[rows, cols] = 255
    return image


def measure(*images) -> dict:
    return {k: v.numpy() for k, v in screening.features(np.stack(images)).items()}


def sure(confidence) -> np.ndarray:
    """Probabilities [n, 10]: digit 3 at each `confidence`, the rest spread evenly."""
    confidence = np.asarray(confidence, np.float32)
    probabilities = np.repeat(((1 - confidence) / 9)[:, None], 10, axis=1)
    probabilities[:, 3] = confidence
    return probabilities


def test_features_measure_blank_ink_blobs_and_noise():
    blank = np.zeros((28, 28), np.uint8)
    two = stroke(cols=slice(4, 7)) | stroke(cols=slice(20, 23))
    noise = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    m = measure(blank, stroke(), two, noise)
    assert m["peak"].tolist()[:3] == [0.0, 1.0, 1.0]
    assert m["ink"][1] == pytest.approx(60 / 784)
    assert m["second_blob"][1] == 0 and m["second_blob"][2] == pytest.approx(0.5)
    assert m["roughness"][3] > 2 * m["roughness"][1]  # noise is all edges, a stroke is not
    assert m["half_ink"][1] == 0 and m["half_ink"][3] > 0.3
    assert m["aspect"][1] == pytest.approx(3 / 20) and m["aspect"][2] == pytest.approx(19 / 20)


def test_a_blob_touching_diagonally_is_one_stroke():
    image = np.zeros((28, 28), np.uint8)
    for i in range(4, 24):  # a one-pixel diagonal: 8-connected
        image[i, i] = 255
    assert measure(image)["second_blob"][0] == 0


def test_statuses_and_reasons_follow_the_limits():
    screen = screening.Screen(
        threshold=0.9, digit_floor=0.3, ink=(0.02, 0.4), max_second_blob=0.2, max_aspect=1.5
    )
    images = [stroke(), stroke(), stroke(), np.zeros((28, 28), np.uint8)]
    images.append(stroke(cols=slice(4, 7)) | stroke(cols=slice(20, 23)))
    images.append(stroke(rows=slice(10, 18), cols=slice(2, 26)))  # two digits touching
    probabilities = np.full((6, 10), 0.01, np.float32)
    probabilities[:, 3] = [0.91, 0.5, 0.02, 0.91, 0.91, 0.91]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    out = screening.assess(probabilities, np.stack(images), screen)
    status = [screening.STATUSES[s] for s in out["status"].numpy()]
    reasons = [screening.reason_names(int(r)) for r in out["reasons"].numpy()]
    assert status == ["accepted", "review"] + ["not_a_digit"] * 4
    assert reasons[1] == ["low_confidence"]
    assert "unlike_a_digit" in reasons[2]
    assert "blank" in reasons[3] and "several_blobs" in reasons[4]
    assert reasons[5] == ["too_wide"]
    score = out["not_a_digit_score"].numpy()
    assert (score > 1).tolist() == [s == "not_a_digit" for s in status]
    names = screening.as_strings(out)
    assert names["status"].numpy()[1] == b"review"
    assert names["reasons"].numpy()[1] == b"low_confidence"


def test_the_shape_check_sends_unusual_shapes_to_review_and_odd_ones_out():
    screen = screening.Screen(threshold=0.9, max_shape=0.9, review_shape=0.5)
    measured = {k: v.numpy() for k, v in screening.features(np.stack([stroke()] * 3)).items()}
    measured["shape"] = np.array([0.1, 0.6, 0.95], np.float32)  # the check's scores
    out = screening.judge(measured, sure(np.full(3, 0.99)), screen)
    status = [screening.STATUSES[s] for s in out["status"].numpy()]
    reasons = [screening.reason_names(int(r)) for r in out["reasons"].numpy()]
    assert status == ["accepted", "review", "not_a_digit"]
    assert reasons == [[], ["unusual_shape"], ["odd_shape", "unusual_shape"]]


def test_calibrated_confidence_is_temperature_scaling_and_scores_agree():
    probabilities = np.random.default_rng(1).dirichlet(np.ones(10) * 0.3, size=50)
    tf_scaled = screening.calibrate(probabilities.astype(np.float32), 1.7).numpy()
    np.testing.assert_allclose(tf_scaled, calibration.scale(probabilities, 1.7), atol=1e-5)
    for ranking in calibration.RANKINGS:  # the scorer's score is the one calibration fits on
        np.testing.assert_allclose(
            screening.rank(tf_scaled, ranking).numpy(),
            calibration.ranking_score(calibration.scale(probabilities, 1.7), ranking),
            atol=1e-5,
        )
    with pytest.raises(ValueError, match="ranking 'margin': one of top_two, confidence"):
        screening.rank(tf_scaled, "margin")


def test_the_threshold_applies_to_the_screens_ranking():
    # Torn between 3 and 5 at 0.6 / 0.39, against sure of 3 at 0.55 with the rest spread:
    # the top probability prefers the first, the top two's share (0.61 / 0.92) the second.
    torn = np.full(10, 0.01 / 8, np.float32)
    torn[[3, 5]] = 0.6, 0.39
    probabilities = np.stack([torn, sure([0.55])[0]])
    measured = measure(stroke(), stroke())

    def statuses(ranking: str, threshold: float) -> list[int]:
        screen = screening.Screen(threshold=threshold, ranking=ranking)
        return screening.judge(measured, probabilities, screen)["status"].numpy().tolist()

    assert statuses("confidence", 0.58) == [0, 1]  # accepted, review
    assert statuses("top_two", 0.9) == [1, 0]
    assert screening.Screen.from_dict({"threshold": 0.9}).ranking == "confidence"  # older files


def test_fitted_limits_flag_at_most_the_budget_of_the_digits_they_were_fitted_on():
    rng = np.random.default_rng(2)
    n = 2000
    measured = {
        "peak": np.ones(n),
        "ink": rng.uniform(0.05, 0.3, n),
        "second_blob": np.where(rng.random(n) < 0.1, rng.uniform(0, 0.4, n), 0.0),
        "roughness": rng.uniform(0.5, 2.0, n),
        "half_ink": rng.uniform(0.1, 0.4, n),
        "aspect": rng.uniform(0.2, 1.4, n),
        "shape": rng.beta(0.5, 5, n),  # the shape check's scores (its weights are not used)
    }
    confidence = sure(rng.uniform(0.5, 1.0, n))
    for budget in (0.005, 0.02):
        screen = screening.fit(measured, confidence, budget, {"layers": []})
        flagged = screening.judge(measured, confidence, screen)["status"].numpy() == 2
        assert budget / 2 < flagged.mean() <= budget
        assert screen.fitted["flagged_share"] == pytest.approx(flagged.mean())
        assert screen.max_shape < 1.0 and screen.shape_check == {"layers": []}
        assert screen.review_shape == 1.0  # no review share asked for
    reviewed = screening.fit(measured, confidence, 0.01, {"layers": []}, 0.03)
    unusual = measured["shape"] > reviewed.review_shape
    assert 0.025 < unusual.mean() <= 0.03 and reviewed.review_shape < reviewed.max_shape
    without = screening.fit(measured, confidence, 0.01)
    assert without.max_shape == 1.0 and without.shape_check == {}  # no shape check: no limit


def test_auroc_by_ranks():
    assert calibration.auroc([3, 4], [1, 2]) == 1.0
    assert calibration.auroc([1, 2], [3, 4]) == 0.0
    assert calibration.auroc([1, 2], [1, 2]) == 0.5


def digits(n=20) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.stack([stroke(cols=slice(c, c + 3)) for c in rng.integers(6, 20, n)])


@pytest.mark.parametrize("name", list(suites.CORRUPTIONS))
def test_each_corruption_is_deterministic_and_changes_the_digits(name):
    x = digits()
    a, b = suites.corrupt(name, x, seed=5), suites.corrupt(name, x, seed=5)
    assert a.dtype == np.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)
    assert (a != x).any(axis=(1, 2)).mean() > 0.5
    if name not in suites.SEEDLESS:
        assert not np.array_equal(a, suites.corrupt(name, x, seed=6))


def test_there_are_at_least_ten_corruptions_and_every_not_a_digit_kind():
    assert len(suites.CORRUPTIONS) >= 10
    assert set(suites.NOT_A_DIGIT_KINDS) >= {
        "blank", "near_blank", "paper_texture", "smudge", "noise", "letters",
        "other_typefaces", "two_digits", "scribble",
    }  # fmt: skip
    for kind in suites.NOT_A_DIGIT_KINDS:
        made = suites.not_a_digit(kind, 3, digits(), seed=1)
        assert len(made) == 3 and all(m.dtype == np.uint8 and m.ndim == 3 for m in made)
        again = suites.not_a_digit(kind, 3, digits(), seed=1)
        assert all(np.array_equal(a, b) for a, b in zip(made, again, strict=True))


def test_scans_are_jpeg_pages_larger_than_the_digit():
    from model import images

    for data in suites.scan(digits(5), seed=0):
        page = images.decode(data)
        assert data[:2] == b"\xff\xd8" and page.shape[2] == 3 and min(page.shape[:2]) >= 84


def test_uint8_pixel_tests_match_the_shares_of_full_ink():
    pixels = np.arange(256)
    assert ((pixels >= screening.LIT) == (pixels / 255 >= 0.5)).all()
    assert ((pixels >= screening.SEEN) == (pixels / 255 >= 0.1)).all()
    grey = np.zeros((1, 28, 28), np.uint8)
    grey[0, 10:20, 10:20] = 127  # visible, just below half ink: smudge, not stroke
    grey[0, 10:20, 20] = 128
    m = {k: v.numpy() for k, v in screening.features(grey).items()}
    assert m["ink"][0] == pytest.approx(10 / 784) and m["half_ink"][0] == pytest.approx(100 / 110)
