"""Scoring throughput: `digits score` on 70,000 PNG files against a plain in-process loop.

    python -m bench.score_bench --data out/data [--model out/model]

Both sides do the same work per file (read, Pillow decode, the shared normalisation,
batched predict of 256); the loop has no Beam. The 70,000 PNGs (all MNIST splits) are
written once under out/bench/png70k. Without --model a one-epoch seed model is trained.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from bench.common import save, timed

PNG_DIR = "out/bench/png70k"
# The one-epoch bench model is a throughput fixture, not a model to ship: the gate's floors
# are for full recipes, and a bench set is no night to raise a drift alarm about.
BENCH_MODEL_OPTIONS = ["--allow-unblessed", "--drift-alarm", "off"]


def ensure_pngs(data_dir: str) -> list[str]:
    from model.data import write_pngs

    if not os.path.isdir(PNG_DIR) or len(os.listdir(PNG_DIR)) < 70_000:
        for split in ("train", "validation", "test"):
            write_pngs(data_dir, split, PNG_DIR)
    return sorted(os.path.join(PNG_DIR, name) for name in os.listdir(PNG_DIR))


def ensure_model(data_dir: str, model: str | None) -> str:
    """A one-epoch seed model, trained (and so calibrated) and evaluated (blessed)."""
    if model:
        return model
    model = "out/bench/model"
    if not os.path.exists(os.path.join(model, "metrics.json")):
        timed([sys.executable, "-m", "jobs.train", "--data", data_dir, "--output", model,
               "--epochs", "1"])  # fmt: skip
    if not os.path.exists(os.path.join(model, "calibration.json")):
        timed([sys.executable, "-m", "jobs.evaluate", "--data", data_dir, "--model", model,
               "--output", model + "-report"])  # fmt: skip
    return model


def plain_loop(paths: list[str], model: str, batch_size: int = 256) -> float:
    """Seconds for read + decode + normalise + batched predict, in one process, no Beam."""
    from model import images
    from model.serving import Predictor

    predictor = Predictor(model)
    predictor.predict(np.zeros((1, 28, 28), np.uint8))  # warm up, as the job does per worker
    started = time.perf_counter()
    for first in range(0, len(paths), batch_size):
        pixels = []
        for path in paths[first : first + batch_size]:
            with open(path, "rb") as handle:
                pixels.append(images.to_mnist_pixels(images.decode(handle.read())))
        predictor.predict(np.stack(pixels))["status"]
    return time.perf_counter() - started


def ours(model: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        wall = timed(
            [
                sys.executable,
                "-m",
                "jobs.score",
                "--model",
                model,
                "--input",
                f"{PNG_DIR}/*.png",
                "--output",
                out,
                *BENCH_MODEL_OPTIONS,
                *extra,
            ]
        )
        with open(os.path.join(out, "summary.json")) as handle:
            summary = json.load(handle)
    return {
        "pipeline_seconds": summary["seconds"],
        "wall_seconds": wall,
        "scored": summary["scored"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    paths = ensure_pngs(args.data)
    model = ensure_model(args.data, args.model)
    n = len(paths)
    loop = plain_loop(paths, model)
    default = ours(model, [])
    multi = ours(model, ["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    print(f"Scoring {n:,} PNG files (28x28), batch 256")
    print(f"  plain in-process loop (no Beam)       {loop:6.1f} s  {n / loop:7,.0f} images/s")
    for name, result in (
        ("digits score, DirectRunner default", default),
        ("digits score, multi_processing x2", multi),
    ):
        seconds = result["pipeline_seconds"]
        print(
            f"  {name:<37} {seconds:6.1f} s  {n / seconds:7,.0f} images/s   "
            f"({result['wall_seconds']:.1f} s with start-up)   ratio to loop: {loop / seconds:.2f}x"
        )
    save(
        "score", {"images": n, "loop_seconds": loop, "default": default, "multi_processing": multi}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
