"""Loading an exported model for scoring, safely, and predicting on uint8 pixels.

Only the native Keras format is loaded, with Keras' safe mode on: a `.keras` file whose
config would run code (a Lambda layer's Python bytecode) is refused. Formats that run
code when loaded (`.h5`/`.hdf5` with custom objects, pickles) are refused outright.
"""

from __future__ import annotations

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from model import export
from pipeline import schema

REFUSED_SUFFIXES = (".h5", ".hdf5", ".pkl", ".pickle", ".joblib", ".dill", ".pt")


class ModelRefused(ValueError):
    pass


def keras_path(model: str) -> str:
    """MODEL_DIR (from digits train) or a .keras file -> the .keras file to load."""
    if model.endswith(REFUSED_SUFFIXES):
        raise ModelRefused(
            f"--model {model}: refusing to load {os.path.splitext(model)[1]} files, whose "
            "loading can run arbitrary code; export the model in the native .keras format"
        )
    path = os.path.join(model, export.KERAS_FILE) if tf.io.gfile.isdir(model) else model
    if not path.endswith(".keras"):
        raise ModelRefused(f"--model {model}: expected a model folder or a .keras file")
    if not tf.io.gfile.exists(path):
        raise ModelRefused(f"--model {model}: {path} not found; run `digits train` first")
    return path


def model_id(path: str) -> str:
    """The model's identifier in every prediction: SHA-256 (16 hex) of its .keras file."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


class Predictor:
    """A loaded model: `predict(uint8 [n, 28, 28]) -> float32 probabilities [n, 10]`."""

    def __init__(self, model: str):
        path = keras_path(model)
        try:
            self.model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except ValueError as error:
            raise ModelRefused(f"--model {model}: refused in safe mode: {error}") from error
        self.id = model_id(path)
        self._predict = tf.function(
            lambda pixels: self.model(
                tf.cast(pixels, tf.float32)[..., None] / schema.PIXEL_MAX, training=False
            ),
            input_signature=[
                tf.TensorSpec([None, schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH], tf.uint8)
            ],
        )

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        return self._predict(tf.constant(pixels, tf.uint8)).numpy().astype(np.float32)
