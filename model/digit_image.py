"""MNIST-style normalisation of an arbitrary digit image, in TensorFlow ops.

The one implementation shared by the exported SavedModel's `predict_encoded` signature
and the batch-scoring job, so the two cannot drift apart. For a uint8 image of any size
with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels, it returns the uint8
[28, 28] image MNIST would have made of it, from a clean drawing or a scanned page alike:

1. Transparency: composited onto a background that contrasts with the drawn pixels
   (black under light strokes, white under dark ones), so a digit drawn only in the
   alpha channel, as browser canvases export it, is seen.
2. Grayscale by luminance (0.299 R + 0.587 G + 0.114 B).
3. A light background (the image's border brighter than mid-gray) is inverted, so the
   digit is bright on dark as in MNIST.
4. Already MNIST-shaped (28x28, one channel, a black border: its mean at most
   schema.MNIST_BORDER, as for every MNIST digit): returned as is; but a digit shifted in
   it (off-centre by mass, its bright pixels in a 21-pixel box; schema.MNIST_FIT) is
   shifted back by whole pixels, and otherwise unchanged. A 28x28 image on a gray or
   light background (a brightened or fogged scan) goes through the steps below.
   A square one-channel image of another size on a black border, whose digit, resized to
   28x28, is framed as MNIST frames its digits (FRAMED_EXTENT a side: at least the
   smaller at a fifth of its peak, at most the larger at half; within FRAMED_OFFSET of
   the centre by mass, strokes FRAMED_WIDTH wide, as bright as FRAMED_PEAK) is only
   resized (bilinear, antialiased), as a plain resize would: a digit reduced to 8x8 and
   scaled back up, as an old form scanner's crops are, keeps the soft grey levels the
   steps below would cut into hard strokes. A digit smaller on its page is fitted below.
5. Background and contrast: the paper's level under every pixel is subtracted (a grey
   opening wider than any stroke, so shading, fog and uneven light go too; on an even
   page never far above its border's level, so the wide soft strokes of a low-resolution
   digit scaled up stay whole) and its grain (the median absolute deviation, of the page
   or of its border where that is lower, so a blurred digit covering most of the page is
   not taken for paper) cut away; what stands out is stretched so that the
   stroke's core is full ink, whatever the ink's colour or the paper's tone. Nothing
   standing out by MIN_CONTRAST levels and 6 grain widths, or ink spanning less than
   MIN_EXTENT of the page's shorter side (specks): a blank page, returned blank.
6. Cropped to the middle 99% of the ink's mass across rows and across columns, so a speck
   of dust far from the digit does not stretch the box.
7. Stroke width: measured on the crop at a working size of 160 pixels, and thickened or
   thinned (3x3 grey-level dilation or erosion) into the range MNIST's strokes have
   (STROKE_RANGE), so a fine pen and a marker both look like MNIST's pencil.
8. Scaled to fit 20x20 keeping the aspect ratio and placed in 28x28 so that its centre
   of mass is at the centre, as LeCun et al. prepared MNIST.
"""

from __future__ import annotations

import tensorflow as tf

from common import schema

SIZE = 28
FIT = schema.MNIST_FIT
BACKGROUND_SIZE = 64  # the square the paper's level is estimated on
BACKGROUND_WINDOW = 13  # wider than a stroke there (a fifth of the side)
MIN_CONTRAST = 40.0  # gray levels (of 255) that ink must stand out from the paper by
FLAT_BORDER = 12.0  # levels: how even a page's border is, and how far above it paper may be
WORKING = 160  # the crop's larger side while its strokes are measured and evened
# Stroke width (2 x area / perimeter) at the working size: MNIST's 10th to 90th percentile.
STROKE_RANGE = (12.0, 26.0)
MAX_STROKE_STEPS = 24
MIN_EXTENT = 0.08  # ink spanning less of the page's shorter side is a speck, not a digit
FLOOR_SHARE = 0.1  # ink fainter than this share of the peak counts as paper
CROP_TAIL = 0.001  # share of the ink mass a crop may leave out at each side
# A digit framed as MNIST frames it, at 28x28 (MNIST's: 19-20 pixels a side at half its
# peak, at most 1 pixel off the centre, strokes 1.0-3.6 wide, peak 254-255; 99.9% of the
# training digits reduced to 6x6-16x16 and scaled up: at least 19 a side at a fifth of
# the peak, at most 24 at half, 2.0 off, 1.2-6.7 wide). The smallest side is taken at a
# fifth of the peak: a digit blurred to a few pixels is soft all over, and at half its
# peak only its core shows. The largest stays 22 at half the peak: a sharp digit 24
# pixels a side reads better fitted to 20 (bench.framing_bench, docs/benchmarks.md).
FRAMED_EXTENT = (16, FIT + 2)  # at FRAMED_FAINT of the peak, and at half of it
FRAMED_FAINT = 0.2
FRAMED_OFFSET = 2.0
FRAMED_WIDTH = (1.0, 7.0)
FRAMED_PEAK = 72.0  # a fainter peak at 28x28: strokes finer than a pixel, to be inked
_LUMA = (0.299, 0.587, 0.114)


def _grayscale_and_alpha(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    channels = tf.shape(x)[-1]
    has_alpha = tf.equal(channels % 2, 0)
    colour = tf.cond(has_alpha, lambda: x[..., :-1], lambda: x)
    alpha = tf.cond(has_alpha, lambda: x[..., -1] / 255.0, lambda: tf.ones_like(x[..., 0]))
    weights = tf.cond(
        tf.equal(tf.shape(colour)[-1], 3), lambda: tf.constant(_LUMA), lambda: tf.constant([1.0])
    )
    return tf.reduce_sum(colour * weights, axis=-1), alpha


def _composite(gray: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    ink = tf.reduce_sum(alpha)
    drawn_mean = tf.math.divide_no_nan(tf.reduce_sum(gray * alpha), ink)
    background = tf.where(drawn_mean > 127.5, 0.0, 255.0)
    return gray * alpha + background * (1.0 - alpha)


def _border(x: tf.Tensor) -> tf.Tensor:
    """The outermost rows and columns of [H, W], as one 1-D tensor."""
    return tf.concat([x[0, :], x[-1, :], x[:, 0], x[:, -1]], axis=0)


def _median(values: tf.Tensor) -> tf.Tensor:
    """The median of a 1-D tensor, from at most about 65,536 evenly strided values: the
    largest of the smaller half (a partial selection, twice as fast as a full sort)."""
    step = tf.maximum(1, tf.size(values) // 65_536)
    sample = values[::step]
    smaller_half = -tf.math.top_k(-sample, tf.size(sample) // 2 + 1, sorted=False).values
    return tf.reduce_max(smaller_half)


def _max_filter(x: tf.Tensor, size: int) -> tf.Tensor:
    """The maximum over each `size` x `size` window of [1, H, W, 1] (SAME), as a pass along
    the rows and one along the columns: the same values as one 2-D max pool, with 2 x size
    comparisons a pixel instead of size squared (worth it for wide windows only)."""
    along_rows = tf.nn.max_pool2d(x, [1, size], 1, "SAME")
    return tf.nn.max_pool2d(along_rows, [size, 1], 1, "SAME")


def _background(x: tf.Tensor) -> tf.Tensor:
    """The paper's level under every pixel of [H, W]: a grey opening (a minimum, then a
    maximum filter, BACKGROUND_WINDOW wide) of a BACKGROUND_SIZE-square copy, wider than
    any stroke there, so shading and fog stay and strokes go; smoothed, scaled back."""
    side = BACKGROUND_SIZE
    small = tf.image.resize(x[None, ..., None], [side, side], method="area", antialias=True)
    eroded = -_max_filter(-small, BACKGROUND_WINDOW)
    opened = _max_filter(eroded, BACKGROUND_WINDOW)
    smooth = tf.nn.avg_pool2d(opened, 5, 1, "SAME")
    return tf.image.resize(smooth, tf.shape(x)[:2], method="bilinear")[0, ..., 0]


def _paper_level(x: tf.Tensor) -> tf.Tensor:
    """The paper's level under every pixel of [H, W]: the grey opening (_background), but
    on an even page (half its border within FLAT_BORDER levels of the darkest twentieth)
    never more than FLAT_BORDER above the border's median, so a stroke wider than the
    opening's window (a low-resolution digit scaled up) is not taken for paper."""
    background = _background(x)
    border = tf.sort(_border(x))
    n = tf.size(border)
    paper = border[n // 2]
    even = paper - border[n // 20] <= FLAT_BORDER
    return tf.where(even, tf.minimum(background, paper + FLAT_BORDER), background)


def _level_and_grain(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The median of a 1-D tensor and its spread (1.4826 x the median absolute deviation)."""
    level = _median(values)
    return level, 1.4826 * _median(tf.abs(values - level))


def _paper_grain(above: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The paper's level and grain in [H, W] above the opening: of the whole page, or of
    its border where that is lower, so a digit covering more than half the page (a
    low-resolution digit scaled up, its strokes blurred wide) is not taken for paper."""
    page_level, page_grain = _level_and_grain(tf.reshape(above, [-1]))
    border_level, border_grain = _level_and_grain(_border(above))
    return tf.minimum(page_level, border_level), tf.minimum(page_grain, border_grain)


def _contrast(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Bright-on-dark gray (0-255) -> (ink in [0, 1] with the paper at 0, whether any)."""
    x = tf.ensure_shape(x, [None, None])
    above = x - _paper_level(x)
    level, grain = _paper_grain(above)
    lifted = tf.nn.relu(above - level)
    # The brightest 3x3 neighbourhood: a single hot pixel is not a stroke.
    peak = tf.reduce_max(tf.nn.avg_pool2d(lifted[None, ..., None], 3, 1, "SAME"))
    floor = tf.maximum(3.0 * grain, FLOOR_SHARE * peak)
    flat_lifted = tf.reshape(lifted, [-1])
    strokes = tf.concat([tf.boolean_mask(flat_lifted, flat_lifted > 0.5 * peak), [peak]], 0)
    core = tf.maximum(_median(strokes), floor + 1.0)
    ink = tf.clip_by_value((lifted - floor) / (core - floor), 0.0, 1.0)
    return ink, peak >= tf.maximum(MIN_CONTRAST, 6.0 * grain)


def _mass_range(mass: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """First and last index inside the middle 99% of a 1-D mass profile."""
    cumulative = tf.cumsum(mass) / tf.maximum(tf.reduce_sum(mass), 1e-6)
    first = tf.argmax(tf.cast(cumulative > CROP_TAIL, tf.int32), output_type=tf.int32)
    last = tf.argmax(tf.cast(cumulative >= 1.0 - CROP_TAIL, tf.int32), output_type=tf.int32)
    return first, tf.maximum(first, last)


def _stroke_width(x: tf.Tensor) -> tf.Tensor:
    """2 x area / perimeter of the ink (>= 0.5) of [H, W]: about the stroke's width. The
    perimeter counts the edges along the image's sides too: a crop is tight around its ink,
    and the stem of an r or a 1 running its whole height would otherwise count as twice
    as wide as it is, and be thinned until its finer strokes are gone."""
    lit = tf.pad(tf.cast(x >= 0.5, tf.float32), [[1, 1], [1, 1]])
    edges = tf.reduce_sum(tf.abs(lit[1:] - lit[:-1])) + tf.reduce_sum(
        tf.abs(lit[:, 1:] - lit[:, :-1])
    )
    return tf.math.divide_no_nan(2.0 * tf.reduce_sum(lit), edges)


def _even_strokes(x: tf.Tensor) -> tf.Tensor:
    """Dilates or erodes [H, W] in [0, 1] until its stroke width is in STROKE_RANGE."""
    low, high = STROKE_RANGE

    def outside(x, width):
        return (width > 0) & ((width < low) | (width > high))

    def step(x, width):
        pooled = tf.nn.max_pool2d(x[None, ..., None], 3, 1, "SAME")[0, ..., 0]
        eroded = -tf.nn.max_pool2d(-x[None, ..., None], 3, 1, "SAME")[0, ..., 0]
        x = tf.where(width < low, pooled, tf.where(width > high, eroded, x))
        return x, _stroke_width(x)

    x, _ = tf.while_loop(outside, step, (x, _stroke_width(x)), maximum_iterations=MAX_STROKE_STEPS)
    return tf.ensure_shape(x, [None, None])


def _not_a_speck(ink: tf.Tensor) -> tf.Tensor:
    """Whether the ink spans at least MIN_EXTENT of the page's shorter side (and 4 pixels):
    a dot of dust blown up to 20x20 would look like a digit."""
    rows = tf.cast(tf.reduce_sum(tf.cast(tf.reduce_any(ink >= 0.5, axis=1), tf.int32)), tf.float32)
    cols = tf.cast(tf.reduce_sum(tf.cast(tf.reduce_any(ink >= 0.5, axis=0), tf.int32)), tf.float32)
    shorter = tf.cast(tf.reduce_min(tf.shape(ink)), tf.float32)
    return tf.maximum(rows, cols) >= tf.maximum(4.0, MIN_EXTENT * shorter)


def _centre(x: tf.Tensor) -> tf.Tensor:
    """Crop to the ink, even the strokes, fit into 20x20 keeping the aspect ratio, centre
    by mass in 28x28."""
    top, bottom = _mass_range(tf.reduce_sum(x, axis=1))
    left, right = _mass_range(tf.reduce_sum(x, axis=0))
    crop = tf.ensure_shape(x[top : bottom + 1, left : right + 1], [None, None])
    size = tf.cast(tf.shape(crop)[:2], tf.float32)
    working = tf.maximum(1, tf.cast(tf.round(size * WORKING / tf.reduce_max(size)), tf.int32))
    crop = tf.image.resize(crop[..., None], working, method="area", antialias=True)[..., 0]
    crop = _even_strokes(crop)
    new_size = tf.maximum(1, tf.cast(tf.round(size * FIT / tf.reduce_max(size)), tf.int32))
    fitted = tf.image.resize(crop[..., None], new_size, method="area", antialias=True)[..., 0]
    fitted = fitted / tf.maximum(tf.reduce_max(fitted), 1e-6)  # the core is full ink
    mass = tf.maximum(tf.reduce_sum(fitted), 1e-6)
    centre_y = tf.reduce_sum(fitted * (tf.range(new_size[0], dtype=tf.float32))[:, None]) / mass
    centre_x = tf.reduce_sum(fitted * (tf.range(new_size[1], dtype=tf.float32))[None, :]) / mass
    top = tf.clip_by_value(tf.cast(tf.round(SIZE / 2 - centre_y), tf.int32), 0, SIZE - new_size[0])
    left = tf.clip_by_value(tf.cast(tf.round(SIZE / 2 - centre_x), tf.int32), 0, SIZE - new_size[1])
    padded = tf.pad(fitted, [[top, SIZE - new_size[0] - top], [left, SIZE - new_size[1] - left]])
    return tf.reshape(padded, [SIZE, SIZE]) * 255.0


def _extent(lit: tf.Tensor) -> tf.Tensor:
    """From the first to the last True of a 1-D bool, inclusive (0 when none)."""
    index = tf.range(tf.size(lit))
    last = tf.reduce_max(tf.where(lit, index, -1))
    first = tf.reduce_min(tf.where(lit, index, tf.size(lit)))
    return tf.maximum(last - first + 1, 0)


def _shifted_digit(x: tf.Tensor) -> tf.Tensor:
    """Whether 28x28 [H, W] is a digit shifted from where MNIST puts it (schema's rule, in
    integers, as model.images.shifted_digit decides it)."""
    x = tf.cast(tf.reshape(x, [SIZE, SIZE]), tf.int32)
    halves = 2 * tf.range(SIZE) - (SIZE - 1)  # each row's distance from the centre, x 2
    moment_y = tf.abs(tf.reduce_sum(tf.reduce_sum(x, axis=1) * halves))
    moment_x = tf.abs(tf.reduce_sum(tf.reduce_sum(x, axis=0) * halves))
    off = tf.maximum(moment_y, moment_x) > schema.MNIST_MAX_OFFSET_HALVES * tf.reduce_sum(x)
    lit = x >= 128
    side = tf.maximum(_extent(tf.reduce_any(lit, axis=1)), _extent(tf.reduce_any(lit, axis=0)))
    return off & (side <= FIT + 1)


def _mass_offset(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """How far 28x28 [H, W]'s centre of mass lies below and right of the centre, in pixels."""
    mass = tf.maximum(tf.reduce_sum(x), 1e-6)
    index = tf.range(SIZE, dtype=tf.float32) - (SIZE - 1) / 2
    return (
        tf.reduce_sum(tf.reduce_sum(x, axis=1) * index) / mass,
        tf.reduce_sum(tf.reduce_sum(x, axis=0) * index) / mass,
    )


def _recentred(x: tf.Tensor) -> tf.Tensor:
    """28x28 [H, W] shifted by whole pixels so that its centre of mass is at the centre;
    what would leave the image is cut, nothing else changes."""
    x = tf.reshape(x, [SIZE, SIZE])
    off_y, off_x = _mass_offset(x)
    shift_y = tf.cast(tf.round(-off_y), tf.int32)
    shift_x = tf.cast(tf.round(-off_x), tf.int32)
    padded = tf.pad(x, [[SIZE, SIZE], [SIZE, SIZE]])
    return tf.slice(padded, [SIZE - shift_y, SIZE - shift_x], [SIZE, SIZE])


def _resized(x: tf.Tensor) -> tf.Tensor:
    """[H, W] -> [28, 28], bilinear and antialiased, nothing else."""
    return tf.image.resize(x[..., None], [SIZE, SIZE], method="bilinear", antialias=True)[..., 0]


def _framed(x: tf.Tensor) -> tf.Tensor:
    """Whether [28, 28] holds a digit framed as MNIST frames its digits (FRAMED_*): its
    ink at FRAMED_FAINT of the peak at least FRAMED_EXTENT[0] a side and at half the peak
    at most FRAMED_EXTENT[1], its centre of mass within FRAMED_OFFSET of the centre, its
    strokes FRAMED_WIDTH wide, its peak at least FRAMED_PEAK."""
    peak = tf.reduce_max(x)
    ink = x / tf.maximum(peak, 1e-6)

    def side(level):
        lit = ink >= level
        return tf.maximum(_extent(tf.reduce_any(lit, axis=1)), _extent(tf.reduce_any(lit, axis=0)))

    off_y, off_x = _mass_offset(ink)
    width = _stroke_width(ink)
    return (
        (side(FRAMED_FAINT) >= FRAMED_EXTENT[0])
        & (side(0.5) <= FRAMED_EXTENT[1])
        & (tf.maximum(tf.abs(off_y), tf.abs(off_x)) <= FRAMED_OFFSET)
        & (width >= FRAMED_WIDTH[0])
        & (width <= FRAMED_WIDTH[1])
        & (peak >= FRAMED_PEAK)
    )


@tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.uint8)], reduce_retracing=True)
def normalise_digit(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, C] (C in 1-4) -> uint8 [28, 28], bright digit on dark, MNIST-style."""
    x = tf.cast(image, tf.float32)
    gray, alpha = _grayscale_and_alpha(x)
    gray = _composite(gray, alpha)
    border = tf.reduce_mean(_border(gray))
    light_background = border > 127.5
    gray = tf.where(light_background, 255.0 - gray, gray)
    shape = tf.shape(image)
    grey_on_black = tf.equal(shape[2], 1) & (border <= schema.MNIST_BORDER)
    mnist_shaped = tf.equal(shape[0], SIZE) & tf.equal(shape[1], SIZE) & grey_on_black
    square = grey_on_black & tf.equal(shape[0], shape[1])

    def normalised():
        ink, visible = _contrast(gray)
        return tf.cond(
            visible & _not_a_speck(ink), lambda: _centre(ink), lambda: tf.zeros([SIZE, SIZE])
        )

    def mnist():
        x = tf.reshape(gray, [SIZE, SIZE])
        return tf.cond(_shifted_digit(x), lambda: _recentred(x), lambda: x)

    def resized_if_framed():
        small = _resized(gray)
        return tf.cond(_framed(small), lambda: small, normalised)

    result = tf.cond(mnist_shaped, mnist, lambda: tf.cond(square, resized_if_framed, normalised))
    return tf.cast(tf.clip_by_value(tf.round(result), 0.0, 255.0), tf.uint8)


def decode_and_normalise(encoded: tf.Tensor) -> tf.Tensor:
    """PNG/JPEG/BMP bytes -> uint8 [28, 28], upright by the EXIF Orientation tag (the
    SavedModel's decoding; the job decodes with Pillow and ImageOps.exif_transpose, and a
    test holds the two equal for every orientation)."""
    image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
    return normalise_digit(upright(image, exif_orientation(encoded)))


# --- EXIF orientation (phones and scanners store pixels rotated and say so). -------------

_EXIF_SCAN = 65536  # JPEG keeps EXIF in an APP1 segment of at most 64 KiB near the start
_MAX_IFD_ENTRIES = 64
_ORIENTATION_TAG = 0x0112


def _find(data: tf.Tensor, pattern: bytes) -> tf.Tensor:
    """The first index of `pattern` in the int32 bytes `data` (padded), or -1."""
    span = tf.shape(data)[0] - len(pattern)
    hits = tf.reduce_all(
        tf.stack([tf.equal(data[k : k + span], byte) for k, byte in enumerate(pattern)]), 0
    )
    return tf.cond(
        tf.reduce_any(hits), lambda: tf.argmax(tf.cast(hits, tf.int32), output_type=tf.int32),
        lambda: tf.constant(-1),
    )  # fmt: skip


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """The EXIF Orientation (1-8) of JPEG (APP1 `Exif`) or PNG (`eXIf` chunk) bytes; 1
    when there is none or it cannot be read."""
    head = tf.io.decode_raw(tf.strings.substr(encoded, 0, _EXIF_SCAN), tf.uint8)
    data = tf.pad(tf.cast(head, tf.int32), [[0, 16 + 12 * _MAX_IFD_ENTRIES]])
    size = tf.shape(head)[0]
    jpeg = tf.logical_and(tf.equal(data[0], 0xFF), tf.equal(data[1], 0xD8))
    png = tf.logical_and(tf.equal(data[0], 0x89), tf.equal(data[1], ord("P")))
    tiff = tf.where(jpeg, _find(data, b"Exif\0\0") + 6, tf.where(png, _find(data, b"eXIf") + 4, -1))
    little = tf.equal(data[tf.maximum(tiff, 0)], ord("I"))
    last = tf.shape(data)[0] - 1

    def number(offsets, width):  # unsigned integers of `width` bytes at each offset
        at = tf.clip_by_value(offsets[..., None] + tf.range(width), 0, last)
        weights = 256 ** tf.where(little, tf.range(width), tf.range(width - 1, -1, -1))
        return tf.reduce_sum(tf.gather(data, at) * weights, axis=-1)

    ifd = tiff + number(tiff + 4, 4)
    count = number(ifd, 2)
    entries = ifd + 2 + 12 * tf.range(_MAX_IFD_ENTRIES)
    tags, values = number(entries, 2), number(entries + 8, 2)
    wanted = tf.logical_and(tf.equal(tags, _ORIENTATION_TAG), tf.range(_MAX_IFD_ENTRIES) < count)
    found = tf.boolean_mask(values, wanted)
    readable = tf.logical_and(tiff >= 0, ifd + 2 + 12 * count <= size)
    orientation = tf.cond(
        tf.logical_and(readable, tf.size(found) > 0), lambda: found[0], lambda: tf.constant(1)
    )
    return tf.where(tf.logical_and(orientation >= 1, orientation <= 8), orientation, 1)


def upright(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """[H, W, C] as a viewer shows it for an EXIF orientation (as Pillow's exif_transpose)."""
    transpose = lambda: tf.transpose(image, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,  # 0: not a valid tag, as 1
        lambda: image,  # 1: upright
        lambda: tf.image.flip_left_right(image),
        lambda: tf.image.rot90(image, 2),
        lambda: tf.image.flip_up_down(image),
        transpose,  # 5
        lambda: tf.image.rot90(image, 3),  # 6: turned 90 degrees clockwise to show
        lambda: tf.image.rot90(transpose(), 2),  # 7: transverse
        lambda: tf.image.rot90(image, 1),  # 8
    ]
    return tf.switch_case(orientation, branches)
