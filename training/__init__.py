"""Training: a dataset -> a servable model folder (`digits train`).

- `train`:     the tf.data input into the recipe's CNN, resumable, synced to a bucket;
               export; metrics.json last.
- `calibrate`: fitted on the validation split: shape check, temperature, review
               threshold, input limits (calibration.json), reference.json, the SavedModel
               with statuses.
- `folder`:    a gs:// model folder trained in a local mirror, resumable from the bucket.
- `progress`:  Keras fits that print where they are.
"""
