"""The model side: typed configs, pure model builders, the tf.data input, export.

- `configs`:     one frozen dataclass per model recipe (`seed`, `strong`).
- `cnn`:         `build(config) -> keras.Model`, pure functions.
- `data`:        the tf.data input streamed from the preprocessed shards.
- `digit_image`: MNIST-style normalisation of arbitrary digit images (TensorFlow ops),
                 shared by the SavedModel's `predict_encoded` and the scoring job.
- `export`:      model.keras + a SavedModel with raw-pixel and encoded-image signatures.
"""
