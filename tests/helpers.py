"""What the job tests share: running the scorer with keyword options, reading what it
wrote, and taking digits out of a preprocessed dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from model import data

DATE = "2026-11-25"


def run_scorer(model, inputs, output, *, date=DATE, max_error_rate=0.2, beam=(), **options):
    """`digits score` with keyword options: force=True -> --force, format="csv" -> ..."""
    argv = ["--model", str(model), "--output", str(output), "--max-error-rate", str(max_error_rate)]
    for pattern in [inputs] if isinstance(inputs, str | Path) else inputs:
        argv += ["--input", str(pattern)]
    if date:
        argv += ["--date", date]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    from jobs import score

    return score.main([*argv, *beam])


def _mnist_test_digits(dataset: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    batch = next(iter(data.records(str(dataset), "test", count)))
    pixels = np.round(batch["image"].numpy()[..., 0] * 255).astype(np.uint8)
    return pixels, batch["label"].numpy()


def _write_pngs(directory: Path, pixels: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(directory / f"{i:04d}.png")


def _read_lines(partition_dir: Path, prefix: str) -> list[dict]:
    rows = []
    for shard in sorted(partition_dir.glob(f"{prefix}-*-of-*.jsonl")):
        rows += [json.loads(line) for line in shard.read_text().splitlines() if line]
    return rows
