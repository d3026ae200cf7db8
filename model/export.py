"""Exports a trained model: `model.keras` and a self-contained SavedModel.

The SavedModel (`MODEL_DIR/saved_model/`) needs no project code, only TensorFlow:

    m = tf.saved_model.load("out/model/saved_model")
    m.signatures["serving_default"](images=tf.zeros([1, 28, 28], tf.uint8))
    m.signatures["predict_encoded"](image_bytes=tf.constant([open("7.png", "rb").read()]))

Both return `probabilities` (float32 [n, 10]) and `digits` (int64 [n]). Normalisation
(/ 255, and for encoded images the MNIST-style centring of model.digit_image) lives
inside the signatures, so callers send raw pixels or file bytes. `digits train` writes
model.keras when training ends and the SavedModel once it has fitted the model's
calibration (model.screening), so both also return what `digits score` writes for each
input: `calibrated_confidence` (float32), `status` and `reasons` (strings; reasons
comma-separated) and `not_a_digit_score`.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from common import files, schema
from model import cnn, digit_image, screening


def _predict(model: keras.Model, pixels: tf.Tensor, screen) -> dict:
    images = tf.cast(pixels, tf.float32)[..., None] / schema.PIXEL_MAX
    probabilities = tf.cast(model(images, training=False), tf.float32)
    out = {"probabilities": probabilities, "digits": tf.argmax(probabilities, axis=-1)}
    if screen is not None:
        assessed = screening.assess(probabilities, pixels, screen)
        out["calibrated_confidence"] = assessed["calibrated_confidence"]
        out["not_a_digit_score"] = assessed["not_a_digit_score"]
        out.update(screening.as_strings(assessed))
    return out


def export_saved_model(model: keras.Model, path: str, screen=None) -> None:
    """The SavedModel at `path`; with a model.screening.Screen, its fields too. It runs
    the model as every predictor does (cnn.for_inference)."""
    model = cnn.for_inference(model)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve_pixels(images):
        return _predict(model, images, screen)

    def serve_encoded(image_bytes):
        pixels = tf.map_fn(
            digit_image.decode_and_normalise,
            image_bytes,
            fn_output_signature=tf.TensorSpec([schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH], tf.uint8),
        )
        return _predict(model, pixels, screen)

    shape = [None, schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH]
    archive.add_endpoint(
        "serving_default", serve_pixels, [tf.TensorSpec(shape, tf.uint8, name="images")]
    )
    archive.add_endpoint(
        "predict_encoded", serve_encoded, [tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    archive.write_out(path, verbose=False)


def save_keras(model: keras.Model, model_dir: str) -> None:
    """Writes model.keras (via a temporary name, then renamed); the SavedModel follows
    once the calibration is fitted (`replace_saved_model`)."""
    keras_path = os.path.join(model_dir, schema.KERAS_FILE)
    model.save(keras_path + ".tmp.keras")
    os.replace(keras_path + ".tmp.keras", keras_path)


def replace_saved_model(model: keras.Model, model_dir: str, screen) -> None:
    """Exports the SavedModel with the calibration (local or gs:// model folder).
    Written beside, then swapped in; on a bucket, saved_model.pb is copied last, so a
    copy cut short cannot be loaded."""
    local = tempfile.mkdtemp(prefix="digits-export-")
    try:
        staged = os.path.join(local, schema.SAVED_MODEL_DIR)
        export_saved_model(model, staged, screen)
        target = files.join(model_dir, schema.SAVED_MODEL_DIR)
        if files.is_local(model_dir):
            old = target + ".old"
            shutil.rmtree(old, ignore_errors=True)
            if os.path.exists(target):
                os.replace(target, old)
            shutil.move(staged, target)
            shutil.rmtree(old, ignore_errors=True)
            return
        names = sorted(files.list_local_tree(staged), key=lambda name: name == "saved_model.pb")
        files.delete_tree(target)
        files.upload_tree(staged, target, names)
    finally:
        shutil.rmtree(local, ignore_errors=True)
