"""Turning an image file's bytes into MNIST pixels for the scoring job, or a clear reason why not.

Decoding is Pillow's (PNG and JPEG only), with the pixel count checked from the header
before anything is decoded, so a decompression bomb is refused without using memory, and
the EXIF Orientation tag applied (phones and scanners store pixels rotated and say so).
Normalisation is model.digit_image.normalise_digit, the very function inside the exported
SavedModel; MNIST-shaped images (28x28, one channel, black border, not shifted), which
that function returns unchanged, skip the TensorFlow call here (`is_mnist_shaped` mirrors its
rule and a test holds the two equal).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from common import schema

SUPPORTED_FORMATS = ("PNG", "JPEG")
DEFAULT_MAX_PIXELS = 4096 * 4096


class Rejected(ValueError):
    """An input that cannot be scored: `stage` says where it failed, the message why."""

    def __init__(self, stage: str, reason: str):
        super().__init__(reason)
        self.stage = stage


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 [H, W, C], C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA."""
    if not data:
        raise Rejected("read", "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise Rejected(
                    "decode",
                    f"image is {width}x{height} = {width * height:,} pixels, over the limit "
                    f"of {max_pixels:,} (--max-pixels)",
                )
            image.load()
            image = ImageOps.exif_transpose(image)  # upright, as every viewer shows it
    except Rejected:
        raise
    except UnidentifiedImageError:
        kind = Image.registered_extensions().get("." + _sniff(data), None)
        detail = f"a {kind} image" if kind else "not a PNG or JPEG image"
        raise Rejected("decode", f"unsupported format: {detail} (supported: PNG, JPEG)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Rejected(
            "decode", f"image is over the pixel limit of {max_pixels:,} (--max-pixels)"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise Rejected("decode", f"cannot decode ({type(error).__name__}: {error})") from None
    return _to_array(image)


def _sniff(data: bytes) -> str:
    for magic, extension in (
        (b"GIF8", "gif"),
        (b"BM", "bmp"),
        (b"II*\0", "tif"),
        (b"MM\0*", "tif"),
        (b"RIFF", "webp"),
    ):
        if data.startswith(magic):
            return extension
    return ""


def _to_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit) grayscale
        wide = np.asarray(image, dtype=np.uint32)
        top = 65535 if mode.startswith("I;16") or wide.max() > 255 else 255
        return np.round(wide.astype(np.float64) * 255.0 / top).astype(np.uint8)[..., None]
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("1", "L;16"):
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def is_mnist_shaped(array: np.ndarray) -> bool:
    """normalise_digit's pass-through rule: 28x28, one channel, a black border, and not a
    digit shifted from where MNIST puts it."""
    if array.shape != (schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH, 1):
        return False
    x = array[..., 0].astype(np.float32)
    border = np.concatenate([x[0, :], x[-1, :], x[:, 0], x[:, -1]])
    return bool(border.mean() <= schema.MNIST_BORDER) and not shifted_digit(array[..., 0])


def shifted_digit(pixels: np.ndarray) -> bool:
    """uint8 [28, 28]: off-centre by mass with its bright pixels in a 21-pixel box
    (schema's rule, in integers, as model.digit_image decides it)."""
    x = pixels.astype(np.int64)
    halves = 2 * np.arange(x.shape[0]) - (x.shape[0] - 1)
    moment = max(abs(int(x.sum(axis=1) @ halves)), abs(int(x.sum(axis=0) @ halves)))
    lit = x >= 128
    side = max(_extent(lit.any(axis=1)), _extent(lit.any(axis=0)))
    return moment > schema.MNIST_MAX_OFFSET_HALVES * int(x.sum()) and side <= schema.MNIST_FIT + 1


def _extent(lit: np.ndarray) -> int:
    where = np.flatnonzero(lit)
    return int(where[-1] - where[0] + 1) if len(where) else 0


def to_mnist_pixels(array: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [28, 28] by the shared MNIST-style normalisation."""
    if is_mnist_shaped(array):
        return array[..., 0]
    from model.digit_image import normalise_digit  # TensorFlow only when it is needed

    return normalise_digit(array).numpy()


def normalise_all(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Each uint8 [H, W, C] array through `to_mnist_pixels`, in order, as uint8 [n, 28, 28]:
    the MNIST-shaped ones pass unchanged, the others go through normalise_digit on a
    thread per core (it releases the GIL while it runs; 1.4x faster on two cores than one
    call after another, the same pixels). `arrays` may be a generator: the threads
    normalise the first images while it makes the next ones."""
    done: list[np.ndarray | Future] = []
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for array in arrays:
            if is_mnist_shaped(array):
                done.append(array[..., 0])
            else:
                from model.digit_image import normalise_digit  # TensorFlow only when needed

                done.append(pool.submit(normalise_digit, array))
        out = np.zeros((len(done), schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH), np.uint8)
        for i, pixels in enumerate(done):
            out[i] = pixels if isinstance(pixels, np.ndarray) else pixels.result().numpy()
    return out


def input_facts(arrays: list[np.ndarray], record: bool = False) -> np.ndarray:
    """What images were before normalising (monitoring.drift.FACTS), float [n, 5]: height,
    width, mode index (monitoring.drift.MODES; 4 for TFRecord records), inverted (a light
    background, by the normalisation's border rule), and the distance of the ink's centre of
    mass from the image centre, as a share of the larger side. Measured on at most 64x64
    samples, vectorised over the images of each size."""
    facts = np.zeros((len(arrays), 5), np.float64)
    by_shape: dict[tuple, list[int]] = {}
    for i, array in enumerate(arrays):
        by_shape.setdefault(array.shape, []).append(i)
    for (height, width, channels), members in by_shape.items():
        step = max(1, max(height, width) // 64)
        sample = np.stack([arrays[i][::step, ::step] for i in members]).astype(np.float32)
        gray = sample[..., :3].mean(axis=3) if channels >= 3 else sample[..., 0]
        border = np.concatenate(
            [gray[:, 0, :], gray[:, -1, :], gray[:, :, 0], gray[:, :, -1]], axis=1
        ).mean(axis=1)
        inverted = border > 127.5
        ink = np.where(inverted[:, None, None], 255.0 - gray, gray)
        level = np.where(inverted, 255.0 - border, border)
        ink = np.clip(ink - level[:, None, None], 0.0, None)
        facts[members] = np.stack(
            [
                np.full(len(members), height),
                np.full(len(members), width),
                np.full(len(members), 4 if record else channels - 1),
                inverted,
                _centre_offset(ink),
            ],
            axis=1,
        )
    return facts


def _centre_offset(ink: np.ndarray) -> np.ndarray:
    """[k, h, w] ink -> distance of each centre of mass from the centre / the larger side."""
    total = ink.sum(axis=(1, 2))
    rows = (ink.sum(axis=2) * np.arange(ink.shape[1])).sum(axis=1)
    cols = (ink.sum(axis=1) * np.arange(ink.shape[2])).sum(axis=1)
    safe = np.maximum(total, 1e-9)
    dy = rows / safe - (ink.shape[1] - 1) / 2
    dx = cols / safe - (ink.shape[2] - 1) / 2
    return np.where(total > 0, np.hypot(dy, dx) / max(ink.shape[1:]), 0.0)
