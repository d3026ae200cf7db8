"""Times the preprocessing pipeline against its baselines, in one run, and prints ratios.

    make bench        # or: python -m bench.preprocess_bench [--repeat 3]

Each contender runs as a fresh process on the same local MNIST files (startup included):
our pipeline, TFDS's own MNIST builder, and the one-element-per-image Beam pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from bench.common import save, timed
from pipeline import sources


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--source", default=None, help="MNIST folder (default: as the jobs)")
    args = parser.parse_args(argv)
    source = sources.locate(args.source)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        contenders = {
            "ours (digits preprocess)": lambda i: [
                py,
                "-m",
                "jobs.preprocess",
                "--source",
                source,
                "--output",
                f"{tmp}/ours",
            ],
            "TFDS MNIST builder": lambda i: [
                py,
                "-m",
                "bench.baselines",
                "tfds",
                "--source",
                source,
                "--output",
                f"{tmp}/tfds{i}",
            ],
            "one element per image": lambda i: [
                py,
                "-m",
                "bench.baselines",
                "per-image",
                "--source",
                source,
                "--output",
                f"{tmp}/per{i}",
            ],
        }
        seconds = {name: [] for name in contenders}
        for i in range(args.repeat):  # interleaved, so machine noise hits all alike
            for name, command in contenders.items():
                seconds[name].append(timed(command(i)))
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    ours = medians["ours (digits preprocess)"]
    print(f"Preprocessing 70,000 MNIST images, median of {args.repeat} runs, startup included")
    for name, median in medians.items():
        runs = ", ".join(f"{t:.1f}" for t in seconds[name])
        print(f"  {name:<26} {median:6.2f} s   ({runs})   ratio to ours: {median / ours:5.2f}x")
    save("preprocess", {"seconds": seconds, "median": medians})
    return 0


if __name__ == "__main__":
    sys.exit(main())
