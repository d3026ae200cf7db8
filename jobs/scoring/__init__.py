"""The parts of the batch-scoring job (`jobs/score.py` wires them into a Beam pipeline).

- `transforms`: the named Beam stages, each testable alone on in-memory data:
                MatchInputs, ReadFiles, DecodeImages, ReadRecords, Predict (with any
                predictor factory), FormatPredictions, Summarise.
- `images`:     image bytes -> MNIST pixels, or a clear reason why not.
- `partition`:  the nightly output partition: staged, swapped in whole, `_SUCCESS` last.
"""
