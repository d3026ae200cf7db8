"""Model builders: pure functions from a TrainConfig to an uncompiled keras.Model.

Inputs are float32 [batch, 28, 28, 1] in [0, 1] (the schema's normalisation); outputs
are class probabilities [batch, 10]. The last layer computes in float32 even under mixed
precision, so probabilities stay well-formed.

With `members` above 1, `build` gives the members side by side, one output each (what
training fits, one loss per member), and `averaged` the model that is exported: one
input, the mean of the members' probabilities as its one output.
"""

from __future__ import annotations

from dataclasses import replace

import keras
from keras import layers

from common import schema
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
