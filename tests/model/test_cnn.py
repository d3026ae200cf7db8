"""What every predictor runs (model/cnn.py, for_inference): the trained model with its batch
norms folded into the convolutions, giving the same outputs as the model trained, and
leaving that model as it was."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np

from model import cnn, serving
from model.configs import recipe


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        elif isinstance(layer, cnn.SecondLook):
            yield from _layers(layer.network)
        else:
            yield layer


def _robust_with_trained_statistics():
    """robust's exported shape (two members averaged, a second look) with batch norms whose
    statistics and scales are far from the identity, as training leaves them."""
    keras.utils.set_random_seed(3)
    members = cnn.build(replace(recipe("robust"), members=2))
    model = cnn.with_second_look(cnn.averaged(members), 0.8)
    rng = np.random.default_rng(0)
    for layer in _layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            gamma, beta = rng.uniform(0.5, 2, n), rng.normal(0, 0.3, n)
            layer.set_weights([gamma, beta, rng.normal(0, 0.2, n), rng.uniform(0.1, 3, n)])
    return model


def test_batch_norms_are_folded_and_the_outputs_stay_the_same():
    model = _robust_with_trained_statistics()
    images = np.random.default_rng(1).uniform(0, 1, (96, 28, 28, 1)).astype(np.float32)
    before = model(images, training=False).numpy()
    inference = cnn.for_inference(model)
    kinds = [type(layer).__name__ for layer in _layers(inference)]
    assert "BatchNormalization" not in kinds and kinds.count("Conv2D") == 8  # 2 members x 4
    assert all(layer.use_bias for layer in _layers(inference) if "Conv" in type(layer).__name__)
    second_look = inference.get_layer("probabilities")
    assert isinstance(second_look, cnn.SecondLook) and second_look.below == 0.8
    np.testing.assert_allclose(inference(images, training=False), before, atol=1e-5)
    # The trained model keeps its batch norms and its outputs.
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in _layers(model)) == 6
    np.testing.assert_allclose(model(images, training=False), before, atol=0)


def test_a_model_with_nothing_to_fold_is_served_as_it_is():
    seed = cnn.build(recipe("seed"))
    assert cnn.for_inference(seed) is seed
    layers = keras.layers
    stacked = keras.Sequential(  # a user's own: Keras clones no Sequential call by call
        [keras.Input((28, 28, 1)), layers.Conv2D(4, 3), layers.BatchNormalization(),
         layers.Flatten(), layers.Dense(10, activation="softmax")]
    )  # fmt: skip
    assert cnn.for_inference(stacked) is stacked
    inputs = keras.Input((28, 28, 1))
    wide = layers.Conv2D(4, 3)(inputs)  # read by the batch norm and by the output: not folded
    both = layers.Concatenate()([layers.BatchNormalization()(wide), wide])
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(both))
    shared = keras.Model(inputs, outputs)
    assert cnn.for_inference(shared) is shared


def test_the_predictor_runs_the_folded_model_of_a_saved_one(tmp_path):
    model = _robust_with_trained_statistics()
    model.save(tmp_path / "model.keras")
    predictor = serving.Predictor(str(tmp_path / "model.keras"), screened=False)
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in _layers(predictor.model)
    )
    pixels = np.random.default_rng(2).integers(0, 256, (40, 28, 28)).astype(np.uint8)
    expected = model(pixels[..., None].astype(np.float32) / 255.0, training=False)
    np.testing.assert_allclose(predictor.predict(pixels)["probabilities"], expected, atol=1e-5)
