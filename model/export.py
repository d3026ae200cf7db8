"""Exports a trained model: `model.keras` and a self-contained SavedModel.

The SavedModel (`MODEL_DIR/saved_model/`) needs no project code, only TensorFlow:

    m = tf.saved_model.load("out/model/saved_model")
    m.signatures["serving_default"](images=tf.zeros([1, 28, 28], tf.uint8))
    m.signatures["predict_encoded"](image_bytes=tf.constant([open("7.png", "rb").read()]))

Both return `probabilities` (float32 [n, 10]) and `digits` (int64 [n]). Normalisation
(/ 255, and for encoded images the MNIST-style centring of model.digit_image) lives
inside the signatures, so callers send raw pixels or file bytes.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from common import schema
from model import digit_image


def _predict(model: keras.Model, pixels: tf.Tensor) -> dict:
    images = tf.cast(pixels, tf.float32)[..., None] / schema.PIXEL_MAX
    probabilities = tf.cast(model(images, training=False), tf.float32)
    return {"probabilities": probabilities, "digits": tf.argmax(probabilities, axis=-1)}


def export_saved_model(model: keras.Model, path: str) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve_pixels(images):
        return _predict(model, images)

    def serve_encoded(image_bytes):
        pixels = tf.map_fn(
            digit_image.decode_and_normalise,
            image_bytes,
            fn_output_signature=tf.TensorSpec([schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH], tf.uint8),
        )
        return _predict(model, pixels)

    shape = [None, schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH]
    archive.add_endpoint(
        "serving_default", serve_pixels, [tf.TensorSpec(shape, tf.uint8, name="images")]
    )
    archive.add_endpoint(
        "predict_encoded", serve_encoded, [tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    archive.write_out(path, verbose=False)


def export(model: keras.Model, model_dir: str) -> None:
    """Writes model.keras and saved_model/ (each via a temporary name, then renamed)."""
    keras_path = os.path.join(model_dir, schema.KERAS_FILE)
    model.save(keras_path + ".tmp.keras")
    os.replace(keras_path + ".tmp.keras", keras_path)
    saved = os.path.join(model_dir, schema.SAVED_MODEL_DIR)
    staging = saved + ".tmp"
    if tf.io.gfile.exists(staging):
        tf.io.gfile.rmtree(staging)
    export_saved_model(model, staging)
    if tf.io.gfile.exists(saved):
        tf.io.gfile.rmtree(saved)
    tf.io.gfile.rename(staging, saved)
