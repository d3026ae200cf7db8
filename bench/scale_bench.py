"""At scale: scoring 70,000 / 300,000 / 1,000,000 files and 1,000,000 TFRecord records;
preprocessing MNIST and an IDX source ten times its size.

    make bench-scale      # or: python -m bench.scale_bench --data out/data [--sizes 70000,...]

The large image sets are hard links to the 70,000 MNIST PNGs of out/bench/png70k (written
by the scoring benchmark), in folders of 70,000 as a night's date folders would be, so
they take seconds to make; the record set is the dataset's 8 shards linked 15 times
(1,050,000 records). Each set is scored by `digits score` (DirectRunner, defaults) in a
fresh process while the benchmark samples the memory of the job's whole process tree; the
job's summary gives the listing time (before the first image is decoded) and the
pipeline time. The ten-times source is MNIST repeated, each copy rolled by a seeded
shift (large_idx). Printed: time, images per second, peak memory per size, and the
ratios the scale targets are stated in (rate and memory at 1,000,000 against 70,000).
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

from bench.common import save
from bench.score_bench import BENCH_MODEL_OPTIONS, PNG_DIR, ensure_model, ensure_pngs
from pipeline import idx, sources

SCALE_DIR = "out/bench/scale"
FOLDER = 70_000


def image_set(size: int) -> str:
    """A glob of `size` PNG files: hard links to the 70,000, in folders of 70,000."""
    sources = sorted(glob.glob(os.path.join(PNG_DIR, "*.png")))
    if size == len(sources):
        return os.path.join(PNG_DIR, "*.png")
    root = os.path.join(SCALE_DIR, f"images-{size}")
    done = os.path.join(root, ".complete")
    if not os.path.exists(done):
        for folder in range(math.ceil(size / FOLDER)):
            target = os.path.join(root, f"d{folder:02d}")
            os.makedirs(target, exist_ok=True)
            for source in sources[: min(FOLDER, size - folder * FOLDER)]:
                link = os.path.join(target, os.path.basename(source))
                if not os.path.exists(link):
                    os.link(source, link)
        open(done, "w").close()
    return os.path.join(root, "*", "*.png")


def record_set(data_dir: str, copies: int = 15) -> tuple[str, int]:
    """A glob of the dataset's shards linked `copies` times, and its record count."""
    manifest = json.load(open(os.path.join(data_dir, "manifest.json")))
    root = os.path.join(SCALE_DIR, "records")
    os.makedirs(root, exist_ok=True)
    count = 0
    for copy in range(copies):
        for split in manifest["splits"].values():
            for shard in split["shards"]:
                link = os.path.join(root, f"c{copy:02d}-{shard['file']}")
                if not os.path.exists(link):
                    os.link(os.path.join(data_dir, shard["file"]), link)
                count += shard["records"]
    return os.path.join(root, "*.tfrecord-*"), count


def measured(command: list[str]) -> tuple[float, int]:
    """Runs `command` to success; its wall seconds and the peak memory of its process tree."""
    started = time.perf_counter()
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = _sample_memory(job)
    wall = time.perf_counter() - started
    if job.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {job.returncode}")
    return wall, peak


def score(model: str, pattern: str) -> dict:
    """Scores one set; wall time, peak memory, and the job's own listing and pipeline time."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "jobs.score", "--model", model, "--input", pattern]
        command += BENCH_MODEL_OPTIONS
        wall, peak = measured([*command, "--output", out, "--progress-interval", "3600"])
        with open(os.path.join(out, "summary.json")) as handle:
            summary = json.load(handle)
    return {
        "inputs": summary["inputs"],
        "wall_seconds": round(wall, 1),
        "listing_seconds": summary["listing_seconds"],
        "pipeline_seconds": summary["seconds"],
        "images_per_second": round(summary["inputs"] / summary["seconds"], 1),
        "peak_memory_gib": round(peak / 2**30, 3),
    }


def large_idx(source: str, factor: int = 10, seed: int = 0) -> str:
    """MNIST `factor` times over as IDX files with MNIST's names, each copy rolled by a
    seeded random shift of up to 2 pixels; written once, a copy at a time."""
    root = os.path.join(SCALE_DIR, f"idx-x{factor}")
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for images_file, labels_file in idx.MNIST_FILES.values():
        images = idx.parse_images(images_file.name, idx.read_bytes(f"{source}/{images_file.name}"))
        labels = idx.read_labels(f"{source}/{labels_file.name}", None)[0]
        count = len(labels) * factor
        with gzip.open(os.path.join(root, images_file.name), "wb", compresslevel=1) as out:
            out.write(b"".join(n.to_bytes(4, "big") for n in (idx.IMAGES_MAGIC, count, 28, 28)))
            for _ in range(factor):
                out.write(np.roll(images, rng.integers(-2, 3, size=2), axis=(1, 2)).tobytes())
        with gzip.open(os.path.join(root, labels_file.name), "wb", compresslevel=1) as out:
            out.write(idx.LABELS_MAGIC.to_bytes(4, "big") + count.to_bytes(4, "big"))
            out.write(np.tile(labels, factor).tobytes())
    open(os.path.join(root, ".complete"), "w").close()
    return root


def preprocess(source: str, images: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "jobs.preprocess", "--source", source]
        wall, peak = measured([*command, "--output", out, "--no-digest-check"])
    return {
        "inputs": images,
        "wall_seconds": round(wall, 1),
        "images_per_second": round(images / wall, 1),
        "peak_memory_gib": round(peak / 2**30, 3),
    }


def _sample_memory(job: subprocess.Popen) -> int:
    """The largest total RSS of the job and its descendants, sampled every 0.5 s."""
    peak = [0]

    def sample():
        process = psutil.Process(job.pid)
        while job.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    job.wait()
    sampler.join()
    return peak[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="out/data")
    parser.add_argument("--model", default=None)
    parser.add_argument("--sizes", default="70000,300000,1000000")
    parser.add_argument("--records", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--preprocess", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    ensure_pngs(args.data)
    model = ensure_model(args.data, args.model)
    results = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        results[f"{size} files"] = _print(f"{size:,} files", score(model, image_set(size)))
    if args.records:
        pattern, count = record_set(args.data)
        results[f"{count} records"] = _print(f"{count:,} TFRecord records", score(model, pattern))
    if args.preprocess:
        mnist = sources.locate(None)
        for factor, folder in ((1, mnist), (10, large_idx(mnist))):
            name = f"preprocess MNIST x{factor}"
            results[name] = _print(name, preprocess(folder, 70_000 * factor))
    _print_ratios(results)
    save("scale", results)
    return 0


def _print(name: str, result: dict) -> dict:
    listing = ""
    if "listing_seconds" in result:
        share = result["listing_seconds"] / result["wall_seconds"]
        listing = f" ({result['listing_seconds']:.1f} s listing = {share:.1%})"
    print(
        f"  {name:<26} {result['wall_seconds']:7.1f} s wall{listing}, "
        f"{result['images_per_second']:7,.0f} inputs/s, peak memory "
        f"{result['peak_memory_gib']:.2f} GiB",
        flush=True,
    )
    return result


def _print_ratios(results: dict) -> None:
    for small, large, label in (
        ("70000 files", "1000000 files", "scoring 1,000,000 files / 70,000"),
        ("preprocess MNIST x1", "preprocess MNIST x10", "preprocessing MNIST x10 / x1"),
    ):
        if small in results and large in results:
            a, b = results[small], results[large]
            rate = b["images_per_second"] / a["images_per_second"]
            memory = b["peak_memory_gib"] / a["peak_memory_gib"]
            print(f"  {label}: rate {rate:.2f} (target: at least 0.85), memory {memory:.2f}")


if __name__ == "__main__":
    sys.exit(main())
