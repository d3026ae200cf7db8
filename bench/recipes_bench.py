"""The recipes side by side, in one run: what each buys in accepted digits, robustness and
time (issue 21's figures):

    python -m bench.recipes_bench --data out/data [--models out/bench/recipes]
        [--recipes seed,strong,robust] [--seeds 0,1,2] [--options "--members 4"]

Each recipe is trained with seed 0 (the last one named, the candidate, with every seed of
--seeds, and with the `digits train` options of --options, if given, in place of the
recipe's own numbers) into MODELS/<recipe>-<seed> (with --options "--members 4":
MODELS/<recipe>_members_4-<seed>) and judged by `digits evaluate` with the default
suites (2,000 test digits per corruption, 1,000 images per not-a-digit kind; a report
judged with other sizes is judged again). Printed per
recipe: test accuracy (the median over its seeds), the share of MNIST's test digits
accepted at the default target by every check and by the confidence threshold alone, the
error among the accepted, mean and worst corruption accuracy, the worst low-resolution
shortfall against a plain resize, the damaged digits the input checks call not_a_digit
(corrupted: the mean share; low resolution: the worst size's), the not-a-digit figures,
training time end to end (and its ratio to the first recipe's: a recipe may cost at most
6x seed's); then
scoring throughput of the candidate against the one before it (the same PNG files,
alternating, median of the pairs' ratios). A model already trained and judged in MODELS
is reused, with the training time its run measured, marked as such (so a run cut short
goes on where it stopped), but only if it was trained on DATA itself with the recipe the
bench would train now (and its review threshold set on the same ranking score, its input
checks fitted with as many damaged digits, the same shape review share and as many
shape check networks): one made from another dataset or with other numbers stops the
run, naming the folder and the numbers (and, where only the calibration differs, how to
keep the network).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys

from bench.common import save, timed
from bench.trust_bench import pipeline_seconds, warm_pngs
from common import files, schema


def folder_name(recipe: str, seed: int, options: tuple[str, ...] = ()) -> str:
    """robust-0; with options ("--label-smoothing", "0.1"): robust_label-smoothing_0.1-0."""
    return "_".join([recipe, *(o.lstrip("-") for o in options)]) + f"-{seed}"


def trained(
    data_dir: str, models_dir: str, recipe: str, seed: int, options: tuple[str, ...] = ()
) -> tuple[str, float, bool]:
    """The model folder, the wall seconds its training took (measured once) and whether
    this run measured them (False: reused from an earlier run)."""
    model = os.path.join(models_dir, folder_name(recipe, seed, options))
    clock = model + ".seconds"
    timed_here = not os.path.exists(os.path.join(model, "metrics.json"))
    if timed_here:
        seconds = timed([sys.executable, "-m", "jobs.train",
                         *train_argv(data_dir, model, recipe, seed), *options])  # fmt: skip
        with open(clock, "w") as handle:
            handle.write(f"{seconds}\n")
    same_run(data_dir, model, training_config(data_dir, recipe, seed, options))
    with open(clock) as handle:
        return model, float(handle.read()), timed_here


# training_config's, not the recipe's
CALIBRATION_KEYS = {
    "ranking",
    "check_damage_share",
    "shape_review_share",
    "shape_review_up_to",
    "keep_accepted",
    "shape_check_members",
    "shape_check_kinds",
}


# what the shape check was trained with: a calibration that changes none keeps it
SHAPE_CHECK_KEYS = {"check_damage_share", "shape_check_members", "shape_check_kinds"}


# Recipe fields added since some models were trained: what a model without them did.
ADDED_SINCE = {"second_look_below": 0.0}


def same_run(data_dir: str, model: str, config: dict) -> None:
    """Stops the run when `model` was trained on another dataset than `data_dir`, or with
    another recipe than `config` (a recipe's numbers changed since, other --options)."""
    with open(os.path.join(model, "metrics.json")) as handle:
        metrics = json.load(handle)
    again = "delete that folder to train it again, or give --models another folder"
    trained_on = metrics.get("dataset_manifest_sha256")
    if trained_on != files.sha256_file(os.path.join(data_dir, schema.MANIFEST_FILE)):
        raise SystemExit(
            f"{model} was trained on another dataset than {data_dir} (its manifest's SHA-256 "
            f"differs); {again}"
        )
    from model.screening import Screen  # TensorFlow, imported as late as training_config's

    # A screen fitted before rankings (damaged digits) existed reads as Screen's default (0).
    screen = Screen.from_dict(metrics.get("calibration", {}).get("screen", {}))
    had = {**ADDED_SINCE, **metrics.get("config", {}), "ranking": screen.ranking,
           "check_damage_share": screen.fitted.get("check_damage_share", 0.0),
           "shape_review_share": screen.fitted.get("shape_review_share"),
           "shape_review_up_to": screen.fitted.get("shape_review_up_to"),
           "keep_accepted": screen.fitted.get("keep_accepted"),
           # fitted before the shape check had members: one network
           "shape_check_members": screen.fitted.get("shape_check_members", 1),
           # fitted before the kinds were recorded: unknown, so fitted again
           "shape_check_kinds": screen.fitted.get("shape_check_kinds")}  # fmt: skip
    changed = [k for k, v in config.items() if had.get(k) != v]
    differs = ", ".join(f"{k} {had.get(k)} (now {config[k]})" for k in changed)
    if changed and set(changed) <= CALIBRATION_KEYS:  # the network is the one it would train
        keep = "" if set(changed) & SHAPE_CHECK_KEYS else " --keep-shape-check"
        again += (
            f"; or keep its network and fit the calibration again into a new folder "
            f"(digits calibrate --model {model} --data {data_dir} --output <folder>{keep}), "
            f"then put that folder in its place with {os.path.basename(model)}.seconds "
            "beside it"
        )
    if changed:
        raise SystemExit(f"{model} was trained with {differs}; {again}")


def labels_used(data_dir: str) -> str:
    """How many validation digits calibrate the models (a dataset made before the default
    changed shows here), and their labels: MNIST's, or with corrections."""
    with open(os.path.join(data_dir, schema.MANIFEST_FILE)) as handle:
        manifest = json.load(handle)
    count = f"{manifest['splits']['validation']['records']:,} validation digits"
    if not (fixes := manifest.get("relabelled")):
        return f"{count}, labels as MNIST gives them"
    changed = fixes["labels_changed"]["validation"]
    return f"{count}, MNIST's labels with {changed} corrected ({fixes['file']})"


def judged(data_dir: str, model: str) -> dict:
    """The model's evaluation.json, `digits evaluate` with the default suites; judged again
    where the report there was made with suites of other sizes."""
    from evaluation.evaluate import Suites  # TensorFlow, imported as late as training_config's

    report, want = model + "-report", dataclasses.astuple(Suites())
    path = os.path.join(report, "evaluation.json")
    evaluation = files.read_json(path) if os.path.exists(path) else None
    sizes = suite_sizes(evaluation) if evaluation else None
    if sizes == want:
        return evaluation
    if sizes:
        print(f"{report} was judged with suites of {sizes} (test digits, images per "
              f"not-a-digit kind, seed), not {want}: judging it again")  # fmt: skip
    timed([sys.executable, "-m", "jobs.evaluate", "--data", data_dir, "--model", model,
           "--output", report])  # fmt: skip
    return files.read_json(path)


def suite_sizes(evaluation: dict) -> tuple:
    """(size, per kind, seed) of the suites an evaluation.json was judged with."""
    robustness = evaluation["robustness"]
    sample = robustness["sample"]
    return sample["test_digits"], robustness["not_a_digit"]["count_per_kind"], sample["seed"]


def figures(evaluation: dict, seconds: float, timed_here: bool) -> dict:
    c, r = evaluation["calibration"], evaluation["robustness"]
    corruptions = {k: v["accuracy"] for k, v in r["corruptions"]["per_corruption"].items()}
    worst = min(corruptions, key=corruptions.get)
    by_kind = {k: v["not_accepted"] for k, v in r["not_a_digit"]["per_kind"].items()}
    low = r["low_resolution"]["per_side"].values()
    return {
        "test_accuracy": evaluation["accuracy"],
        "accepted": c["test_statuses"]["accepted"] / sum(c["test_statuses"].values()),
        "accepted_by_threshold": c["test_at_threshold"]["accepted_share"],
        "error_among_accepted": c["test_at_threshold"]["error_among_accepted"],
        # On validation: the threshold's share, and the most any threshold accepts at the
        # target error seen (no bound; None where a calibration predates the figure).
        "validation_accepted": c["validation_at_threshold"]["accepted_share"],
        "validation_ceiling": (c.get("validation_ceiling") or {}).get("accepted_share"),
        # the share of validation digits (and damaged copies) the shape check reviews
        "shape_reviewed": c.get("screen", {}).get("fitted", {}).get("shape_reviewed"),
        "mean_corruption": r["corruptions"]["mean_accuracy"],
        "worst_corruption": [worst, corruptions[worst]],
        "low_resolution_shortfall_points": r["low_resolution"]["worst_shortfall_points"],
        # Digits the input checks lose: damaged ones called not_a_digit, though often read.
        "corrupted_called_not_a_digit": statistics.mean(
            v["statuses"]["not_a_digit"] for v in r["corruptions"]["per_corruption"].values()
        ),
        "low_resolution_called_not_a_digit": max(
            v["normalised_statuses"]["not_a_digit"] for v in low
        ),
        "worst_not_accepted": min(by_kind.values()),
        "not_accepted_by_kind": by_kind,
        "digits_called_not_a_digit": c["test_not_a_digit_share"],
        "training_seconds": seconds,
        "training_timed_in_this_run": timed_here,
    }


def recipe_figures(
    data_dir: str, models_dir: str, recipe: str, seeds: list[int], options: tuple[str, ...] = ()
) -> dict:
    runs = []
    for seed in seeds:
        model, seconds, timed_here = trained(data_dir, models_dir, recipe, seed, options)
        runs.append(figures(judged(data_dir, model), seconds, timed_here))
    return {"seeds": seeds, "options": list(options), "runs": runs, "median": medians(runs)}


def medians(runs: list[dict]) -> dict:
    """Each figure's median over the seeds' runs; the worst corruption of any; per
    not-a-digit kind that every run was judged on, the median share not accepted."""
    apart = ("worst_corruption", "training_timed_in_this_run", "not_accepted_by_kind")
    median = {
        k: None if None in (r[k] for r in runs) else statistics.median(r[k] for r in runs)
        for k in runs[0]
        if k not in apart
    }
    median["worst_corruption"] = min((r["worst_corruption"] for r in runs), key=lambda w: w[1])
    median["not_accepted_by_kind"] = {  # the kinds every seed's evaluation has
        kind: statistics.median(r["not_accepted_by_kind"][kind] for r in runs)
        for kind in runs[0]["not_accepted_by_kind"]
        if all(kind in r["not_accepted_by_kind"] for r in runs)
    }
    return median


def print_figures(recipe: str, result: dict, first: dict) -> None:
    m, n, runs = result["median"], len(result["seeds"]), result["runs"]
    over = f" (median of {n} seeds)" if n > 1 else ""
    recipe = shlex.join([recipe, *result["options"]])
    print(
        f"{recipe}{over}: test accuracy {m['test_accuracy']:.2%}; accepted {m['accepted']:.1%} "
        f"of test digits ({m['accepted_by_threshold']:.1%} by the threshold alone, error "
        f"among them {m['error_among_accepted']:.3%}; {ceiling_text(m)}); corruptions mean "
        f"{m['mean_corruption']:.1%}, worst {m['worst_corruption'][0]} "
        f"{m['worst_corruption'][1]:.1%}; low resolution at worst "
        f"{m['low_resolution_shortfall_points']:.1f} points short of a plain resize; "
        f"damaged digits called not_a_digit: {m['corrupted_called_not_a_digit']:.1%} of "
        f"the corrupted (mean), {m['low_resolution_called_not_a_digit']:.1%} of the "
        "low-resolution (worst size); "
        f"not-a-digit: worst kind {m['worst_not_accepted']:.1%} not accepted "
        f"({worst_kinds_text(m['not_accepted_by_kind'])}), "
        f"{m['digits_called_not_a_digit']:.2%} of digits called not_a_digit; "
        f"training {m['training_seconds']:.0f} s ({ratio_to_first(runs, first)})",
        flush=True,
    )
    if n == 1 and runs[0]["training_timed_in_this_run"]:
        return
    print(
        "  training per seed: "
        + ", ".join(
            f"{seed}: {r['training_seconds']:,.0f} s"
            + ("" if r["training_timed_in_this_run"] else " (timed in an earlier run)")
            for seed, r in zip(result["seeds"], runs, strict=True)
        ),
        flush=True,
    )


def worst_kinds_text(by_kind: dict, count: int = 3) -> str:
    """The `count` not-a-digit kinds least often kept from acceptance, e.g. "scribble 93.5%,
    smudge 95.0%, letters 96.5%"."""
    worst = sorted(by_kind.items(), key=lambda item: item[1])[:count]
    return ", ".join(f"{kind} {share:.1%}" for kind, share in worst)


def ceiling_text(m: dict) -> str:
    """The validation share the threshold accepts, against the network's ceiling there, and
    the share the shape check reviews."""
    ceiling, reviewed = m["validation_ceiling"], m["shape_reviewed"]
    return (
        f"on validation {m['validation_accepted']:.1%}, at most "
        + (
            "unknown (calibrated before the ceiling was recorded)"
            if ceiling is None
            else f"{ceiling:.1%} with no bound"
        )
        + ("" if reviewed is None else f", the shape check reviewing {reviewed:.1%}")
    )


def ratio_to_first(runs: list[dict], first: dict) -> str:
    """Training time against the first recipe's: of the seeds this run timed, where only
    some were (the same machine, the same load), else of all; it says so when the two
    times come from different runs."""
    here = [r["training_seconds"] for r in runs if r["training_timed_in_this_run"]]
    partly = 0 < len(here) < len(runs)
    seconds = statistics.median(here if partly else [r["training_seconds"] for r in runs])
    basis = f", by the {seconds:,.0f} s timed in this run" if partly else ""
    first_here = first["runs"][0]["training_timed_in_this_run"]
    if here and not first_here:
        basis += "; the first recipe's was timed in an earlier run: the ratio mixes two runs"
    return f"{seconds / first['median']['training_seconds']:.1f}x the first recipe's{basis}"


def train_argv(data_dir: str, model: str, recipe: str, seed: int) -> list[str]:
    """The `digits train` options the bench sets itself, before the candidate's."""
    return ["--data", data_dir, "--output", model, "--recipe", recipe, "--seed", str(seed)]


def check_options(data_dir: str, recipe: str, options: tuple[str, ...]) -> None:
    """Stops on an option `digits train` does not know, a value it refuses, or one the bench
    sets itself, before any training starts."""
    flags = {a for a in train_argv(data_dir, "-", recipe, 0) if a.startswith("--")}
    own = flags & {o.split("=")[0] for o in options}
    if own:
        raise SystemExit(f"--options: the bench sets {', '.join(sorted(own))} itself")
    training_config(data_dir, recipe, 0, options)


def training_config(data_dir: str, recipe: str, seed: int, options: tuple[str, ...]) -> dict:
    """The recipe `digits train` trains with these options, as metrics.json records it, the
    score its review threshold is set on and the damaged copies its input checks see."""
    from jobs import train
    from model import outliers

    argv = train_argv(data_dir, "-", recipe, seed)
    try:
        run = train.parse_args([*argv, *options])
    except ValueError as error:
        raise SystemExit(f"--options {shlex.join(options)}: {error}") from None
    checks = run.calibration
    kinds = list(outliers.SHAPE_CHECK_ROUND) if checks.shape_check.epochs > 0 else []
    return {**dataclasses.asdict(run.recipe), "ranking": checks.ranking,
            "check_damage_share": checks.check_damage_share,
            "shape_review_share": checks.shape_review_share,
            "shape_review_up_to": checks.review_at_most,
            "keep_accepted": checks.keep_accepted,
            "shape_check_members": checks.shape_check.members,
            "shape_check_kinds": kinds}  # fmt: skip


def throughput_ratio(candidate: str, before: str, data_dir: str, count: int, pairs: int) -> dict:
    """Scoring the same PNGs with both models, alternating; candidate/before in images per
    second, the median of the pairs run back to back, after a run that is not timed (see
    trust_bench.warm_pngs)."""
    ratios = []
    with warm_pngs(data_dir, count, before) as (pngs, images):
        for i in range(pairs):
            order = (candidate, before) if i % 2 == 0 else (before, candidate)
            seconds = {m: pipeline_seconds(m, pngs, screened=True) for m in order}
            ratios.append(seconds[before] / seconds[candidate])
    ratio = statistics.median(ratios)
    print(f"scoring throughput, {os.path.basename(candidate)} / {os.path.basename(before)}: "
          f"{ratio:.3f} (median of {pairs} pairs, {images:,} PNGs)")  # fmt: skip
    return {"ratio": ratio, "pairs": ratios, "images": images}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--models", default="out/bench/recipes")
    parser.add_argument("--recipes", default="seed,strong,robust")
    parser.add_argument("--seeds", default="0,1,2", help="the last recipe's seeds")
    parser.add_argument(
        "--options", default="", help="the last recipe's `digits train` options, e.g. --members 4"
    )
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args(argv)
    recipes, seeds = args.recipes.split(","), [int(s) for s in args.seeds.split(",")]
    options = tuple(shlex.split(args.options))
    check_options(args.data, recipes[-1], options)
    results = {"labels": labels_used(args.data)}
    print(f"{args.data}: {results['labels']}; test labels as MNIST gives them", flush=True)
    for recipe in recipes:
        last = recipe == recipes[-1]
        chosen, extra = (seeds, options) if last else (seeds[:1], ())
        results[recipe] = recipe_figures(args.data, args.models, recipe, chosen, extra)
        print_figures(recipe, results[recipe], results[recipes[0]])
    if len(recipes) > 1:
        before = os.path.join(args.models, folder_name(recipes[-2], seeds[0]))
        candidate = os.path.join(args.models, folder_name(recipes[-1], seeds[0], options))
        results["throughput"] = throughput_ratio(candidate, before, args.data, 20_000, args.pairs)
    save("recipes", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
