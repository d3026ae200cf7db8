"""Writes a dataset split's digits as PNG files: a ready-made input for `digits score`.

    python -m jobs.make_images --data out/data --split test --limit 2000 --output out/images

Files are named `<key>_label<digit>.png` (28x28 grayscale, as MNIST), so a scoring run's
predictions can be checked against the names.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image

from common import schema
from model import data


def write_pngs(data_dir: str, split: str, output: str, limit: int | None = None) -> int:
    """The split's images as PNG files; with `limit`, an evenly spaced sample of that many
    (every k-th image), so it spans the split (MNIST's test split holds two populations of
    writers, one in each half)."""
    os.makedirs(output, exist_ok=True)
    total = data.split_size(data.read_manifest(data_dir), split)
    step = max(1, total // limit) if limit else 1
    written, index = 0, -1
    for batch in data.records(data_dir, split, 1000):
        pixels = np.round(batch[schema.IMAGE_KEY].numpy()[..., 0] * schema.PIXEL_MAX).astype(
            np.uint8
        )
        for key, label, image in zip(
            batch[schema.KEY_KEY].numpy(), batch[schema.LABEL_KEY].numpy(), pixels, strict=True
        ):
            index += 1
            if index % step:
                continue
            if limit is not None and written >= limit:
                return written
            Image.fromarray(image, mode="L").save(
                os.path.join(output, f"{key.decode()}_label{label}.png")
            )
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.make_images", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test", choices=schema.SPLITS)
    parser.add_argument("--output", required=True)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    count = write_pngs(args.data, args.split, args.output, args.limit)
    print(f"wrote {count} PNG files to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
