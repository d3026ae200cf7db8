"""Nightly batch scoring: images and TFRecords -> a dated partition of predictions
(`digits score`; jobs/score.py holds its options).

- `night`:      the stage: checks, the night's lock, the Beam pipeline, summary, publish.
- `inputs`:     listing the inputs once, in the driver: fingerprint and batch lists.
- `transforms`: the named Beam stages: ReadInputs, Predict (with any predictor factory),
                FormatPredictions, Summarise, ReportProgress.
- `partition`:  the nightly output partition: staged, swapped in whole, `_SUCCESS` last,
                one run at a time.
"""
