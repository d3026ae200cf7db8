"""Fake data the tests make themselves (as TFDS's fake_data_generation): IDX files, image
files of every awkward and bad kind, TFRecord shards, and a predictor with no model."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from common import schema
from common.tfrecord import frame_records
from pipeline import idx

# --- Raw IDX files. ----------------------------------------------------------------------------


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes uint8 images [n, r, c] or labels [n] as IDX (gzipped when the name ends in .gz)."""
    magic = idx.IMAGES_MAGIC if array.ndim == 3 else idx.LABELS_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    with open(path, "wb") as handle:
        handle.write(gzip.compress(payload, compresslevel=1) if path.endswith(".gz") else payload)


def digit_like_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, 28, 28] images with a bright bar whose position encodes the label; 23
    pixels wide, wider than MNIST's digits, so the scorer's normalisation does not take
    an off-centre bar for a shifted digit and leaves the images as they are."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 10).astype(np.uint8)
    images = rng.integers(0, 9, size=(count, 28, 28), dtype=np.uint8)  # a near-black border
    for image, label in zip(images, labels, strict=True):
        image[4 + 2 * label : 6 + 2 * label, 3:26] = 255
    return images, labels


def write_tiny_mnist(directory: Path, train: int = 40, test: int = 20) -> Path:
    """The four MNIST file names holding tiny IDX data (not MNIST: use --no-digest-check)."""
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, count, seed in (("train", train, 1), ("t10k", test, 2)):
        images, labels = digit_like_images(count, seed)
        write_idx(str(directory / f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(str(directory / f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return directory


# --- TFRecord shards. ---------------------------------------------------------------------------


def write_tfrecord(path: Path, images: np.ndarray, labels: np.ndarray, prefix="fake") -> list[str]:
    """A shard in the project's schema from uint8 images; returns the records' keys."""
    keys = [f"{prefix}-{i:05d}".encode() for i in range(len(labels))]
    records = schema.encode_examples(schema.normalise(images), labels.astype(np.int64), keys)
    path.write_bytes(frame_records(records))
    return [k.decode() for k in keys]


# --- Image files. -----------------------------------------------------------------------------


def encoded(pixels: np.ndarray, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format, **options)
    return buffer.getvalue()


def enlarge(pixels: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR))


def _alpha_only(pixels: np.ndarray) -> Image.Image:  # as a browser canvas exports a drawing
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[..., 3] = enlarge(pixels, 140)
    return Image.fromarray(rgba, "RGBA")


def _on_large_page(pixels: np.ndarray) -> Image.Image:
    canvas = np.full((900, 1200), 250, np.uint8)
    canvas[200:760, 300:860] = 255 - enlarge(pixels, 560)
    return Image.fromarray(canvas)


# Valid files a user might send, each a real digit: file name -> how it is drawn.
AWKWARD = {
    "rgb.png": lambda d: Image.fromarray(enlarge(d, 56)).convert("RGB"),
    "inverted.png": lambda d: Image.fromarray(255 - enlarge(d, 84)),
    "palette.png": lambda d: Image.fromarray(255 - enlarge(d, 56)).convert("RGB").convert("P"),
    "rgba_alpha_only.png": _alpha_only,
    "sixteen_bit.png": lambda d: Image.fromarray(enlarge(d, 56).astype(np.uint16) * 257),
    "photo.jpg": lambda d: Image.fromarray(255 - enlarge(d, 200)).convert("RGB"),
    "large.png": _on_large_page,
    "space name.png": Image.fromarray,
    "ünïcødé 数字.png": Image.fromarray,
    "-leading-dash.png": Image.fromarray,
}


def _dangling_link(path: Path, _digit) -> None:
    os.symlink(path.parent / "deleted-long-ago.png", path)


def _truncated(image_format: str):
    def write(path: Path, digit: np.ndarray) -> None:
        data = encoded(enlarge(digit, 64), image_format)
        path.write_bytes(data[: len(data) // 2])

    return write


# Files that cannot be scored: file name -> (how it is written, the stage that rejects it).
BAD = {
    "zero.png": (lambda path, _: path.write_bytes(b""), "read"),
    "truncated.png": (_truncated("PNG"), "decode"),
    "truncated.jpg": (_truncated("JPEG"), "decode"),
    "notes.png": (lambda path, _: path.write_text("shopping list: milk, eggs\n"), "decode"),
    "animation.gif": (lambda path, digit: Image.fromarray(digit).save(path), "decode"),
    # 25 Mpx: under Pillow's own limit, over the scorer's default --max-pixels.
    "bomb.png": (lambda path, _: Image.new("L", (5000, 5000)).save(path), "decode"),
    "dangling.png": (_dangling_link, "read"),
}


def write_image_set(directory: Path, digits: np.ndarray, labels: np.ndarray, clean: int = 40):
    """`clean` digits as MNIST-like PNGs, then AWKWARD and BAD files. Returns {path: label}."""
    directory.mkdir(parents=True)
    truth = {}
    for i in range(clean):
        path = directory / f"clean_{i:03d}.png"
        Image.fromarray(digits[i]).save(path)
        truth[str(path)] = int(labels[i])
    for j, (name, draw) in enumerate(AWKWARD.items()):
        path = directory / name
        options = {"quality": 85} if name.endswith(".jpg") else {}
        draw(digits[clean + j]).save(path, **options)
        truth[str(path)] = int(labels[clean + j])
    for name, (write, _) in BAD.items():
        write(directory / name, digits[0])
    return truth


# --- A predictor with no model. ---------------------------------------------------------------


class BarPredictor:
    """'Reads' digit_like_images: the digit is where the brightest bar is (rows 4-23).

    Its probabilities are 0.91 for that digit and 0.01 for every other, so a test knows
    every prediction and confidence in advance.
    """

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        rows = pixels.astype(np.int64).sum(axis=2)[:, 4:24]
        digits = rows.reshape(len(pixels), 10, 2).sum(axis=2).argmax(axis=1)
        probabilities = np.full((len(pixels), 10), 0.01, np.float32)
        probabilities[np.arange(len(pixels)), digits] = 0.91
        return probabilities


class BrokenPredictor:
    def predict(self, pixels: np.ndarray) -> np.ndarray:
        raise RuntimeError("out of memory")


# --- Labelled image folders (digits preprocess --labelled). ------------------------------------


def write_labelled_folder(
    directory: Path, count: int = 40, seed: int = 7, negatives: int = 6
) -> dict[str, int]:
    """A team's image folder, DIR/<digit>/*.png (inverted, 56x56: the normalisation has work
    to do) and DIR/not_a_digit/*.png, plus the review page's answers.jsonl; returns each
    image's relative path -> its class (10 for not_a_digit)."""
    images, labels = digit_like_images(count, seed)
    written = {}
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        relative = f"{label}/{seed}-{i}.png"
        written[relative] = int(label)
        (directory / str(label)).mkdir(parents=True, exist_ok=True)
        (directory / relative).write_bytes(encoded(255 - enlarge(image, 56)))
    (directory / "not_a_digit").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(negatives):
        relative = f"not_a_digit/{seed}-{i}.png"
        written[relative] = schema.NOT_A_DIGIT
        (directory / relative).write_bytes(encoded(rng.integers(0, 255, (40, 40), np.uint8)))
    (directory / "answers.jsonl").write_text("")
    return written
