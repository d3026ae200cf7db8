"""Shared fixtures: tiny IDX files the tests write themselves, and the real MNIST files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipeline import idx

REPO = Path(__file__).resolve().parents[1]


def digit_like_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, 28, 28] images with a bright bar whose position encodes the label."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 10).astype(np.uint8)
    images = rng.integers(0, 30, size=(count, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels, strict=True):
        image[4 + 2 * label : 6 + 2 * label, 6:22] = 255
    return images, labels


def write_tiny_mnist(directory: Path, train: int = 40, test: int = 20) -> Path:
    """The four MNIST file names holding tiny IDX data (not MNIST: use --no-digest-check)."""
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, count, seed in (("train", train, 1), ("t10k", test, 2)):
        images, labels = digit_like_images(count, seed)
        idx.write_idx(str(directory / f"{prefix}-images-idx3-ubyte.gz"), images)
        idx.write_idx(str(directory / f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return directory


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    return write_tiny_mnist(tmp_path / "raw")


def real_mnist_dir() -> Path:
    """The real MNIST files; a test that needs them fails in CI when they are missing."""
    candidates = [os.environ.get("MNIST_DIR"), str(REPO.parent / "shared" / "data" / "mnist")]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if all((path / name).exists() for name in idx.MNIST_FILE_NAMES):
            return path
    message = f"the real MNIST files are not in MNIST_DIR or {candidates[1]}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return real_mnist_dir()


@pytest.fixture(scope="session")
def mnist_dataset(tmp_path_factory, mnist_dir) -> Path:
    """The real MNIST, preprocessed once per test session."""
    from pipeline import preprocess

    out = tmp_path_factory.mktemp("mnist") / "data"
    preprocess.run(["--source", str(mnist_dir), "--output", str(out)])
    return out


def preprocess_tiny(
    directory: Path, train: int = 600, test: int = 200, validation: int = 100
) -> Path:
    """A small dataset in the project's format, from tiny IDX files."""
    from pipeline import preprocess

    raw = write_tiny_mnist(directory / "raw", train=train, test=test)
    out = directory / "data"
    preprocess.run(
        [
            "--source",
            str(raw),
            "--output",
            str(out),
            "--no-digest-check",
            "--validation-size",
            str(validation),
            "--num-shards",
            "2",
        ]
    )
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return preprocess_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_dataset) -> Path:
    """A seed model trained for 2 epochs on the tiny dataset."""
    from jobs import train

    out = tmp_path_factory.mktemp("tiny_model") / "model"
    train.run(
        ["--data", str(tiny_dataset), "--output", str(out), "--epochs", "2", "--batch-size", "32"]
    )
    return out


@pytest.fixture(scope="session")
def mnist_model(tmp_path_factory, mnist_dataset) -> Path:
    """A seed model trained for one epoch on real MNIST (about 98% accurate)."""
    from jobs import train

    out = tmp_path_factory.mktemp("mnist_model") / "model"
    train.run(["--data", str(mnist_dataset), "--output", str(out), "--epochs", "1"])
    return out
