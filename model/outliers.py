"""Inputs that are not digits, for training: outlier exposure (Hendrycks, Mazeika and
Dietterich 2019). The `strong` recipe mixes them into every training batch with a uniform
target (0.1 for every digit), so the model learns to spread its probability over them
and its confidence on things that are no digit drops, which max-softmax alone does not
give (Hendrycks & Gimpel 2017: out-of-distribution inputs still get 83-92%).

    pool(train_digits, 5_500, seed=0)  # uint8 [5500, 28, 28], through the scorer's normalisation
    pool(train_digits, 24_000, seed=0, kinds=SHAPE_CHECK_ROUND)  # the shape check's

Six kinds, made from random strokes, a typeface and the training digits, deliberately not
the evaluation's generators (evaluation.suites, whose typefaces, straight-line random-walk
scribbles, pages, smudges and side-by-side pairs no network here sees in training):

- stroke soup: three to six straight strokes and arcs of random width (fewer could draw
  a 1, a 4 or a 7, which must stay digits);
- overlays: two training digits drawn over each other, shifted by up to 6 pixels;
- hand letters: letters and symbols drawn as a hand would, from stroke templates
  (LETTERS, among them the print forms of a, r, t and f, and $), slanted, stretched and
  wobbled, as a team would train on handwritten letters (EMNIST) if it had them here; two in five
  of the pool (ROUND), for their many shapes. Letters and symbols that are written like a
  digit (O, I, l, S, Z, B, G, b, d, g, h, q, ...) are not among them;
- curves: one smooth pen stroke through eight to fourteen random points (a spline, not the
  evaluation's straight-segment random walk);
- polylines, for the shape check only (model.shape_check): one thick pen stroke straight
  through five to eight points drawn anywhere on the canvas (sharp corners and long
  crossing segments, not the evaluation's short random-walk steps);
- printed letters, for the shape check only: LETTERS' single characters printed in one of
  PRINT_FACES (Computer Modern, bundled with matplotlib), none of the evaluation's
  typefaces (Pillow's Aileron for `letters`; DejaVu and STIX for `other_typefaces`), so
  both stay held out.

Parts of digits are not used: a part of a 7 is often a 1 or a 7.

Each goes through model.digit_image.normalise_digit, as a scored image would.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.images import normalise_all

KINDS = ("stroke_soup", "overlay", "hand_letter", "curve", "polyline", "printed_letter")
# The order the pool draws them in: hand letters twice as often as each other kind, for
# their many shapes (LETTERS).
ROUND = ("hand_letter", "stroke_soup", "overlay", "hand_letter", "curve")
# The shape check's: the same, polylines and printed letters (docs/experiments.md,
# 2026-12-05, afternoon and evening).
SHAPE_CHECK_ROUND = (*ROUND, "polyline", "printed_letter")
# matplotlib's Computer Modern: roman, sans, typewriter, bold and italic.
PRINT_FACES = ("cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")
_CANVAS = 112


def _arc(cx, cy, rx, ry, start, stop, steps=9):
    """Points on an ellipse from `start` to `stop` degrees (0: right, 90: down)."""
    t = np.radians(np.linspace(start, stop, steps))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


# Strokes in a unit box (x right, y down); lower-case letters sit in its lower part.
LETTERS = {
    "A": [[(0, 1), (0.5, 0), (1, 1)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.8, 0.5)]],
    "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.8, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(1, 0), (0, 0.55)], [(0.3, 0.4), (1, 1)]],
    "M": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "P": [[(0, 1), (0, 0), (0.6, 0), *_arc(0.6, 0.25, 0.35, 0.25, -90, 90), (0, 0.5)]],
    "R": [
        [(0, 1), (0, 0), (0.6, 0), *_arc(0.6, 0.25, 0.35, 0.25, -90, 90), (0, 0.5)],
        [(0.4, 0.5), (1, 1)],
    ],
    "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "U": [[(0, 0), *_arc(0.5, 0.6, 0.5, 0.4, 180, 0), (1, 0)]],
    "V": [[(0, 0), (0.5, 1), (1, 0)]],
    "W": [[(0, 0), (0.25, 1), (0.5, 0.35), (0.75, 1), (1, 0)]],
    "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "a": [[*_arc(0.45, 0.72, 0.45, 0.28, -20, 340)], [(0.95, 0.42), (0.95, 1)]],
    "c": [_arc(0.55, 0.7, 0.45, 0.3, -50, -310, steps=11)],  # over the top, round the left
    "e": [
        [
            (0.05, 0.7),
            (0.95, 0.7),
            *_arc(0.5, 0.7, 0.45, 0.3, 0, -180),
            *_arc(0.5, 0.7, 0.45, 0.3, 180, 40),
        ]
    ],
    "f": [[(0.9, 0.05), *_arc(0.6, 0.2, 0.2, 0.15, -60, -180), (0.4, 1)], [(0.1, 0.4), (0.8, 0.4)]],
    "k": [[(0, 0), (0, 1)], [(0.9, 0.4), (0, 0.75)], [(0.3, 0.62), (0.9, 1)]],
    "m": [
        [(0, 0.4), (0, 1)],
        [(0, 0.6), *_arc(0.25, 0.6, 0.25, 0.18, 180, 360), (0.5, 1)],
        [(0.5, 0.6), *_arc(0.75, 0.6, 0.25, 0.18, 180, 360), (1, 1)],
    ],
    "n": [[(0, 0.4), (0, 1)], [(0, 0.65), *_arc(0.5, 0.65, 0.5, 0.22, 180, 360), (1, 1)]],
    "p": [[(0, 0.35), (0, 1)], [(0, 0.4), *_arc(0.45, 0.52, 0.5, 0.17, -90, 90), (0, 0.69)]],
    "r": [[(0, 0.4), (0, 1)], [(0, 0.65), *_arc(0.55, 0.62, 0.55, 0.2, 180, 300)]],
    "t": [[(0.4, 0), (0.4, 0.85), *_arc(0.6, 0.85, 0.2, 0.15, 180, 60)], [(0, 0.35), (0.9, 0.35)]],
    "u": [[(0, 0.4), *_arc(0.5, 0.75, 0.5, 0.25, 180, 0)], [(1, 0.4), (1, 1)]],
    "v": [[(0, 0.4), (0.5, 1), (1, 0.4)]],
    "w": [[(0, 0.4), (0.25, 1), (0.5, 0.6), (0.75, 1), (1, 0.4)]],
    "x": [[(0, 0.4), (1, 1)], [(1, 0.4), (0, 1)]],
    "y": [[(0, 0.3), (0.5, 0.7)], [(1, 0.3), (0.3, 1)]],
    "+": [[(0.5, 0.1), (0.5, 0.9)], [(0.1, 0.5), (0.9, 0.5)]],
    "=": [[(0, 0.38), (1, 0.38)], [(0, 0.62), (1, 0.62)]],
    "#": [
        [(0.35, 0), (0.25, 1)],
        [(0.75, 0), (0.65, 1)],
        [(0, 0.33), (1, 0.33)],
        [(0, 0.67), (1, 0.67)],
    ],
    "*": [[(0.5, 0), (0.5, 1)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
    "?": [[*_arc(0.5, 0.28, 0.4, 0.25, 190, 400), (0.5, 0.72)], [(0.5, 0.92), (0.5, 0.97)]],
    "!": [[(0.5, 0), (0.5, 0.72)], [(0.5, 0.92), (0.5, 0.97)]],
    "%": [
        _arc(0.2, 0.2, 0.17, 0.17, 0, 360),
        [(0.9, 0), (0.1, 1)],
        _arc(0.8, 0.8, 0.17, 0.17, 0, 360),
    ],
    # Letters as print teaches them: the a with a hook over its bowl, the r with a short arm,
    # t and f with short bars; and the ampersand and at sign.
    "a_print": [
        [*_arc(0.5, 0.55, 0.3, 0.15, 200, 360), (0.8, 1)],
        [(0.8, 0.7), *_arc(0.5, 0.84, 0.3, 0.15, 270, 90), (0.8, 0.92)],
    ],
    "r_print": [[(0.2, 0.35), (0.2, 1)], [(0.2, 0.55), *_arc(0.5, 0.55, 0.3, 0.18, 180, 300)]],
    "t_print": [
        [(0.45, 0.05), (0.45, 0.85), *_arc(0.65, 0.85, 0.2, 0.15, 180, 60)],
        [(0.15, 0.35), (0.75, 0.35)],
    ],
    "f_print": [
        [(0.8, 0.05), *_arc(0.6, 0.2, 0.2, 0.15, -40, -180), (0.4, 1)],
        [(0.15, 0.4), (0.75, 0.4)],
    ],
    "&": [
        [
            (0.95, 1),
            (0.32, 0.38),
            *_arc(0.45, 0.2, 0.2, 0.2, 140, 400),
            (0.15, 0.68),
            *_arc(0.4, 0.78, 0.25, 0.22, 180, 45),
            (0.9, 0.55),
        ]
    ],
    "@": [
        [(0.75, 0.45), *_arc(0.55, 0.55, 0.2, 0.2, 0, 360)],
        [(0.75, 0.35), (0.75, 0.72), *_arc(0.5, 0.5, 0.5, 0.5, 60, 370)],
    ],
    # The dollar sign, beside the amounts of cheques and forms: an S (not drawn alone: it
    # is written like a 5) with a bar through it.
    "$": [
        [*_arc(0.5, 0.3, 0.35, 0.2, -20, -270), *_arc(0.5, 0.7, 0.35, 0.2, -90, 160)],
        [(0.5, 0.0), (0.5, 1.0)],
    ],
}


# What printed_letter prints: LETTERS' single characters (not the print forms' templates).
PRINTED = tuple(name for name in LETTERS if len(name) == 1)


def _hand_letter(rng, digits) -> np.ndarray:
    return hand_drawn(LETTERS[list(LETTERS)[rng.integers(len(LETTERS))]], rng)


def hand_drawn(strokes, rng) -> np.ndarray:
    """A letter's strokes (LETTERS) as a hand draws them: slanted, stretched, turned and
    wobbled, with a pen 5-12 pixels wide, shrunk to fit whole inside the canvas where a
    wide stretch and slant would take it past the edge; uint8 [_CANVAS, _CANVAS], ink
    bright."""
    slant, stretch = rng.uniform(-0.35, 0.35), rng.uniform(0.6, 1.3)
    angle = np.radians(rng.uniform(-12, 12))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    width = int(rng.integers(5, 13))
    lines = []
    for stroke in strokes:
        points = np.asarray(stroke, np.float64) + rng.normal(0, 0.03, (len(stroke), 2))
        points[:, 0] = (points[:, 0] - 0.5) * stretch + slant * (0.5 - points[:, 1])
        lines.append((points - [0, 0.5]) @ rotation.T * 70)
    reach = max(np.abs(line).max() for line in lines) + width
    scale = min(1.0, (_CANVAS / 2 - 1) / reach)
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    canvas = ImageDraw.Draw(image)
    for line in lines:
        points = line * scale + _CANVAS / 2
        canvas.line([tuple(p) for p in points], fill=255, width=width, joint="curve")
    return np.asarray(image)


def _curve(rng, digits) -> np.ndarray:
    knots = rng.uniform(12, _CANVAS - 12, (int(rng.integers(8, 15)), 2))
    t = np.linspace(0, len(knots) - 1, 40 * len(knots))
    # Catmull-Rom through the knots (ends repeated): a smooth pen stroke.
    padded = np.concatenate([knots[:1], knots, knots[-1:]])
    i = np.minimum(t.astype(int), len(knots) - 2)
    u = (t - i)[:, None]
    p0, p1, p2, p3 = padded[i], padded[i + 1], padded[i + 2], padded[i + 3]
    points = 0.5 * (
        2 * p1
        + (p2 - p0) * u
        + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2
        + (3 * p1 - p0 - 3 * p2 + p3) * u**3
    )
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(image).line(
        [tuple(p) for p in points], fill=255, width=int(rng.integers(5, 12)), joint="curve"
    )
    return np.asarray(image)


def _polyline(rng, digits) -> np.ndarray:
    corners = rng.uniform(10, _CANVAS - 10, (int(rng.integers(5, 9)), 2))
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(image).line(
        [tuple(p) for p in corners], fill=255, width=int(rng.integers(5, 12)), joint="curve"
    )
    return np.asarray(image)


def _printed_letter(rng, digits) -> np.ndarray:
    """One of PRINTED in one of PRINT_FACES at 50-99 pixels, turned up to 10 degrees,
    shrunk to fit the canvas where it is larger."""
    face = PRINT_FACES[rng.integers(len(PRINT_FACES))]
    font = _font(face, int(rng.integers(50, 100)))
    page = Image.new("L", (_CANVAS * 2, _CANVAS * 2), 0)
    ImageDraw.Draw(page).text(
        (_CANVAS // 2, _CANVAS // 2), PRINTED[rng.integers(len(PRINTED))], 255, font
    )
    page = page.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR)
    glyph = page.crop(page.getbbox())
    scale = min(1.0, (_CANVAS - 8) / max(glyph.size))
    glyph = glyph.resize(
        (max(1, int(glyph.size[0] * scale)), max(1, int(glyph.size[1] * scale))), Image.BILINEAR
    )
    image = Image.new("L", (_CANVAS, _CANVAS), 0)
    image.paste(glyph, ((_CANVAS - glyph.size[0]) // 2, (_CANVAS - glyph.size[1]) // 2))
    return np.asarray(image)


@functools.cache
def _font(face: str, size: int) -> ImageFont.FreeTypeFont:
    import matplotlib  # its fonts; imported only when a pool has printed letters

    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", face), size)


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


_MAKERS = {
    "stroke_soup": _stroke_soup,
    "overlay": _overlay,
    "hand_letter": _hand_letter,
    "curve": _curve,
    "polyline": _polyline,
    "printed_letter": _printed_letter,
}


def pool(digits: np.ndarray, count: int, seed: int = 0, kinds: tuple = ROUND) -> np.ndarray:
    """`count` not-a-digit images, `kinds` in turn (KINDS' names), uint8 [count, 28, 28],
    normalised like scored images; `digits` (uint8 [n, 28, 28]) are training digits."""
    rng = np.random.default_rng([seed, 7])
    digits = np.asarray(digits, np.uint8)
    made = (_MAKERS[kinds[i % len(kinds)]](rng, digits)[..., None] for i in range(count))
    # Through the scorer's normalisation, each while the next ones are drawn.
    return normalise_all(made)
