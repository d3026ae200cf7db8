"""make bench-recipes reuses a model only when the bench would train that very model."""

from __future__ import annotations

import json

import pytest

from bench import recipes_bench
from common import files, schema


def _made(data_dir, model_dir, config: dict) -> None:
    """A model folder as `digits train` leaves it, as far as the bench reads it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    manifest = files.sha256_file(str(data_dir / schema.MANIFEST_FILE))
    recipe = {k: v for k, v in config.items() if k not in recipes_bench.CALIBRATION_KEYS}
    screen = {"ranking": config["ranking"], "fitted": {}}
    if "check_damage_share" in config:  # absent: fitted before damaged digits were used
        screen["fitted"]["check_damage_share"] = config["check_damage_share"]
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
