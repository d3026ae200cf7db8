"""MNIST-style normalisation of an arbitrary digit image, in TensorFlow ops.

The one implementation shared by the exported SavedModel's `predict_encoded` signature
and the batch-scoring job, so the two cannot drift apart. For a uint8 image of any size
with 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels, it returns the uint8
[28, 28] image MNIST would have made of it:

1. Transparency: composited onto a background that contrasts with the drawn pixels
   (black under light strokes, white under dark ones), so a digit drawn only in the
   alpha channel, as browser canvases export it, is seen.
2. Grayscale by luminance (0.299 R + 0.587 G + 0.114 B).
3. A light background (the image's border brighter than mid-gray) is inverted, so the
   digit is bright on dark as in MNIST.
4. Already MNIST-shaped (28x28, one channel, dark background): returned as is.
5. Otherwise cropped to the digit's bounding box (pixels above 20% of the brightest),
   scaled to fit 20x20 keeping the aspect ratio, and placed in 28x28 so that its centre
   of mass is at the centre, as LeCun et al. prepared MNIST. A blank image stays blank.
"""

from __future__ import annotations

import tensorflow as tf

SIZE = 28
FIT = 20
INK_THRESHOLD = 0.2
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


def _border_mean(x: tf.Tensor) -> tf.Tensor:
    border = tf.concat([x[0, :], x[-1, :], x[:, 0], x[:, -1]], axis=0)
    return tf.reduce_mean(border)


def _centre(x: tf.Tensor) -> tf.Tensor:
    """Crop to the ink, fit into 20x20 keeping the aspect ratio, centre by mass in 28x28."""
    ink = x > INK_THRESHOLD * tf.reduce_max(x)
    rows = tf.where(tf.reduce_any(ink, axis=1))[:, 0]
    cols = tf.where(tf.reduce_any(ink, axis=0))[:, 0]
    crop = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height = tf.cast(tf.shape(crop)[0], tf.float32)
    width = tf.cast(tf.shape(crop)[1], tf.float32)
    scale = FIT / tf.maximum(height, width)
    new_size = tf.maximum(1, tf.cast(tf.round(tf.stack([height, width]) * scale), tf.int32))
    new_size = tf.minimum(new_size, FIT)
    fitted = tf.image.resize(crop[..., None], new_size, method="area", antialias=True)[..., 0]
    mass = tf.maximum(tf.reduce_sum(fitted), 1e-6)
    centre_y = (
        tf.reduce_sum(fitted * (tf.range(new_size[0], dtype=tf.float32) + 0.5)[:, None]) / mass
    )
    centre_x = (
        tf.reduce_sum(fitted * (tf.range(new_size[1], dtype=tf.float32) + 0.5)[None, :]) / mass
    )
    top = tf.clip_by_value(tf.cast(tf.round(SIZE / 2 - centre_y), tf.int32), 0, SIZE - new_size[0])
    left = tf.clip_by_value(tf.cast(tf.round(SIZE / 2 - centre_x), tf.int32), 0, SIZE - new_size[1])
    padded = tf.pad(fitted, [[top, SIZE - new_size[0] - top], [left, SIZE - new_size[1] - left]])
    return tf.reshape(padded, [SIZE, SIZE])


@tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.uint8)], reduce_retracing=True)
def normalise_digit(image: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, C] (C in 1-4) -> uint8 [28, 28], bright digit on dark, MNIST-style."""
    x = tf.cast(image, tf.float32)
    gray, alpha = _grayscale_and_alpha(x)
    gray = _composite(gray, alpha)
    light_background = _border_mean(gray) > 127.5
    gray = tf.where(light_background, 255.0 - gray, gray)
    shape = tf.shape(image)
    mnist_shaped = (
        tf.equal(shape[0], SIZE)
        & tf.equal(shape[1], SIZE)
        & tf.equal(shape[2], 1)
        & tf.logical_not(light_background)
    )
    blank = tf.reduce_max(gray) <= 0.0
    result = tf.cond(
        blank,
        lambda: tf.zeros([SIZE, SIZE]),
        lambda: tf.cond(
            mnist_shaped, lambda: tf.reshape(gray, [SIZE, SIZE]), lambda: _centre(gray)
        ),
    )
    return tf.cast(tf.clip_by_value(tf.round(result), 0.0, 255.0), tf.uint8)


def decode_and_normalise(encoded: tf.Tensor) -> tf.Tensor:
    """PNG/JPEG/BMP bytes -> uint8 [28, 28] (the SavedModel's decoding; the job uses Pillow)."""
    image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
    return normalise_digit(image)
