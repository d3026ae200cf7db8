"""Training benchmarks, each contender against its baseline in the same run.

    python -m bench.train_bench input   --data out/data     # input pipeline alone
    python -m bench.train_bench epochs  --data out/data     # streamed vs the notebook's NumPy fit
    python -m bench.train_bench seed    --data out/data     # seed: test accuracy, time to 99%
    python -m bench.train_bench strong  --data out/data     # strong: 3 seeds, median, time to 99%

`make bench` runs them all (with the preprocessing and scoring benchmarks). Results are
printed and saved under out/bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from bench.common import save, timed


def bench_input(data_dir: str, batch_size: int = 64, repeat: int = 3) -> dict:
    """Examples/s of the training input alone: shards -> shuffle -> batch -> parse."""
    from model import data

    rates = []
    for _ in range(repeat):
        dataset = data.supervised(data_dir, "train", batch_size, training=True, verify=False)
        started, count = time.perf_counter(), 0
        for images, _ in dataset:
            count += int(images.shape[0])
        rates.append(count / (time.perf_counter() - started))
    result = {
        "examples_per_second": statistics.median(rates),
        "runs": rates,
        "batch_size": batch_size,
    }
    print(
        f"input pipeline (train split, batch {batch_size}, batch-then-parse): "
        f"{result['examples_per_second']:,.0f} examples/s (median of {repeat})"
    )
    return result


def _in_memory_arrays(data_dir: str):
    """The notebook's data: every image and one-hot label in NumPy (read here from the shards)."""
    from model import data

    splits = {}
    for split in ("train", "validation"):
        batches = list(data.supervised(data_dir, split, 10_000))
        splits[split] = (
            np.concatenate([b[0].numpy() for b in batches]),
            np.concatenate([b[1].numpy() for b in batches]),
        )
    return splits


def bench_epochs(data_dir: str, epochs: int = 6) -> dict:
    """Seed model: streamed from shards (our job) vs the notebook's in-memory NumPy fit."""
    import keras

    from model import data
    from model.configs import recipe
    from training.train import compile_model, plan_devices

    config = recipe("seed")
    plan = plan_devices([], "float32", False)
    arrays = _in_memory_arrays(data_dir)
    seconds = {"streamed": [], "in_memory": []}
    for epoch in range(epochs):  # alternate the order (ABBA), so machine noise hits both alike
        for mode in ("streamed", "in_memory")[:: 1 if epoch % 2 == 0 else -1]:
            keras.utils.set_random_seed(epoch)
            model = compile_model(config, plan, steps_per_epoch=860)
            started = time.perf_counter()
            if mode == "streamed":
                model.fit(
                    data.supervised(data_dir, "train", 64, training=True, seed=epoch),
                    validation_data=data.supervised(data_dir, "validation", 64),
                    epochs=1,
                    verbose=0,
                    shuffle=False,
                )
            else:
                model.fit(
                    *arrays["train"],
                    batch_size=64,
                    validation_data=arrays["validation"],
                    epochs=1,
                    verbose=0,
                )
            seconds[mode].append(time.perf_counter() - started)
    median = {mode: statistics.median(times) for mode, times in seconds.items()}
    n = len(arrays["train"][0])
    result = {
        "seconds": seconds,
        "median_seconds": median,
        "examples_per_second": {m: n / s for m, s in median.items()},
        "ratio_streamed_to_in_memory": median["streamed"] / median["in_memory"],
    }
    print(
        f"seed epoch ({n:,} images, batch 64), median of {epochs}: streamed from shards "
        f"{median['streamed']:.1f} s ({n / median['streamed']:,.0f} ex/s), in-memory NumPy "
        f"{median['in_memory']:.1f} s ({n / median['in_memory']:,.0f} ex/s); "
        f"ratio {result['ratio_streamed_to_in_memory']:.3f}"
    )
    return result


def time_to(history: list[dict], target: float = 0.99) -> float | None:
    """Training seconds until validation accuracy first reaches `target`."""
    elapsed = 0.0
    for entry in history:
        elapsed += entry["seconds"]
        if entry["val_accuracy"] >= target:
            return elapsed
    return None


def train_runs(data_dir: str, model: str, seeds: list[int], epochs: int | None = None) -> dict:
    runs = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as out:
            command = [
                sys.executable,
                "-m",
                "jobs.train",
                "--data",
                data_dir,
                "--output",
                out,
                "--recipe",
                model,
                "--seed",
                str(seed),
            ]
            command += ["--epochs", str(epochs)] if epochs else []
            wall = timed(command)
            with open(os.path.join(out, "metrics.json")) as handle:
                metrics = json.load(handle)
        run = {
            "seed": seed,
            "test_accuracy": metrics["test"]["accuracy"],
            "validation_accuracy": metrics["validation"]["accuracy"],
            "chosen_epoch": metrics["chosen_epoch"],
            "wall_seconds": wall,
            "train_seconds": sum(e["seconds"] for e in metrics["epochs"]),
            "seconds_to_99_validation": time_to(metrics["epochs"]),
        }
        runs.append(run)
        print(
            f"  {model} seed {seed}: test {run['test_accuracy']:.4f}, validation "
            f"{run['validation_accuracy']:.4f} (epoch {run['chosen_epoch']}), "
            f"{wall:.0f} s end to end, 99% validation after "
            f"{run['seconds_to_99_validation'] or 0:.0f} s",
            flush=True,
        )
    result = {
        "runs": runs,
        "median_test_accuracy": statistics.median(r["test_accuracy"] for r in runs),
        "median_wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
    }
    print(
        f"{model}: median test accuracy {result['median_test_accuracy']:.4f} over seeds "
        f"{seeds}; median {result['median_wall_seconds']:.0f} s per run end to end"
    )
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["input", "epochs", "seed", "strong", "all"])
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per mode for `epochs`")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.which in ("input", "all"):
        save("input", bench_input(args.data))
    if args.which in ("epochs", "all"):
        save("epochs", bench_epochs(args.data, args.epochs))
    if args.which in ("seed", "all"):
        save("seed", train_runs(args.data, "seed", seeds[:1]))
    if args.which in ("strong", "all"):
        save("strong", train_runs(args.data, "strong", seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
