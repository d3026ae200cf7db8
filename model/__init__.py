"""The model: what it is, what it reads, how it is served.

- `configs`:     one frozen dataclass per training recipe (`seed`, `strong`).
- `cnn`:         `build(config) -> keras.Model`, pure functions.
- `data`:        the tf.data input streamed from the preprocessed shards; `Split`.
- `images`:      image file bytes -> the 28x28 pixels the model sees (the scorer's path).
- `digit_image`: the same normalisation in TensorFlow ops, for the SavedModel.
- `screening`, `shape_check`, `outliers`, `calibration`: statuses and their maths.
- `export`:      model.keras + a SavedModel with raw-pixel and encoded-image signatures.
- `serving`:     the one loader every job uses, the blessing check, the Predictor.
- `promotion`:   a blessed model folder copied to where the scorer reads it.
"""
