"""A nightly system that notices: drift and skew alarms on injected shifts, quiet on
resamples of the reference; lineage on every prediction and in the summary."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from common import files, schema
from monitoring import drift
from tests.helpers import _mnist_test_digits, _read_lines, run_scorer

NIGHT = drift.MIN_INPUTS  # images a night: the fewest the alarm judges
SHIFTS = ("two_classes", "inverted", "resized", "coloured", "noise")


def test_bootstrap_resamples_of_the_reference_stay_quiet(mnist_model):
    reference = json.loads((mnist_model / schema.REFERENCE_FILE).read_text())["histograms"]
    rng = np.random.default_rng(0)
    trials, alarms = 200, 0
    for _ in range(trials):
        night = {}
        for name, counts in reference.items():
            p = np.asarray(counts, np.float64)
            night[name] = rng.multinomial(drift.MIN_INPUTS, p / p.sum()).tolist()
        rows = drift.compare(night, reference, drift.AGAINST_NIGHTS, "reference")
        alarms += any(row["level"] == "act" for row in rows)
    assert alarms / trials <= 0.05


def test_distances_are_zero_for_the_same_shares_and_grow_with_the_shift():
    same = drift.distance([10, 20, 70], [100, 200, 700])
    assert same["psi"] == pytest.approx(0, abs=1e-9) and same["js"] == pytest.approx(0, abs=1e-6)
    small, large = (
        drift.distance([12, 20, 68], [10, 20, 70]),
        drift.distance([70, 20, 10], [10, 20, 70]),
    )
    assert 0 < small["js"] < large["js"] <= np.sqrt(np.log(2)) and 0 < small["psi"] < large["psi"]
    assert drift.level(large) == "act" and drift.level(small) == "ok"


def _write_night(directory, digits, labels, shift: str | None):
    directory.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        if shift == "two_classes" and label not in (0, 1):
            digit = digits[np.flatnonzero(np.isin(labels, (0, 1)))[i % 50]]
        image = Image.fromarray(digit)
        if shift == "inverted":
            image = Image.fromarray(255 - digit)
        elif shift == "resized":
            image = image.resize((140, 140))
        elif shift == "coloured":
            image = Image.merge("RGB", (image, image.point(lambda v: v // 2), image))
        elif shift == "noise":
            image = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8))
        image.save(directory / f"{i:04d}.png")


@pytest.fixture(scope="module")
def nights(tmp_path_factory, mnist_model, mnist_dataset):
    """One ordinary night (2026-11-01), then for each shift a copy of that output folder
    and the shifted night (2026-11-02) scored into it."""
    root = tmp_path_factory.mktemp("nights")
    digits, labels = _mnist_test_digits(mnist_dataset, 10_000)
    # Drawn from the whole split, like the reference: its two halves are different writers.
    chosen = np.random.default_rng(0).choice(len(labels), NIGHT * 2, replace=False)
    digits, labels = digits[chosen], labels[chosen]
    ordinary, shifted = (digits[:NIGHT], labels[:NIGHT]), (digits[NIGHT:], labels[NIGHT:])
    _write_night(root / "in" / "ordinary", *ordinary, None)
    code = run_scorer(mnist_model, root / "in" / "ordinary" / "*", root / "base", date="2026-11-01")
    results = {"ordinary": {"code": code, "out": root / "base"}}
    for shift in (None, *SHIFTS):
        name = shift or "same"
        _write_night(root / "in" / name, *shifted, shift)
        out = root / name
        shutil.copytree(root / "base", out)
        code = run_scorer(mnist_model, root / "in" / name / "*", out, date="2026-11-02")
        report = json.loads((out / "dt=2026-11-02" / schema.DRIFT_FILE).read_text())
        results[name] = {"code": code, "drift": report, "out": out}
    return results


def test_an_ordinary_night_after_an_ordinary_night_is_quiet(nights):
    assert nights["ordinary"]["code"] == 0 and nights["same"]["code"] == 0
    report = nights["same"]["drift"]
    assert not report["alarm"] and report["trailing_nights"] == ["2026-11-01"]
    against = {(r["histogram"], r["against"]) for r in report["comparisons"]}
    assert ("digit", "trailing_nights") in against and ("ink", "reference") in against
    assert ("digit", "reference") not in against  # class mixes differ from MNIST's


@pytest.mark.parametrize(
    "shift, breach",
    [
        ("two_classes", "digit vs trailing_nights"),
        ("inverted", "inverted vs trailing_nights"),
        ("resized", "size vs trailing_nights"),
        ("coloured", "mode vs trailing_nights"),
        ("noise", "status vs reference"),
    ],
)
def test_injected_shifts_raise_the_alarm_with_exit_status_4(nights, shift, breach):
    result = nights[shift]
    assert result["drift"]["alarm"] and breach in result["drift"]["breaches"]
    assert result["code"] == 4
    partition = result["out"] / "dt=2026-11-02"
    assert (partition / schema.SUCCESS_FILE).exists()  # everything written, then the alarm
    summary = json.loads((partition / schema.SUMMARY_FILE).read_text())
    assert summary["drift_alarm"]["alarm"] and breach in summary["drift_alarm"]["breaches"]


def test_drift_alarm_off_still_reports_but_exits_zero(nights, mnist_model, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(nights["ordinary"]["out"], out)
    inputs = nights["noise"]["out"].parent / "in" / "noise" / "*"
    code = run_scorer(mnist_model, inputs, out, date="2026-11-02", drift_alarm="off")
    assert code == 0
    assert json.loads((out / "dt=2026-11-02" / schema.DRIFT_FILE).read_text())["alarm"]


def test_every_prediction_carries_its_lineage_and_a_renamed_file_is_recognised(
    nights, mnist_model, mnist_dataset, tmp_path
):
    partition = nights["ordinary"]["out"] / "dt=2026-11-01"
    rows = _read_lines(partition, "predictions")
    summary = json.loads((partition / schema.SUMMARY_FILE).read_text())
    lineage = summary["lineage"]
    for row in rows:
        with open(row["key"], "rb") as handle:
            assert row["input_sha256"] == hashlib.sha256(handle.read()).hexdigest()
        assert row["run_id"] == lineage["run_id"] and row["model"] == lineage["model_id"]
    assert lineage["model_sha256"] == files.sha256_file(str(mnist_model / schema.KERAS_FILE))
    assert lineage["dataset_manifest_sha256"] == files.sha256_file(
        str(mnist_dataset / schema.MANIFEST_FILE)
    )
    assert lineage["tensorflow"] and lineage["apache_beam"] and lineage["package_version"]
    assert lineage["temperature"] > 0 and 0 < lineage["threshold"] <= 1
    assert summary["blessing"]["blessed"] and not summary["blessing"]["allowed_unblessed"]
    renamed = tmp_path / "in"
    renamed.mkdir()
    shutil.copy(rows[0]["key"], renamed / "renamed.png")
    assert run_scorer(mnist_model, renamed / "*", tmp_path / "out", date=None) == 0
    again = _read_lines(tmp_path / "out", "predictions")[0]
    assert again["input_sha256"] == rows[0]["input_sha256"]
    assert again["run_id"] != lineage["run_id"]


def test_an_ordinary_night_after_an_alarmed_one_is_quiet(nights, mnist_model):
    """The alarmed night (only 0s and 1s) stays out of the trailing nights it is judged by."""
    out = nights["two_classes"]["out"]
    inputs = out.parent / "in" / "same" / "*"
    assert run_scorer(mnist_model, inputs, out, date="2026-11-03") == 0
    report = json.loads((out / "dt=2026-11-03" / schema.DRIFT_FILE).read_text())
    assert not report["alarm"] and report["trailing_nights"] == ["2026-11-01"]
    assert report["alarmed_nights_left_out"] == ["2026-11-02"]


def test_ordinary_nights_from_any_part_of_the_test_split_stay_quiet(mnist_model, mnist_dataset):
    """MNIST's test split comes in blocks of writers. Nights of 1,500 consecutive digits
    from every part of it against the reference, and nights of 1,000 in order against the
    nights before them: the false-alarm rate on these ordinary nights is zero."""
    from common.counts import merge_counts
    from model import data, images, serving
    from monitoring import nights as drift_check

    pixels = data.split_pixels(str(mnist_dataset), "test", verify=False)
    predicted = serving.Predictor(str(mnist_model)).predict(pixels)
    facts = images.input_facts(list(pixels[..., None]), record=True)

    def night(start: int, size: int) -> dict:
        part = slice(start, start + size)
        fields = ("ink", "digit", "calibrated_confidence", "status")
        return drift.histograms(facts[part], *(predicted[f][part] for f in fields))

    reference = drift_check.load_reference(str(mnist_model), None)
    none = {"nights": [], "histograms": {}}
    judged, alarms = 0, []
    for start in range(0, 8501, 500):
        report = drift_check.check(night(start, 1500), reference, none, drift.MIN_INPUTS)
        judged += 1
        alarms += [(start, breach) for breach in report["breaches"]]
    earlier = []
    for start in range(0, 10_000, 1000):
        tonight = night(start, 1000)
        trailing = {"nights": earlier[-7:], "histograms": merge_counts(earlier[-7:])}
        report = drift_check.check(tonight, None, trailing, drift.MIN_INPUTS)
        judged += bool(earlier)
        alarms += [(start, breach) for breach in report["breaches"]]
        earlier.append(tonight)
    assert judged == 27 and alarms == []  # false-alarm rate 0 of 27 ordinary nights
