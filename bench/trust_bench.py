"""Predictions a team can act on, measured with the full recipes (seed and strong):

    python -m bench.trust_bench --data out/data [--models out/bench/trust]

For each model (trained with its full recipe into MODELS/<name> unless already there, then
`digits evaluate` with the default suites: 2,000 test digits, 1,000 images per not-a-digit
kind): ECE before and after temperature scaling, coverage at the 0.1% target, the AUROC of
misclassified-vs-correct and of not-a-digit-vs-digit, the share of each not-a-digit kind
not accepted, the share of MNIST test digits flagged, mean corruption accuracy and the
scanned-vs-clean gap. Then scoring throughput with the new fields (statuses) against the
same pipeline without them, on the same 20,000 PNG files, alternating (ABBA), as the
median of ten pairs' ratios, and the time the drift statistics take for those files
against the pipeline's.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import tempfile
import time

from bench.common import save, timed
from bench.score_bench import ensure_pngs

MODELS = ("seed", "strong")


def ensure_evaluated(data_dir: str, models_dir: str, name: str) -> dict:
    model, report = os.path.join(models_dir, name), os.path.join(models_dir, name + "-report")
    if not os.path.exists(os.path.join(model, "metrics.json")):
        timed([sys.executable, "-m", "jobs.train", "--data", data_dir, "--output", model,
               "--recipe", name])  # fmt: skip
    if not os.path.exists(os.path.join(report, "evaluation.json")):
        timed([sys.executable, "-m", "jobs.evaluate", "--data", data_dir, "--model", model,
               "--output", report])  # fmt: skip
    with open(os.path.join(report, "evaluation.json")) as handle:
        return json.load(handle)


def figures(evaluation: dict) -> dict:
    c, r = evaluation["calibration"], evaluation["robustness"]
    kinds = r["not_a_digit"]["per_kind"]
    return {
        "test_accuracy": evaluation["accuracy"],
        "ece_before": c["test_ece_before"],
        "ece_after": c["test_ece_after"],
        "temperature": c["temperature"],
        "coverage_at_target": c["test_at_threshold"]["accepted_share"],
        "error_among_accepted": c["test_at_threshold"]["error_among_accepted"],
        "target_error": c["target_error"],
        "threshold_rule": c.get("threshold_rule", "point"),
        "misclassified_auroc": c["misclassified_auroc"],
        "not_a_digit_auroc": {k: v["auroc"] for k, v in kinds.items()},
        "not_accepted": {k: v["not_accepted"] for k, v in kinds.items()},
        "digits_flagged": c["test_not_a_digit_share"],
        "digits_accepted": c["test_statuses"]["accepted"] / sum(c["test_statuses"].values()),
        "mean_corruption_accuracy": r["corruptions"]["mean_accuracy"],
        "scan_gap_points": r["scans"]["gap_points"],
        "scan_accuracy": r["scans"]["scanned_accuracy"],
        "scan_clean_accuracy": r["scans"]["clean_accuracy"],
    }


def print_figures(name: str, f: dict) -> None:
    print(
        f"{name}: test accuracy {f['test_accuracy']:.2%}; ECE {f['ece_before']:.2%} -> "
        f"{f['ece_after']:.2%} (T = {f['temperature']:.3f}); coverage at the "
        f"{f['target_error']:.1%} target ({f['threshold_rule']} rule) "
        f"{f['coverage_at_target']:.1%} "
        f"(error among accepted {f['error_among_accepted']:.3%}); misclassified AUROC "
        f"{f['misclassified_auroc']:.4f}; MNIST test digits flagged not_a_digit "
        f"{f['digits_flagged']:.2%}, accepted {f['digits_accepted']:.1%} (every check)"
    )
    for kind, share in f["not_accepted"].items():
        print(f"  {kind:<14} not accepted {share:6.1%}   AUROC {f['not_a_digit_auroc'][kind]:.4f}")
    print(
        f"  mean corruption accuracy {f['mean_corruption_accuracy']:.2%}; scans "
        f"{f['scan_accuracy']:.2%} vs clean {f['scan_clean_accuracy']:.2%}: gap "
        f"{f['scan_gap_points']:.2f} points"
    )


def pipeline_seconds(model: str, paths_glob: str, screened: bool) -> float:
    """The scoring pipeline (digits score's own wiring) with or without the statuses."""
    import apache_beam as beam

    from model.serving import Predictor, keras_path, model_id
    from scoring import night
    from scoring.inputs import list_inputs

    config = night.ScoreConfig(model=model, inputs=(paths_glob,), output="unused")
    identifier = model_id(keras_path(model))
    factory = functools.partial(Predictor, model, screened=screened)
    with tempfile.TemporaryDirectory() as staging:
        inputs = list_inputs(config.inputs, identifier, staging + "/lists", config.batch_size)
        started = time.perf_counter()
        with beam.Pipeline() as p:
            night.build(p, config, identifier, inputs, staging, factory)
        return time.perf_counter() - started


@contextlib.contextmanager
def warm_pngs(data_dir: str, count: int, model: str):
    """The first `count` PNGs (score_bench.ensure_pngs) linked into a temporary folder ->
    (their glob, how many), after one run with `model` that is not timed: the first
    pipeline of a process pays for reading the files from disk into the page cache and for
    Beam's and TensorFlow's first set-up, and the first pair's ratio fell 0.1-0.15 under
    the others' for it (AMD EPYC, 2026-12-05: 0.58-0.62 against 0.65-0.76, three runs)."""
    paths = ensure_pngs(data_dir)[:count]
    with tempfile.TemporaryDirectory() as folder:
        for path in paths:
            os.link(path, os.path.join(folder, os.path.basename(path)))
        pipeline_seconds(model, folder + "/*.png", screened=True)
        yield folder + "/*.png", len(paths)


def throughput(model: str, data_dir: str, count: int = 20_000, repeat: int = 10) -> dict:
    """Both pipelines on the same files, `repeat` times each, alternating (ABBA...). The
    ratio is the median over the pairs run back to back (without / with): the machine's
    speed drifts between minutes by more than the cost measured, and each pair shares its
    minute. The ratio of the two medians is reported beside it. After a run not timed
    (warm_pngs)."""
    with warm_pngs(data_dir, count, model) as (pngs, images):
        seconds = {"with_statuses": [], "without": []}
        for i in range(repeat):
            for mode in ("with_statuses", "without")[:: 1 if i % 2 == 0 else -1]:
                seconds[mode].append(pipeline_seconds(model, pngs, mode == "with_statuses"))
    median = {mode: statistics.median(s) for mode, s in seconds.items()}
    pairs = [a / b for a, b in zip(seconds["without"], seconds["with_statuses"], strict=True)]
    result = {
        "images": images,
        "seconds": seconds,
        "images_per_second": {mode: images / s for mode, s in median.items()},
        "pair_ratios": pairs,
        "ratio": statistics.median(pairs),
        "ratio_of_medians": median["without"] / median["with_statuses"],
    }
    rate = result["images_per_second"]
    print(
        f"scoring {images:,} PNGs (DirectRunner, {repeat} pairs): with statuses "
        f"{rate['with_statuses']:,.0f}/s, without {rate['without']:,.0f}/s (medians); ratio "
        f"{result['ratio']:.3f}, median of the pairs (target at least 0.9; pairs "
        f"{min(pairs):.3f}-{max(pairs):.3f}; ratio of the medians "
        f"{result['ratio_of_medians']:.3f})"
    )
    return result


def drift_cost(paths_glob_folder: list[str], pipeline_seconds_with: float) -> dict:
    """Seconds spent on the drift statistics (input facts per image, histograms per batch of
    256) for the same files, against the nightly pipeline's seconds."""
    import numpy as np

    from model import images
    from monitoring import drift

    arrays = []
    for path in paths_glob_folder:
        with open(path, "rb") as handle:
            arrays.append(images.decode(handle.read()))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for first in range(0, len(arrays), 256):
        batch = arrays[first : first + 256]
        facts = images.input_facts(batch)
        n = len(batch)
        drift.histograms(facts, rng.random(n) * 0.3, rng.integers(0, 10, n), rng.random(n),
                         rng.integers(0, 3, n))  # fmt: skip
    seconds = time.perf_counter() - started
    share = seconds / pipeline_seconds_with
    print(
        f"drift statistics for {len(arrays):,} images: {seconds:.2f} s, "
        f"{share:.1%} of the nightly pipeline's {pipeline_seconds_with:.1f} s (target at most 5%)"
    )
    return {"seconds": seconds, "pipeline_seconds": pipeline_seconds_with, "share": share}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--models", default="out/bench/trust")
    args = parser.parse_args(argv)
    results = {}
    for name in MODELS:
        results[name] = figures(ensure_evaluated(args.data, args.models, name))
        print_figures(name, results[name])
    results["throughput"] = throughput(os.path.join(args.models, "seed"), args.data)
    with_statuses = statistics.median(results["throughput"]["seconds"]["with_statuses"])
    paths = ensure_pngs(args.data)[: results["throughput"]["images"]]
    results["drift_cost"] = drift_cost(paths, with_statuses)
    save("trust", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
