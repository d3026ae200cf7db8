"""The shape check: small networks that tell digits from other marks, as an input check.

The classifier is asked which of ten digits an image is, never whether it is one; a model
trained on digits alone (the notebook's `seed`) reads a font's r, #, v, A or ! as a 1 or a
4 with high confidence. This check answers the other question, the same way for every
recipe: three small convolutional networks (ShapeCheckConfig.members; FILTERS, HIDDEN:
about 40,000 weights and a fortieth of the classifier's arithmetic each), their
probabilities averaged, each trained on training digits against its own draw of
model.outliers' images (hand-drawn letters and symbols, the same printed in Computer
Modern, pen curves and polylines, stroke soup, two digits over each other), none of which
are the evaluation's generators or typefaces (evaluation.suites). One network's figures
on letters and scribbles move by several points with its seed; the average sent fewer
digits to review than any one of them (docs/experiments.md, 2026-12-05, afternoon).

`digits train` trains it (training/calibrate.py) and stores its weights in
calibration.json with the other input checks, so the scorer, the SavedModel and Dataflow
workers carry it as part of model.screening.Screen:

    member = train(digits, not_digits, ShapeCheckConfig())   # one network, JSON-ready
    weights = combine([member, ...])   # what calibration.json holds
    score(pixels, weights)   # uint8 [n, 28, 28] -> float32 [n] in (0, 1): how unlike a digit

`score` is TensorFlow ops (no Keras), so it runs inside the scorer's tf.function and the
SavedModel's signatures; it equals the mean of the Keras networks' sigmoids (tested).
Calibrations written before the members were (one network's "layers") still score.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

FILTERS = (16, 32, 64)  # 3x3 convolutions with stride 2: 28 -> 13 -> 6 -> 2
HIDDEN = 64


@dataclass(frozen=True)
class ShapeCheckConfig:
    epochs: int = 8  # 0: no shape check
    members: int = 3  # networks averaged, each with its own seed and not-a-digit images
    max_outliers: int = 24_000  # not-a-digit images made (at most half the training digits)
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self):
        if self.members < 1:
            raise ValueError(f"--shape-check-members must be at least 1, got {self.members}")


def network():
    import keras

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            *[keras.layers.Conv2D(f, 3, strides=2, activation="relu") for f in FILTERS],
            keras.layers.Flatten(),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(1, dtype="float32"),  # the logit of "not a digit"
        ]
    )


def train(
    digits: np.ndarray, not_digits: np.ndarray, config: ShapeCheckConfig, callbacks=()
) -> dict:
    """uint8 [n, 28, 28] digits and [m, 28, 28] not-digits (weighted to count as much as
    the digits) -> the trained weights (`encode`); `callbacks`: Keras', for the fit."""
    import keras

    keras.utils.set_random_seed(config.seed)
    x = np.concatenate([digits, not_digits])[..., None].astype(np.float32) / 255.0
    y = np.concatenate([np.zeros(len(digits)), np.ones(len(not_digits))]).astype(np.float32)
    weight = np.where(y == 1, len(digits) / max(len(not_digits), 1), 1.0).astype(np.float32)
    model = network()
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(
        x,
        y,
        sample_weight=weight,
        batch_size=config.batch_size,
        epochs=config.epochs,
        verbose=0,
        callbacks=list(callbacks),
    )
    return encode(model)


def encode(model) -> dict:
    """A Keras `network()` -> {"layers": [{"kernel": ..., "bias": ...}, ...]}, each array
    as its shape and little-endian float32 bytes in base64 (exact, and a fifth of the size
    of decimal text)."""
    layers = [layer for layer in model.layers if layer.weights]
    return {
        "architecture": {"filters": list(FILTERS), "hidden": HIDDEN},
        "layers": [
            {"kernel": _pack(layer.kernel.numpy()), "bias": _pack(layer.bias.numpy())}
            for layer in layers
        ],
    }


def _pack(array: np.ndarray) -> dict:
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return {"shape": list(array.shape), "float32": base64.b64encode(data).decode("ascii")}


def _unpack(packed: dict) -> np.ndarray:
    data = base64.b64decode(packed["float32"])
    return np.frombuffer(data, dtype="<f4").reshape(packed["shape"])


def combine(members: list[dict]) -> dict:
    """Trained networks (`train`, `encode`) -> the shape check's weights, their scores
    averaged by `score`."""
    return {
        "architecture": members[0]["architecture"],
        "members": [{"layers": member["layers"]} for member in members],
    }


def members(weights: dict) -> list[dict]:
    """The networks in the shape check's weights (`combine`; one network's, as `encode`
    gives them, is one)."""
    return weights.get("members") or [weights]


def score(pixels, weights: dict) -> tf.Tensor:
    """uint8 [n, 28, 28] -> float32 [n]: the networks' mean probability that it is no
    digit (`members`)."""
    x = tf.cast(pixels, tf.float32)[..., None] / 255.0
    networks = members(weights)
    return tf.add_n([_probability(x, network["layers"]) for network in networks]) / len(networks)


def _probability(x: tf.Tensor, packed_layers: list) -> tf.Tensor:
    layers = [(_unpack(layer["kernel"]), _unpack(layer["bias"])) for layer in packed_layers]
    convolutions, dense = layers[: len(FILTERS)], layers[len(FILTERS) :]
    for kernel, bias in convolutions:
        x = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=2, padding="VALID") + bias)
    x = tf.reshape(x, [tf.shape(x)[0], -1])
    for i, (kernel, bias) in enumerate(dense):
        x = tf.matmul(x, kernel) + bias
        if i < len(dense) - 1:
            x = tf.nn.relu(x)
    return tf.sigmoid(x[:, 0])
