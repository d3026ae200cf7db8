"""Writes a dataset split's digits as PNG files: a ready-made input for `digits score`.

    python -m jobs.make_images --data out/data --split test --limit 2000 --output out/images

Files are named `<key>_label<digit>.png` (28x28 grayscale, as MNIST), so a scoring run's
predictions can be checked against the names.
"""

from __future__ import annotations

import argparse
import sys

from common import schema
from jobs.exits import run_job
from model.data import write_pngs


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m jobs.make_images", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--data", required=True, help="a dataset folder from digits preprocess")
    parser.add_argument("--split", default="test", choices=schema.SPLITS)
    parser.add_argument("--output", required=True, help="folder to write the PNG files in")
    parser.add_argument("--limit", type=int, default=None, help="at most this many, evenly spaced")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = write_pngs(args.data, args.split, args.output, args.limit)
    print(f"wrote {count} PNG files to {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job("python -m jobs.make_images", run, argv)


if __name__ == "__main__":
    sys.exit(main())
