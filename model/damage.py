"""Damaged digits, for training: what scans, cameras and forms do to a digit, so the
`robust` recipe learns to read a digit through damage (AugMix, Hendrycks et al. 2020:
chains of simple operations, not the test's corruptions, carry over to corruptions never
seen in training).

    pool(train_digits, train_labels, 14_000, seed=0)  # (uint8 [n, 28, 28], labels [n])

Each image is a training digit under a chain of one or two operations drawn from KINDS,
deliberately of other kinds or parameters than the evaluation's corruptions
(evaluation.suites, which stays the judge and is never trained on): box blur (the suite
blurs with a Gaussian), frosted glass (every pixel from one up to 1-2 pixels away, in one
unblurred pass; the suite's glass blur swaps neighbours between Gaussian blurs), smears of
3-4 and 8-9 pixels (the suite's motion blur: 7), Gaussian noise (the suite: Poisson and
4.5% salt and pepper), salt or pepper alone at 1-2.5% or 7-9%, elastic warps, thicker and
thinner strokes, faded ink on a shaded page, a reduction to 10-14 pixels and back (the
suite: 8, 12 and 16), an inverted band at a slant (the suite inverts upright columns), a
tilt of 12-20 degrees (the suite: 25-45), a straight pen line 2-3 pixels wide (the suite:
1-pixel zigzags and dotted lines) and a small erased patch. Half are then scaled to a page
of 30-44 pixels, and all go through the scorer's normalisation (model.digit_image), as a
scored image would; the label stays the digit's.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from model.images import normalise_all

SIZE = 28


def _box_blur(x, rng):
    return np.asarray(Image.fromarray(x).filter(ImageFilter.BoxBlur(rng.uniform(0.6, 1.4))))


def _smear(x, rng):
    length = int(rng.choice([rng.integers(3, 5), rng.integers(8, 10)]))
    angle = rng.uniform(0, np.pi)
    steps = np.arange(length) - (length - 1) / 2
    out = np.zeros(x.shape, np.float64)
    for step in steps:
        shift = (round(np.sin(angle) * step), round(np.cos(angle) * step))
        out += np.roll(x.astype(np.float64), shift, axis=(0, 1))
    return out / length


def _gaussian_noise(x, rng):
    return x + rng.normal(0, rng.uniform(15, 50), x.shape)


def _salt_or_pepper(x, rng):
    rate = rng.choice([rng.uniform(0.01, 0.025), rng.uniform(0.07, 0.09)])
    out = x.astype(np.float64).copy()
    out[rng.random(x.shape) < rate] = 255 if rng.random() < 0.5 else 0
    return out


def _elastic(x, rng):
    """Simard et al. 2003: a random displacement field, smoothed (sigma 4), times 34."""
    taps = np.arange(-12, 13)
    kernel = np.exp(-(taps**2) / (2 * 4.0**2))
    kernel /= kernel.sum()

    def smooth(field):
        field = np.apply_along_axis(np.convolve, 0, field, kernel, "same")
        return np.apply_along_axis(np.convolve, 1, field, kernel, "same")

    dy, dx = (smooth(rng.uniform(-1, 1, x.shape)) * 34 for _ in range(2))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return _bilinear(x.astype(np.float64), yy + dy, xx + dx)


def _bilinear(x, yy, xx):
    y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
    fy, fx = yy - y0, xx - x0

    def at(y, xs):
        inside = (y >= 0) & (y < SIZE) & (xs >= 0) & (xs < SIZE)
        return np.where(inside, x[np.clip(y, 0, SIZE - 1), np.clip(xs, 0, SIZE - 1)], 0.0)

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _thickness(x, rng):
    kind = ImageFilter.MaxFilter(3) if rng.random() < 0.6 else ImageFilter.MinFilter(3)
    return np.asarray(Image.fromarray(x).filter(kind))


def _faded(x, rng):
    """Faint ink on a page lit from one side: a shaded background under the strokes."""
    ramp = np.linspace(0, 1, SIZE)
    shade = ramp[None, :] if rng.random() < 0.5 else ramp[:, None]
    return x * rng.uniform(0.35, 0.7) + shade * rng.uniform(10, 50)


def _pixelate(x, rng):
    side = int(rng.integers(10, 15))
    small = Image.fromarray(x).resize((side, side), Image.BILINEAR)
    return np.asarray(small.resize((SIZE, SIZE), Image.BICUBIC))


def _inverted_band(x, rng):
    """A band 1-4 pixels wide inverted across the image, at any angle but within 15 degrees
    of upright (the suite's stripes are upright columns)."""
    angle = np.radians(rng.uniform(15, 165))  # from the vertical
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] - rng.uniform(8, 20, size=(2, 1, 1))
    inside = np.abs(xx * np.cos(angle) - yy * np.sin(angle)) < rng.uniform(0.5, 2.0)
    return np.where(inside, 255 - x.astype(np.float64), x)


def _tilt(x, rng):
    """A rotation of 12-20 degrees either way (training's augmentation: 10; the suite: 25-45)."""
    angle = rng.choice([-1, 1]) * rng.uniform(12, 20)
    return np.asarray(Image.fromarray(x).rotate(angle, Image.BILINEAR))


def _pen_line(x, rng):
    image = Image.fromarray(x)
    (x0, y0), (x1, y1) = rng.uniform(0, SIZE, (2, 2))
    ImageDraw.Draw(image).line((x0, y0, x1, y1), fill=255, width=int(rng.integers(2, 4)))
    return np.asarray(image)


def _erased_patch(x, rng):
    out = x.copy()
    h, w = rng.integers(3, 7, size=2)
    y, col = rng.integers(4, SIZE - 4 - h), rng.integers(4, SIZE - 4 - w)
    out[y : y + h, col : col + w] = 0
    return out


def _scatter(x, rng):
    """Frosted glass: every pixel taken from a random one up to 1-2 pixels away, in one pass
    and unblurred (the suite's glass blur: Gaussian blur, two passes of swaps with a
    neighbour, blur again)."""
    reach = int(rng.integers(1, 3))
    rows, cols = np.indices(x.shape)
    dy, dx = rng.integers(-reach, reach + 1, size=(2, *x.shape))
    return x[np.clip(rows + dy, 0, SIZE - 1), np.clip(cols + dx, 0, SIZE - 1)]


KINDS = {
    "box_blur": _box_blur,
    "scatter": _scatter,
    "smear": _smear,
    "gaussian_noise": _gaussian_noise,
    "salt_or_pepper": _salt_or_pepper,
    "elastic": _elastic,
    "thickness": _thickness,
    "faded": _faded,
    "pixelate": _pixelate,
    "inverted_band": _inverted_band,
    "tilt": _tilt,
    "pen_line": _pen_line,
    "erased_patch": _erased_patch,
}


def damage(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [28, 28] -> uint8 [H, W]: a chain of one or two of KINDS; half of them then
    scaled to a page of 30-44 pixels, so they take the normalisation's whole path, as a
    scanned crop does (a 28x28 image on a black border passes it unchanged)."""
    x = np.asarray(digit, np.uint8)
    names = list(KINDS)
    for name in rng.choice(names, size=int(rng.integers(1, 3)), replace=False):
        x = np.clip(np.round(KINDS[name](x, rng)), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        side = int(rng.integers(30, 45))
        x = np.asarray(Image.fromarray(x).resize((side, side), Image.BILINEAR))
    return x


def pool(digits: np.ndarray, labels: np.ndarray, count: int, seed: int = 0):
    """`count` damaged training digits and their labels: (uint8 [count, 28, 28] normalised
    like scored images, int [count]). One whose damage left no ink the normalisation
    finds (it returns a blank image, which is no digit) is left out and another drawn."""
    rng = np.random.default_rng([seed, 11])
    digits, labels = np.asarray(digits, np.uint8), np.asarray(labels)
    images, kept, missing = [], [], count
    while missing > 0:  # after the first pass, only as many as came out blank
        chosen = rng.choice(len(digits), size=missing, replace=missing > len(digits))
        made = normalise_all(damage(digits[i], rng)[..., None] for i in chosen)
        inked = made.max(axis=(1, 2)) >= 128
        images.append(made[inked])
        kept.append(labels[chosen][inked])
        missing -= int(inked.sum())
    return np.concatenate(images), np.concatenate(kept)
