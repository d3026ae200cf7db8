"""Test sets made here, deterministic for a seed: corrupted digits, inputs that are not
digits, and digits as a scanner or phone would see them. NumPy and Pillow only.

    corrupt("rotate", digits, seed=0)    # uint8 [n, 28, 28] -> uint8 [n, 28, 28]
    not_a_digit("letters", 200, digits)  # -> list of uint8 [H, W, C] images (pages)
    scan(digits, seed=0)                 # -> list of uint8 [H, W, 3] images, one per digit

CORRUPTIONS follow MNIST-C (Mu & Gilmer 2019; its data cannot be downloaded here, so the
corruptions are written from the paper's descriptions). NOT_A_DIGIT_KINDS are what a
batch of form boxes holds besides digits. Pages (not-a-digit inputs and scans) go through
the scorer's normalisation (model.digit_image) like any image file.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 28


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, sum(name.encode())])


def _per_image(digits: np.ndarray, draw) -> np.ndarray:
    return np.stack(
        [np.asarray(draw(Image.fromarray(d), i), np.uint8) for i, d in enumerate(digits)]
    )


def _affine(digits, rng, matrix_of) -> np.ndarray:
    """Applies a per-image affine map (about the centre) with Pillow, bilinear."""

    def draw(image, i):
        a, b, c, d = matrix_of(rng)
        centre = SIZE / 2
        # Pillow maps output -> input: the inverse of [[a, b], [c, d]] about the centre.
        inverse = np.linalg.inv(np.array([[a, b], [c, d]]))
        offset = np.array([centre, centre]) - inverse @ np.array([centre, centre])
        coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
        return image.transform(image.size, Image.AFFINE, coefficients, Image.BILINEAR)

    return _per_image(digits, draw)


def _shot_noise(x, rng):
    return np.clip(rng.poisson(x / 255.0 * 60) / 60 * 255, 0, 255)


def _impulse_noise(x, rng):
    out = x.astype(np.float64).copy()
    u = rng.random(x.shape)
    out[u < 0.045] = 0
    out[u > 0.955] = 255
    return out


def _glass_blur(x, rng):
    blurred = _per_image(x, lambda im, i: im.filter(ImageFilter.GaussianBlur(0.7)))
    out = blurred.copy()
    for _ in range(2):  # local pixel swaps, as glass does
        for y in range(SIZE - 1, 0, -1):
            for col in range(SIZE - 1, 0, -1):
                dy, dx = rng.integers(-1, 2, size=2)
                yy, xx = min(max(y + dy, 0), SIZE - 1), min(max(col + dx, 0), SIZE - 1)
                out[:, [y, yy], [col, xx]] = out[:, [yy, y], [xx, col]]
    return np.asarray(_per_image(out, lambda im, i: im.filter(ImageFilter.GaussianBlur(0.7))))


def _motion_blur(x, rng):
    out = np.zeros(x.shape, np.float64)
    for i, image in enumerate(x.astype(np.float64)):
        angle = rng.uniform(0, np.pi)
        steps = np.arange(-3, 4)
        dy, dx = np.round(np.sin(angle) * steps).astype(int), np.round(np.cos(angle) * steps)
        for sy, sx in zip(dy, dx.astype(int), strict=True):
            out[i] += np.roll(image, (sy, sx), axis=(0, 1))
        out[i] /= len(steps)
    return out


def _shear(x, rng):
    return _affine(x, rng, lambda r: (1, r.choice([-1, 1]) * r.uniform(0.3, 0.6), 0, 1))


def _scale(x, rng):
    def matrix(r):
        s = r.choice([r.uniform(0.5, 0.7), r.uniform(1.3, 1.5)])
        return (s, 0, 0, s)

    return _affine(x, rng, matrix)


def _rotate(x, rng):
    def matrix(r):
        t = np.radians(r.choice([-1, 1]) * r.uniform(25, 45))
        return (np.cos(t), -np.sin(t), np.sin(t), np.cos(t))

    return _affine(x, rng, matrix)


def _brightness(x, rng):
    return np.clip(x.astype(np.float64) + rng.uniform(60, 100, size=(len(x), 1, 1)), 0, 255)


def _translate(x, rng):
    out = np.zeros_like(x)
    for i, image in enumerate(x):
        dy, dx = rng.integers(-6, 7, size=2)
        shifted = np.roll(image, (dy, dx), axis=(0, 1))
        # what rolled over an edge is cut, not wrapped
        if dy > 0:
            shifted[:dy] = 0
        elif dy < 0:
            shifted[dy:] = 0
        if dx > 0:
            shifted[:, :dx] = 0
        elif dx < 0:
            shifted[:, dx:] = 0
        out[i] = shifted
    return out


def _stripe(x, rng):
    out = x.astype(np.float64).copy()
    for i in range(len(x)):
        start, width = rng.integers(6, 20), rng.integers(2, 4)
        out[i, :, start : start + width] = 255 - out[i, :, start : start + width]
    return out


def _fog(x, rng):
    coarse = rng.random((len(x), 4, 4))
    fog = np.stack(
        [
            np.asarray(
                Image.fromarray((c * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BICUBIC)
            )
            for c in coarse
        ]
    )
    return np.clip(x.astype(np.float64) + fog.astype(np.float64) * 0.5, 0, 255)


def _spatter(x, rng):
    def draw(image, i):
        canvas = ImageDraw.Draw(image)
        for _ in range(rng.integers(3, 7)):
            cy, cx, r = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(0.7, 1.8)
            canvas.ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(rng.integers(160, 256)))
        return image

    return _per_image(x.copy(), draw)


def _line(x, rng, dotted: bool):
    def draw(image, i):
        canvas = ImageDraw.Draw(image)
        y0, y1 = rng.uniform(4, 24, size=2)
        if dotted:
            for t in np.linspace(0, 1, 9):
                px, py = 2 + 24 * t, y0 + (y1 - y0) * t
                canvas.ellipse((px - 0.8, py - 0.8, px + 0.8, py + 0.8), fill=255)
        else:
            xs = np.linspace(2, 26, 7)
            ys = [y0 + (3 if k % 2 else -3) + (y1 - y0) * k / 6 for k in range(7)]
            canvas.line(list(zip(xs, ys, strict=True)), fill=255, width=1)
        return image

    return _per_image(x.copy(), draw)


def _canny_edges(x, rng):
    return _per_image(
        x, lambda im, i: im.filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 60 else 0)
    )


CORRUPTIONS = {
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur,
    "shear": _shear,
    "scale": _scale,
    "rotate": _rotate,
    "brightness": _brightness,
    "translate": _translate,
    "stripe": _stripe,
    "fog": _fog,
    "spatter": _spatter,
    "dotted_line": lambda x, rng: _line(x, rng, dotted=True),
    "zigzag": lambda x, rng: _line(x, rng, dotted=False),
    "canny_edges": _canny_edges,
}

SEEDLESS = ("canny_edges",)  # the same for every seed, as in MNIST-C


def corrupt(name: str, digits: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint8 [n, 28, 28] MNIST digits under one of CORRUPTIONS (same seed, same result)."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    out = CORRUPTIONS[name](np.asarray(digits, np.uint8), _rng(seed, name))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


# --- Inputs that are not digits. ------------------------------------------------------------

# Letters and symbols that do not look like a digit (O, I, l, S, Z, B, g, q... do: a person
# could not tell either).
GLYPHS = "ACEFHKMNPRTUVWXYacefhkmnprtuvwxy#%&@*+=?!$"


def _paper(rng, height: int, width: int) -> np.ndarray:
    """Off-white paper, float [H, W]: a base tone, slow shading and grain."""
    base = rng.uniform(215, 250)
    coarse = rng.normal(0, 1, (4, 4))
    shading = np.asarray(
        Image.fromarray(coarse.astype(np.float32), mode="F").resize((width, height), Image.BICUBIC)
    )
    grain = rng.normal(0, rng.uniform(1.5, 5), (height, width))
    return np.clip(base + shading * rng.uniform(2, 7) + grain, 0, 255)


def _page_size(rng) -> tuple[int, int]:
    return int(rng.integers(40, 121)), int(rng.integers(40, 121))


def _to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(np.round(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _blank(rng, digits):
    if rng.random() < 0.5:
        return np.zeros((SIZE, SIZE, 1), np.uint8)
    return np.full((*_page_size(rng), 1), int(rng.integers(230, 256)), np.uint8)


def _near_blank(rng, digits):
    page = _paper(rng, *_page_size(rng))
    image = Image.fromarray(page.astype(np.uint8))
    canvas = ImageDraw.Draw(image)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.uniform(0, image.height), rng.uniform(0, image.width)
        r = rng.uniform(0.5, 1.5)
        canvas.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(20, 120)))
    return _to_rgb(np.asarray(image))


def _paper_texture(rng, digits):
    return _to_rgb(_paper(rng, *_page_size(rng)))


def _smudge(rng, digits):
    height, width = _page_size(rng)
    page = _paper(rng, height, width)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        sy, sx = rng.uniform(4, 14, size=2)
        depth = rng.uniform(40, 130)
        page -= depth * np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2)
    return _to_rgb(page)


def _noise(rng, digits):
    if rng.random() < 0.5:
        return rng.integers(0, 256, (SIZE, SIZE, 1), dtype=np.uint8)
    height, width = _page_size(rng)
    return _to_rgb(_paper(rng, height, width) - rng.uniform(0, 200, (height, width)))


def _letters(rng, digits):
    return _glyph_page(rng, lambda size: ImageFont.load_default(size=size))


# Typefaces bundled with matplotlib (a dependency), none of them Pillow's own (Aileron,
# `letters`): the same glyphs drawn differently, which no choice here was made on.
OTHER_TYPEFACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "STIXGeneral.ttf")


def _other_typefaces(rng, digits):
    import matplotlib

    face = OTHER_TYPEFACES[rng.integers(len(OTHER_TYPEFACES))]
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", face)
    return _glyph_page(rng, lambda size: ImageFont.truetype(path, size=size))


def _glyph_page(rng, font_of):
    """One of GLYPHS in dark ink on paper, 28-51 pixels high, anywhere on a page twice that."""
    size = int(rng.integers(28, 52))
    font = font_of(size)
    page = Image.fromarray(_paper(rng, size * 2, size * 2).astype(np.uint8))
    glyph = GLYPHS[rng.integers(len(GLYPHS))]
    ink = int(rng.integers(0, 70))
    ImageDraw.Draw(page).text(
        (rng.uniform(0, size * 0.8), rng.uniform(0, size * 0.6)), glyph, fill=ink, font=font
    )
    return _to_rgb(np.asarray(page))


def _two_digits(rng, digits):
    a, b = digits[rng.integers(len(digits), size=2)]
    gap = np.zeros((SIZE, int(rng.integers(0, 5))), np.uint8)
    return np.concatenate([a, gap, b], axis=1)[..., None]


def _scribble(rng, digits):
    height, width = _page_size(rng)
    page = Image.fromarray(_paper(rng, height, width).astype(np.uint8))
    points = np.cumsum(rng.normal(0, min(height, width) / 5, (int(rng.integers(8, 16)), 2)), 0)
    points -= points.min(axis=0)
    points *= (np.array([width, height]) * 0.8) / np.maximum(points.max(axis=0), 1)
    points += np.array([width, height]) * 0.1
    ImageDraw.Draw(page).line(
        [tuple(p) for p in points], fill=int(rng.integers(0, 70)), width=int(rng.integers(2, 5))
    )
    return _to_rgb(np.asarray(page))


NOT_A_DIGIT_KINDS = {
    "blank": _blank,
    "near_blank": _near_blank,
    "paper_texture": _paper_texture,
    "smudge": _smudge,
    "noise": _noise,
    "letters": _letters,
    "other_typefaces": _other_typefaces,
    "two_digits": _two_digits,
    "scribble": _scribble,
}


def not_a_digit(kind: str, count: int, digits: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """`count` images of one of NOT_A_DIGIT_KINDS, uint8 [H, W, C] (C 1 or 3); `digits`
    (uint8 [n, 28, 28]) are what two_digits puts side by side."""
    if kind not in NOT_A_DIGIT_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(NOT_A_DIGIT_KINDS)}")
    rng = _rng(seed, kind)
    return [NOT_A_DIGIT_KINDS[kind](rng, digits) for _ in range(count)]


# --- Low resolution. ---------------------------------------------------------------------------

LOW_RESOLUTIONS = (8, 12, 16)  # the sides a digit is reduced to
LOW_RESOLUTION_PAGE = 32  # and the side it is scaled back up to


def low_resolution(digits: np.ndarray, side: int) -> np.ndarray:
    """MNIST digits as an old form scanner's crops: reduced to side x side (area averaging)
    and scaled back up to LOW_RESOLUTION_PAGE square (bilinear). uint8 [n, 32, 32]."""
    page = (LOW_RESOLUTION_PAGE, LOW_RESOLUTION_PAGE)
    return np.stack(
        [
            np.asarray(
                Image.fromarray(digit).resize((side, side), Image.BOX).resize(page, Image.BILINEAR)
            )
            for digit in np.asarray(digits, np.uint8)
        ]
    )


def plain_resize(pages: np.ndarray) -> np.ndarray:
    """uint8 [n, H, W] pages resized to 28x28 (bilinear, antialiased) and nothing else: what
    the normalisation is measured against on low-resolution digits."""
    return np.stack(
        [np.asarray(Image.fromarray(p).resize((SIZE, SIZE), Image.BILINEAR)) for p in pages]
    )


# --- Scans. ------------------------------------------------------------------------------------

INKS = ((25, 35, 110), (20, 20, 25), (40, 40, 160), (110, 30, 30))


def scan(digits: np.ndarray, seed: int = 0) -> list[bytes]:
    """MNIST digits as if written on paper and scanned or photographed: 3-6x larger,
    strokes thickened or thinned, coloured ink on textured off-white paper, anywhere on a
    page up to twice as large, slight blur, saved as JPEG. Returns the JPEG files' bytes."""
    import io

    rng = _rng(seed, "scan")
    out = []
    for digit in np.asarray(digits, np.uint8):
        side = int(SIZE * rng.uniform(3, 6))
        image = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
        width = rng.choice([0, 0, 3, 5, -3, -5])  # stroke: same, thicker, thinner
        if width > 0:
            image = image.filter(ImageFilter.MaxFilter(int(width)))
        elif width < 0:
            image = image.filter(ImageFilter.MinFilter(int(-width)))
        height, page_width = (int(side * rng.uniform(1.0, 2.0)) for _ in range(2))
        alpha = np.zeros((height, page_width))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, page_width - side + 1)
        alpha[top : top + side, left : left + side] = np.asarray(image) / 255.0
        paper = _paper(rng, height, page_width)
        tint = rng.uniform(0.94, 1.0, size=3)  # off-white, slightly coloured
        ink = np.array(INKS[rng.integers(len(INKS))], np.float64)
        rgb = paper[..., None] * tint * (1 - alpha[..., None]) + ink * alpha[..., None]
        page = Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8))
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        buffer = io.BytesIO()
        page.save(buffer, format="JPEG", quality=int(rng.integers(60, 91)))
        out.append(buffer.getvalue())
    return out
