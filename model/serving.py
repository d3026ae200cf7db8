"""The one model loader every job uses, and a predictor on uint8 pixels.

    model = serving.load_model("out/model")           # a finished MODEL_DIR or a .keras file
    Predictor("out/model").predict(uint8 [n, 28, 28])  # -> {probabilities, digit, status, ...}
    serving.load_screen("out/model")                  # calibration.json, for this model

Only the native Keras format is loaded, with Keras' safe mode on: a `.keras` file whose
config would run code (a Lambda layer's Python bytecode) is refused. Formats that run
code when loaded (`.h5`/`.hdf5` with custom objects, pickles) are refused outright. A
model folder is loaded only when it is finished (`metrics.json`, written last by
`digits train`, is there).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from common import files, schema
from model import cnn, screening  # cnn also registers its layers for load_model
from model.folder import (  # noqa: F401 (re-exported: the names every job uses)
    REFUSED_SUFFIXES,
    ModelRefused,
    calibration_digest,
    calibration_path,
    check_blessing,
    identifier,
    keras_path,
    model_folder,
    model_id,
    training_metrics,
)


def load_model(model: str) -> keras.Model:
    """Loads a finished model folder or .keras file in safe mode (see the module docstring);
    the project's own layers (cnn.SecondLook) are registered with Keras by name."""
    with files.local_copy(keras_path(model)) as path:  # Keras reads local files only
        try:
            loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
        except ValueError as error:
            raise ModelRefused(f"--model {model}: refused in safe mode: {error}") from error
    check_digit_classifier(loaded, model)
    return loaded


def check_digit_classifier(loaded: keras.Model, model: str) -> None:
    """Refuses a model that does not take 28x28 one-channel images and give one probability
    per digit (ModelRefused, naming the shapes it has)."""
    want_in = (None, schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH, 1)
    want_out = (None, schema.NUM_CLASSES)
    got_in = tuple(getattr(loaded, "input_shape", None) or ())
    got_out = tuple(getattr(loaded, "output_shape", None) or ())
    if got_in[1:] != want_in[1:] or got_out[1:] != want_out[1:]:
        raise ModelRefused(
            f"--model {model}: not a digit classifier of this project: it takes {got_in} and "
            f"gives {got_out}, where images {want_in} -> one probability per digit "
            f"{want_out} are needed. Train one with `digits train`."
        )


def load_screen(model: str, model_id_: str | None = None) -> screening.Screen:
    """The model's calibration.json (digits train writes it), checked to be for this very
    model file: a calibration fitted on another model would give wrong statuses."""
    path = calibration_path(model)
    if not files.exists(path):
        raise ModelRefused(
            f"--model {model}: no {schema.CALIBRATION_FILE}, so no calibrated confidence or "
            f"status; train it with `digits train --output {model} --data DATA`"
        )
    payload = files.read_json(path)
    expected = model_id_ or model_id(keras_path(model))
    if payload.get("model_id") != expected:
        raise ModelRefused(
            f"--model {model}: {path} was fitted for model {payload.get('model_id')}, but the "
            f"model file is now {expected}; train this model again with `digits train`"
        )
    return screening.Screen.from_dict(payload)


class Predictor:
    """A loaded model: `predict(uint8 [n, 28, 28])` -> a dict of arrays [n]: `digit`,
    `confidence`, `calibrated_confidence`, `status`, `reasons` (model.screening), and
    `probabilities` [n, 10]. With `screened=False` only `probabilities` (no calibration
    needed)."""

    def __init__(self, model: str, screened: bool = True):
        self._build(load_model(model), load_screen(model) if screened else None)

    @classmethod
    def of(
        cls, loaded: keras.Model, screen: screening.Screen | None, fold: bool = True
    ) -> Predictor:
        """The same for a model in memory and its screen (digits train, before the folder
        is finished); `fold=False` runs the model as trained (the baseline of
        bench.inference_bench), not as served."""
        predictor = cls.__new__(cls)
        predictor._build(loaded, screen, fold)
        return predictor

    def _build(
        self, loaded: keras.Model, screen: screening.Screen | None, fold: bool = True
    ) -> None:
        # Served with its batch norms folded into the convolutions: the same outputs, faster.
        self.model = cnn.for_inference(loaded) if fold else loaded
        spec = tf.TensorSpec([None, schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH], tf.uint8)

        def predict(pixels):
            images = tf.cast(pixels, tf.float32)[..., None] / schema.PIXEL_MAX
            probabilities = tf.cast(self.model(images, training=False), tf.float32)
            if screen is None:
                return {"probabilities": probabilities}
            return {
                "probabilities": probabilities,
                **screening.assess(probabilities, pixels, screen),
            }

        # Plain TensorFlow ops, no Python control flow to convert: autograph off traces faster.
        self._predict = tf.function(predict, input_signature=[spec], autograph=False)

    def predict(self, pixels: np.ndarray) -> dict:
        return {k: v.numpy() for k, v in self._predict(tf.constant(pixels, tf.uint8)).items()}
