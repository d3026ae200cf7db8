"""Inputs that are not digits, for training: outlier exposure (Hendrycks, Mazeika and
Dietterich 2019). The `strong` recipe mixes them into every training batch with a uniform
target (0.1 for every digit), so the model learns to spread its probability over them
and its confidence on things that are no digit drops, which max-softmax alone does not
give (Hendrycks & Gimpel 2017: out-of-distribution inputs still get 83-92%).

    pool(train_digits, 5_500, seed=0)  # uint8 [5500, 28, 28], through the scorer's normalisation

Two kinds, made from random strokes and the training digits, deliberately not the
evaluation's generators (model.suites, whose font glyphs, random-walk scribbles, pages,
smudges and side-by-side pairs the model never sees in training):

- stroke soup: three to six straight strokes and arcs of random width (fewer could draw
  a 1, a 4 or a 7, which must stay digits);
- overlays: two training digits drawn over each other, shifted by up to 6 pixels.

Parts of digits are not used: a part of a 7 is often a 1 or a 7.

Each goes through model.digit_image.normalise_digit, as a scored image would.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("stroke_soup", "overlay")
_CANVAS = 112


def _stroke_soup(rng, digits) -> np.ndarray:
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    canvas = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 7)):
        width = int(rng.integers(6, 14))
        if rng.random() < 0.5:
            (x0, y0), (x1, y1) = rng.uniform(8, _CANVAS - 8, (2, 2))
            canvas.line((x0, y0, x1, y1), fill=255, width=width)
        else:
            cx, cy = rng.uniform(20, _CANVAS - 20, 2)
            rx, ry = rng.uniform(8, 40, 2)
            start = rng.uniform(0, 360)
            canvas.arc(
                (cx - rx, cy - ry, cx + rx, cy + ry),
                start,
                start + rng.uniform(60, 300),
                fill=255,
                width=width,
            )
    return np.asarray(image)


def _overlay(rng, digits) -> np.ndarray:
    a, b = digits[rng.integers(len(digits), size=2)]
    canvas = np.zeros((44, 44), np.uint8)
    canvas[8:36, 8:36] = a
    dy, dx = rng.integers(-6, 7, size=2)
    while abs(dy) + abs(dx) < 3:  # not one digit drawn twice
        dy, dx = rng.integers(-6, 7, size=2)
    region = canvas[8 + dy : 36 + dy, 8 + dx : 36 + dx]
    np.maximum(region, b, out=region)
    return canvas


_MAKERS = {"stroke_soup": _stroke_soup, "overlay": _overlay}


def pool(digits: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` not-a-digit images (half of each kind), uint8 [count, 28, 28], normalised
    like scored images; `digits` (uint8 [n, 28, 28]) are training digits."""
    from model.digit_image import normalise_digit

    rng = np.random.default_rng([seed, 7])
    digits = np.asarray(digits, np.uint8)
    made = [_MAKERS[KINDS[i % len(KINDS)]](rng, digits) for i in range(count)]
    return np.stack([normalise_digit(image[..., None]).numpy() for image in made])
