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
