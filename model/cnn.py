"""Model builders: pure functions from a TrainConfig to an uncompiled keras.Model.

Inputs are float32 [batch, 28, 28, 1] in [0, 1] (the schema's normalisation); outputs
are class probabilities [batch, 10]. The last layer computes in float32 even under mixed
precision, so probabilities stay well-formed.

With `members` above 1, `build` gives the members side by side, one output each (what
training fits, one loss per member), and `averaged` the model that is exported: one
input, the mean of the members' probabilities as its one output. `with_second_look`
wraps the exported network so that it reads again, shifted, the few digits it is unsure of
(SecondLook).
"""

from __future__ import annotations

import math
from dataclasses import replace

import keras
import tensorflow as tf
from keras import layers

from common import schema
from model import screening
from model.configs import TrainConfig

INPUT_SHAPE = (*schema.IMAGE_SHAPE, 1)


def build_seed(config: TrainConfig, name: str = "seed") -> keras.Model:
    """The notebook's CNN: 110,986 parameters."""
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, name="image"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(schema.NUM_CLASSES, activation="softmax", dtype="float32"),
        ],
        name=name,
    )


def _conv_bn(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    # momentum 0.9: the moving statistics keep up with weights that change fast under a
    # one-cycle schedule, so per-epoch validation (which picks the epoch) is not noisy.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_strong(config: TrainConfig, name: str = "strong") -> keras.Model:
    """Four 3x3 convolutions in three stages (28x28, 14x14, 7x7), batch norm after the last
    three, dropout and a dense layer on the flattened 7x7 maps; augmentation (rotation,
    zoom, shift) is active only while training."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    if config.augment:
        x = layers.RandomRotation(
            config.max_rotation_degrees / 360.0,
            fill_mode="constant",
            seed=config.seed,
            name="random_rotation",
        )(x)
        x = layers.RandomZoom(
            config.max_zoom, fill_mode="constant", seed=config.seed, name="random_zoom"
        )(x)
        x = layers.RandomTranslation(
            config.max_shift,
            config.max_shift,
            fill_mode="constant",
            seed=config.seed,
            name="random_shift",
        )(x)
    # No batch norm on the 28x28 stage: there it costs as much as the convolution itself.
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="stage1_conv")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)  # 14x14
    x = _conv_bn(x, 64, "stage2a")
    x = _conv_bn(x, 64, "stage2b")
    x = layers.MaxPooling2D(2, name="pool2")(x)  # 7x7
    x = _conv_bn(x, 128, "stage3")
    # Flatten, not global pooling: where a stroke is in the digit matters (6 vs 9 vs 0).
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    outputs = layers.Dense(
        schema.NUM_CLASSES, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name=name)


# robust is the strong network trained with damaged digits (model/damage.py).
BUILDERS = {"seed": build_seed, "strong": build_strong, "robust": build_strong}


def build(config: TrainConfig) -> keras.Model:
    """The recipe's network; with several members, the members side by side (member_0 with
    the recipe's seed, member_1 with the next, ...: their own initial weights, augmentation
    and dropout), one output each."""
    builder = BUILDERS[config.model]
    if config.members == 1:
        return builder(config)
    inputs = keras.Input(INPUT_SHAPE, name="image")
    members = [
        builder(replace(config, seed=config.seed + i, members=1), name=f"member_{i}")
        for i in range(config.members)
    ]
    return keras.Model(inputs, [member(inputs) for member in members], name="members")


def averaged(members: keras.Model) -> keras.Model:
    """`build`'s members side by side -> one output, the mean of their probabilities (the
    same layers and weights, not a copy)."""
    mean = layers.Average(name="probabilities", dtype="float32")(members.outputs)
    return keras.Model(members.inputs, mean, name="ensemble")


# One pixel left, right, up and down: (rows, columns) for tf.roll on a [batch, 28, 28, 1].
SHIFTS = ((0, -1), (0, 1), (-1, 0), (1, 0))


@keras.saving.register_keras_serializable(package="digits")
class SecondLook(layers.Layer):
    """The network's probabilities; for each digit it is unsure of (the top digit's share of
    the two likeliest, p1 / (p1 + p2), under `below`), the mean of those and of the digit
    read again shifted one pixel each way (SHIFTS). Only the unsure digits are read again,
    so a night of clear digits costs hardly more than one reading."""

    def __init__(self, network: keras.Model, below: float, **kwargs):
        super().__init__(**kwargs)
        self.network, self.below = network, below

    def call(self, images):
        probabilities = self.network(images)
        unsure = tf.where(screening.rank(probabilities, "top_two") < self.below)[:, 0]

        def look_again():
            # Read in batches of a few sizes (powers of two, the first unsure digit again
            # as filler): each new batch shape costs the CPU's kernels a new set-up.
            n = tf.size(unsure)
            padded = tf.concat([unsure, tf.repeat(unsure[:1], power_of_two(n) - n)], 0)
            picked = tf.gather(images, padded)
            views = tf.concat([tf.roll(picked, shift, axis=(1, 2)) for shift in SHIFTS], 0)
            again = tf.reshape(self.network(views), (len(SHIFTS), -1, schema.NUM_CLASSES))[:, :n]
            mean = (tf.gather(probabilities, unsure) + tf.reduce_sum(again, 0)) / (1 + len(SHIFTS))
            return tf.tensor_scatter_nd_update(probabilities, unsure[:, None], mean)

        # Keras' layers refuse an empty batch: with no unsure digit, nothing is read again.
        return tf.cond(tf.size(unsure) > 0, look_again, lambda: probabilities)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], schema.NUM_CLASSES)

    def get_config(self):
        network = keras.saving.serialize_keras_object(self.network)
        return {**super().get_config(), "network": network, "below": self.below}

    @classmethod
    def from_config(cls, config):
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def power_of_two(n: tf.Tensor) -> tf.Tensor:
    """The smallest power of two at least n (an int32 scalar, n at least 1)."""
    exponent = tf.math.ceil(tf.math.log(tf.cast(n, tf.float32)) / math.log(2.0) - 1e-6)
    return tf.cast(2.0**exponent, tf.int32)


def with_second_look(network: keras.Model, below: float) -> keras.Model:
    """The exported network, reading again the digits it is unsure of (SecondLook); the
    same layers and weights, not a copy."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    outputs = SecondLook(network, below, name="probabilities", dtype="float32")(inputs)
    return keras.Model(inputs, outputs, name=f"{network.name}_second_look")


def for_inference(model: keras.Model) -> keras.Model:
    """The same function of the images, faster to run: a copy of `model` with each batch
    norm folded into the convolution before it (kernel scaled, a bias added), so inference
    adds a bias where training normalised. `model` is left as it is; a model with nothing
    to fold (`seed`, or a Sequential model, which Keras cannot clone layer call by layer
    call) is returned as it is. Every predictor runs this (model.serving, model.export);
    the outputs differ from `model`'s by float rounding only (tested)."""
    pairs = _convolutions_before_batch_norm(model)
    if not pairs:
        return model
    copies = {}  # id(layer) -> (layer, its copy)

    def clone(layer):
        if isinstance(layer, SecondLook):  # not a Functional model: its network by hand
            network = for_inference(layer.network)
            return SecondLook(network, layer.below, name=layer.name, dtype=layer.dtype_policy)
        config = layer.get_config()
        if id(layer) in pairs:
            config["use_bias"] = True
        copy = layer.__class__.from_config(config)
        copies[id(layer)] = (layer, copy)
        if id(layer) in folded:
            skipped.add(id(copy))
        return copy

    def call(layer, *args, **kwargs):  # `layer`: the copy
        if id(layer) in skipped:
            return args[0]  # a batch norm folded into the convolution before it
        return layer(*args, **kwargs)

    folded = {id(norm) for _, norm in pairs.values()}
    skipped = set()
    inference = keras.models.clone_model(
        model, clone_function=clone, call_function=call, recursive=True
    )
    for key, (layer, copy) in copies.items():
        if key in pairs:
            copy.set_weights(_folded_weights(*pairs[key]))
        elif key not in folded:
            copy.set_weights(layer.get_weights())
    return inference


def _convolutions_before_batch_norm(model: keras.Model) -> dict:
    """{id(conv): (conv, batch norm)} for each batch norm whose input is a Conv2D's output
    that nothing else reads and that no activation follows inside the Conv2D; through
    nested models and SecondLook's network too, none in a Sequential model."""
    pairs = {}
    if isinstance(model, keras.Sequential):
        return pairs
    for layer in model.layers:
        if isinstance(layer, SecondLook):
            pairs.update(_convolutions_before_batch_norm(layer.network))
        elif isinstance(layer, keras.Model):
            pairs.update(_convolutions_before_batch_norm(layer))
        elif isinstance(layer, layers.BatchNormalization) and len(layer._inbound_nodes) == 1:
            conv = layer.input._keras_history.operation
            if (
                isinstance(conv, layers.Conv2D)
                and conv.activation is keras.activations.linear
                and len(conv._outbound_nodes) == 1
                and layer.axis in (-1, 3)
            ):
                pairs[id(conv)] = (conv, layer)
    return pairs


def _folded_weights(conv: layers.Conv2D, norm: layers.BatchNormalization) -> list:
    """The kernel and bias of conv followed by norm at inference, computed in float64."""
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype("float64")
    bias = keras.ops.convert_to_numpy(conv.bias).astype("float64") if conv.use_bias else 0.0
    mean, variance = (
        keras.ops.convert_to_numpy(w).astype("float64")
        for w in (norm.moving_mean, norm.moving_variance)
    )
    scale = 1.0 / (variance + norm.epsilon) ** 0.5
    if norm.gamma is not None:
        scale = scale * keras.ops.convert_to_numpy(norm.gamma).astype("float64")
    shift = (
        keras.ops.convert_to_numpy(norm.beta).astype("float64") if norm.beta is not None else 0.0
    )
    return [(kernel * scale).astype("float32"), ((bias - mean) * scale + shift).astype("float32")]
