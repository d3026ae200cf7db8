"""make bench-recipes reuses a model only when the bench would train that very model."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench import recipes_bench
from common import files, schema
from evaluation.evaluate import Suites


def _made(data_dir, model_dir, config: dict) -> None:
    """A model folder as `digits train` leaves it, as far as the bench reads it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    manifest = files.sha256_file(str(data_dir / schema.MANIFEST_FILE))
    recipe = {k: v for k, v in config.items() if k not in recipes_bench.CALIBRATION_KEYS}
    screen = {"ranking": config["ranking"], "fitted": {}}
    if "check_damage_share" in config:  # absent: fitted before damaged digits were used
        screen["fitted"]["check_damage_share"] = config["check_damage_share"]
    screen["fitted"]["shape_review_share"] = config.get("shape_review_share", 0.02)
    if "shape_check_members" in config:  # absent: fitted with one shape check network
        screen["fitted"]["shape_check_members"] = config["shape_check_members"]
    for key in ("shape_check_kinds", "shape_review_up_to", "keep_accepted"):
        if key in config:  # absent: fitted before it was recorded
            screen["fitted"][key] = config[key]
    metrics = {"dataset_manifest_sha256": manifest, "config": recipe,
               "calibration": {"screen": screen}}  # fmt: skip
    (model_dir / "metrics.json").write_text(json.dumps(metrics))


def test_a_model_trained_with_other_numbers_or_data_is_not_reused(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / schema.MANIFEST_FILE).write_text('{"splits": {}}')
    strong = recipes_bench.training_config(str(data_dir), "strong", 1, ())
    assert strong["seed"] == 1 and strong["model"] == "strong"
    model = tmp_path / "models" / recipes_bench.folder_name("strong", 1)
    _made(data_dir, model, strong)
    recipes_bench.same_run(str(data_dir), str(model), strong)  # the same: reused
    older = {k: v for k, v in strong.items() if k != "second_look_below"}
    _made(data_dir, model, older)  # trained before the second look: it had none, as now
    recipes_bench.same_run(str(data_dir), str(model), strong)
    robust = recipes_bench.training_config(str(data_dir), "robust", 1, ())
    _made(data_dir, model, {k: v for k, v in robust.items() if k != "second_look_below"})
    with pytest.raises(SystemExit, match=r"with second_look_below 0\.0 \(now 0\.8\)"):
        recipes_bench.same_run(str(data_dir), str(model), robust)
    _made(data_dir, model, strong)

    unsmoothed = ("--label-smoothing", "0")
    other = recipes_bench.training_config(str(data_dir), "strong", 1, unsmoothed)
    with pytest.raises(
        SystemExit, match=r"strong-1 was trained with label_smoothing 0\.1 \(now 0"
    ) as stop:
        recipes_bench.same_run(str(data_dir), str(model), other)
    assert "digits calibrate" not in str(stop.value)  # another network: train it again
    assert recipes_bench.folder_name("strong", 1, unsmoothed) == "strong_label-smoothing_0-1"

    _made(data_dir, model, {**strong, "ranking": "confidence"})  # calibrated the older way
    with pytest.raises(SystemExit, match=r"strong-1 was trained with ranking confidence \(now top"):
        recipes_bench.same_run(str(data_dir), str(model), strong)

    before = {k: v for k, v in strong.items() if k != "check_damage_share"}
    _made(data_dir, model, before)  # input checks fitted on clean digits only
    with pytest.raises(SystemExit, match=r"with check_damage_share 0\.0 \(now 0\.25\)") as stop:
        recipes_bench.same_run(str(data_dir), str(model), strong)
    assert "digits calibrate --model" in str(stop.value)  # the network can be kept

    _made(data_dir, model, {**strong, "shape_review_share": 0.02})  # half as many reviewed
    with pytest.raises(SystemExit, match=r"with shape_review_share 0\.02 \(now 0\.04\)") as stop:
        recipes_bench.same_run(str(data_dir), str(model), strong)
    assert "digits calibrate --model" in str(stop.value)
    assert "--keep-shape-check" in str(stop.value)  # the shape check is the one it would train

    fixed = {k: v for k, v in strong.items() if k not in ("shape_review_up_to", "keep_accepted")}
    _made(data_dir, model, fixed)  # fitted when the shape check reviewed a fixed share
    with pytest.raises(SystemExit, match=r"with shape_review_up_to None \(now 0\.08\), keep_"):
        recipes_bench.same_run(str(data_dir), str(model), strong)

    one = {k: v for k, v in strong.items() if k != "shape_check_members"}
    _made(data_dir, model, one)  # its shape check one network, from before there were three
    with pytest.raises(SystemExit, match=r"with shape_check_members 1 \(now 3\)") as stop:
        recipes_bench.same_run(str(data_dir), str(model), strong)
    assert "digits calibrate --model" in str(stop.value)
    assert "--keep-shape-check" not in str(stop.value)  # another shape check: trained again

    assert "printed_letter" in strong["shape_check_kinds"]
    unprinted = [k for k in strong["shape_check_kinds"] if k != "printed_letter"]
    _made(data_dir, model, {**strong, "shape_check_kinds": unprinted})  # an older pool
    with pytest.raises(SystemExit, match=r"with shape_check_kinds \[.*'polyline'\] \(now") as stop:
        recipes_bench.same_run(str(data_dir), str(model), strong)
    assert "digits calibrate --model" in str(stop.value)
    _made(data_dir, model, {k: v for k, v in strong.items() if k != "shape_check_kinds"})
    with pytest.raises(SystemExit, match=r"with shape_check_kinds None \(now"):
        recipes_bench.same_run(str(data_dir), str(model), strong)  # kinds unknown: fit again

    (data_dir / schema.MANIFEST_FILE).write_text('{"splits": {"train": {}}}')
    with pytest.raises(SystemExit, match="strong-1 was trained on another dataset"):
        recipes_bench.same_run(str(data_dir), str(model), strong)


def test_candidate_options_are_checked_before_any_training(tmp_path):
    with pytest.raises(SystemExit, match="the bench sets --seed itself"):
        recipes_bench.check_options(str(tmp_path), "robust", ("--seed", "3"))
    with pytest.raises(SystemExit, match="--damage-share must be between 0 and 1, got 2"):
        recipes_bench.check_options(str(tmp_path), "robust", ("--damage-share", "2"))
    with pytest.raises(SystemExit, match="--check-damage-share must be between 0 and 1, got 2"):
        recipes_bench.check_options(str(tmp_path), "robust", ("--check-damage-share", "2"))
    recipes_bench.check_options(str(tmp_path), "robust", ("--members", "4"))


def _evaluation(not_accepted: dict, reviewed: float = 0.04) -> dict:
    """evaluation.json as `digits evaluate` writes it, as far as the bench reads it;
    `reviewed`: the share of validation digits the shape check was fitted to review."""
    share = {"accepted_share": 0.96, "error_among_accepted": 0.0003}
    statuses = {"accepted": 0.9, "review": 0.09, "not_a_digit": 0.01}
    return {
        "accuracy": 0.996,
        "calibration": {
            "test_statuses": {"accepted": 9600, "review": 391, "not_a_digit": 9},
            "test_at_threshold": share,
            "validation_at_threshold": share,
            "validation_ceiling": share,
            "test_not_a_digit_share": 0.0009,
            "screen": {"fitted": {"shape_reviewed": reviewed}},
        },
        "robustness": {
            "corruptions": {
                "mean_accuracy": 0.95,
                "per_corruption": {"stripe": {"accuracy": 0.85, "statuses": statuses}},
            },
            "low_resolution": {
                "worst_shortfall_points": 0.1,
                "per_side": {"8": {"normalised_statuses": statuses}},
            },
            "not_a_digit": {"per_kind": {k: {"not_accepted": v} for k, v in not_accepted.items()}},
        },
    }


def test_the_bench_names_the_not_a_digit_kinds_least_often_kept_out(capsys):
    # Issue 21 asks for 95% of *every* kind: the line names the worst kinds (each the
    # median over the seeds), not one share without a name.
    seeds = [
        {"blank": 1.0, "letters": 0.99, "scribble": 0.94, "smudge": 0.965},
        {"blank": 1.0, "letters": 0.95, "scribble": 0.935, "smudge": 0.95},
        {"blank": 1.0, "letters": 0.965, "scribble": 0.915, "smudge": 0.95},
    ]
    seeds[0]["new_kind"] = 0.98  # judged with a kind the others were not: left out
    reviewed = [0.063, 0.04, 0.061]  # the share the shape check reviews, fitted per model
    judged = [_evaluation(s, r) for s, r in zip(seeds, reviewed, strict=True)]
    runs = [recipes_bench.figures(evaluation, 900.0, True) for evaluation in judged]
    result = {
        "seeds": [0, 1, 2],
        "options": [],
        "runs": runs,
        "median": recipes_bench.medians(runs),
    }
    assert result["median"]["not_accepted_by_kind"]["letters"] == 0.965
    assert "new_kind" not in result["median"]["not_accepted_by_kind"]
    recipes_bench.print_figures("robust", result, result)
    line = capsys.readouterr().out.splitlines()[0]
    assert "worst kind 93.5% not accepted (scribble 93.5%, smudge 95.0%, letters 96.5%)" in line
    assert "with no bound, the shape check reviewing 6.1%)" in line  # the median of the three


def test_a_report_judged_with_other_suite_sizes_is_judged_again(tmp_path, capsys):
    model = tmp_path / "robust-0"
    report = tmp_path / "robust-0-report"
    report.mkdir()
    evaluation = _evaluation({"letters": 0.96})
    sizes = Suites()  # digits evaluate's defaults
    evaluation["robustness"]["sample"] = {"test_digits": sizes.size, "seed": sizes.seed}
    evaluation["robustness"]["not_a_digit"]["count_per_kind"] = sizes.per_kind
    (report / "evaluation.json").write_text(json.dumps(evaluation))
    assert recipes_bench.judged(str(tmp_path), str(model))["accuracy"] == 0.996  # reused

    evaluation["robustness"]["not_a_digit"]["count_per_kind"] = 200  # the suites of before
    (report / "evaluation.json").write_text(json.dumps(evaluation))
    with pytest.raises(subprocess.CalledProcessError) as failed:  # no such model to judge
        recipes_bench.judged(str(tmp_path), str(model))
    assert "jobs.evaluate" in failed.value.cmd and str(model) in failed.value.cmd
    said = capsys.readouterr().out
    old, now = "(2000, 200, 0)", f"(2000, {sizes.per_kind}, 0)"
    assert f"suites of {old} (test digits, images per not-a-digit kind, seed), not {now}" in said
