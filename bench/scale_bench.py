"""Scoring at scale: 70,000 / 300,000 / 1,000,000 files and 1,000,000 TFRecord records.

    make bench-scale      # or: python -m bench.scale_bench --data out/data [--sizes 70000,...]

The large image sets are hard links to the 70,000 MNIST PNGs of out/bench/png70k (written
by the scoring benchmark), in folders of 70,000 as a night's date folders would be, so
they take seconds to make; the record set is the dataset's 8 shards linked 15 times
(1,050,000 records). Each set is scored by `digits score` (DirectRunner, defaults) in a
fresh process while the benchmark samples the memory of the job's whole process tree; the
job's summary gives the listing time (before the first image is decoded) and the
pipeline time. Printed: time, images per second, peak memory per size, and the ratios
the scale targets are stated in (rate and memory at 1,000,000 against 70,000).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from bench.common import save
from bench.score_bench import PNG_DIR, ensure_model, ensure_pngs

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


def score(model: str, pattern: str, extra: list[str]) -> dict:
    """Runs the scorer once; wall time, peak memory of its process tree, its summary."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "jobs.score", "--model", model, "--input", pattern]
        command += ["--output", out, "--progress-interval", "3600", *extra]
        started = time.perf_counter()
        job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = _sample_memory(job)
        code = job.wait()
        wall = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"{' '.join(command)} failed with exit status {code}")
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


def _sample_memory(job: subprocess.Popen) -> int:
    """The largest total RSS of the job and its descendants, sampled every 0.2 s."""
    peak = [0]

    def sample():
        process = psutil.Process(job.pid)
        while job.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.2)

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
    args = parser.parse_args(argv)
    ensure_pngs(args.data)
    model = ensure_model(args.data, args.model)
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        results[f"{size} files"] = score(model, image_set(size), [])
        _print(f"{size:,} files", results[f"{size} files"])
    if args.records:
        pattern, count = record_set(args.data)
        results[f"{count} records"] = score(model, pattern, [])
        _print(f"{count:,} TFRecord records", results[f"{count} records"])
    _print_ratios(results)
    save("scale", results)
    return 0


def _print(name: str, result: dict) -> None:
    share = result["listing_seconds"] / result["wall_seconds"]
    print(
        f"  {name:<26} {result['wall_seconds']:7.1f} s wall ({result['listing_seconds']:.1f} s "
        f"listing = {share:.1%}), {result['images_per_second']:7,.0f} inputs/s, peak memory "
        f"{result['peak_memory_gib']:.2f} GiB",
        flush=True,
    )


def _print_ratios(results: dict) -> None:
    small, large = results.get("70000 files"), results.get("1000000 files")
    if small and large:
        rate = large["images_per_second"] / small["images_per_second"]
        memory = large["peak_memory_gib"] / small["peak_memory_gib"]
        print(f"  rate at 1,000,000 / rate at 70,000:     {rate:.2f} (target: at least 0.85)")
        print(f"  memory at 1,000,000 / memory at 70,000: {memory:.2f} (target: at most 1.3)")


if __name__ == "__main__":
    sys.exit(main())
