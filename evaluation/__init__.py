"""Evaluation: a model folder and a dataset -> the report and the blessing
(`digits evaluate`); it changes nothing else in the model folder.

- `evaluate`:    the stage: predict test -> metrics -> calibration -> robustness -> gate
                 -> report.
- `calibration`: the calibration `digits train` fitted, judged on test.
- `robustness`:  corruptions, not-a-digit inputs and scans, through the scorer's predictor.
- `suites`:      the images of those suites (never trained on).
- `gate`:        the blessing's checks; `blessing`: blessing.json for this model file.
- `report`:      metrics, pictures, the model card.
"""
