"""The parts of the batch-scoring job (`jobs/score.py` wires them into a Beam pipeline).

- `inputs`:     listing the inputs once, in the driver: fingerprint and batch lists.
- `transforms`: the named Beam stages, each testable alone on in-memory data:
                ReadBatchLists, ReadFiles, DecodeImages, ReadRecords, Predict (with any
                predictor factory), FormatPredictions, Summarise, ReportProgress.
- `images`:     image bytes -> MNIST pixels, or a clear reason why not.
- `partition`:  the nightly output partition: staged, swapped in whole, `_SUCCESS` last.
"""
