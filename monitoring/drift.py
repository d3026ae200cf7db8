"""Input and output statistics of a set of scored images, and how far two sets are apart.

The scorer counts, for every night, what it saw (histograms, HISTOGRAMS) and compares
them with the training reference (skew: `reference.json`, which `digits train` writes
into the model folder from the validation split) and with the trailing nights in the output
folder (drift):

    counts = histograms(facts, ink, digits, calibrated, statuses)  # one batch
    distance(tonight["ink"], reference["ink"])  # {"psi": ..., "js": ...}

Distances, not p-values: with 10^5 images a night every difference is "significant".
PSI (population stability index, natural log) reads 0.1 as "watch" and 0.25 as "act";
Jensen-Shannon distance (the square root of the divergence, natural log, as SciPy's
`jensenshannon`) reads 0.1 as a shift, Evidently's default. Ink share and calibrated
confidence vary more than that between ordinary nights of different writers, so they act
only at wider limits (ORDINARY_SPREAD).
"""

from __future__ import annotations

import math

import numpy as np

# facts per input (model.images.input_facts): what the image was before normalising.
FACTS = ("height", "width", "mode", "inverted", "centre_offset")
MODES = ("gray", "gray+alpha", "rgb", "rgba", "record")
SIZE_EDGES = (0, 28, 64, 128, 256, 512, 1024, 2048, math.inf)  # the larger side, pixels
INK_EDGES = tuple(np.linspace(0, 0.5, 11)) + (1.0,)
OFFSET_EDGES = (0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, math.inf)
CONFIDENCE_EDGES = (0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0 + 1e-9)

# Which histograms are compared with what: the training reference only has what training
# data can show (records: no sizes, modes or inversion), and digit mixes differ from
# MNIST's in real forms (amounts, postcodes), so class shares are compared with past
# nights only.
INPUTS = ("size", "mode", "inverted", "ink", "centre_offset")
OUTPUTS = ("digit", "calibrated_confidence", "status")
AGAINST_REFERENCE = ("ink", "centre_offset", "calibrated_confidence", "status")
AGAINST_NIGHTS = INPUTS + OUTPUTS

PSI_WATCH, PSI_ACT = 0.1, 0.25
JS_ACT = 0.1
# Wider limits where ordinary nights already differ this much: MNIST's test split is in
# blocks of writers, and nights of 1,500 of its digits from any part of it reach, against
# the reference (the validation split), a JS distance of 0.17 (PSI 0.27) on ink share (some
# writers press harder) and 0.12 on calibrated confidence (some write more carefully); the
# status, which follows the calibrated confidence (review: under the threshold), moves with
# it: the night of test digits 5,000-5,999 against the five before reached JS 0.096-0.103
# on status for `seed` networks (one reviews 11% of that night against 20-22% of each
# before: docs/experiments.md, 2026-12-05, evening). An alarm that fires on ordinary
# nights is soon switched off; tests/test_drift.py holds them quiet.
ORDINARY_SPREAD = {
    "ink": {"psi": 0.4, "js": 0.2},
    "calibrated_confidence": {"psi": 0.3, "js": 0.15},
    "status": {"psi": 0.3, "js": 0.15},
}
# Fewer inputs (tonight or in the comparison) are not judged: at 500 a resample of the
# reference itself stays under the thresholds (tests/test_drift.py holds it at 95%).
MIN_INPUTS = 500
_EPSILON = 1e-4


def _counts(values, edges) -> list[int]:
    return np.histogram(np.asarray(values, np.float64), bins=np.asarray(edges))[0].tolist()


def histograms(facts: np.ndarray, ink, digits, calibrated, statuses) -> dict:
    """Counts of one batch: facts [n, len(FACTS)], and per input the normalised image's ink
    share, the predicted digit, the calibrated confidence and the status code."""
    facts = np.asarray(facts, np.float64).reshape(-1, len(FACTS))
    return {
        "size": _counts(facts[:, :2].max(axis=1), SIZE_EDGES),
        "mode": np.bincount(facts[:, 2].astype(int), minlength=len(MODES)).tolist(),
        "inverted": np.bincount(facts[:, 3].astype(int), minlength=2).tolist(),
        "ink": _counts(ink, INK_EDGES),
        "centre_offset": _counts(facts[:, 4], OFFSET_EDGES),
        "digit": np.bincount(np.asarray(digits, int), minlength=10).tolist(),
        "calibrated_confidence": _counts(calibrated, CONFIDENCE_EDGES),
        "status": np.bincount(np.asarray(statuses, int), minlength=3).tolist(),
    }


def distance(counts, reference) -> dict:
    """PSI and Jensen-Shannon distance between two histograms (counts over the same bins)."""
    p = np.asarray(counts, np.float64)
    q = np.asarray(reference, np.float64)
    p = (p + _EPSILON * p.sum()) / (p.sum() * (1 + _EPSILON * len(p)))
    q = (q + _EPSILON * q.sum()) / (q.sum() * (1 + _EPSILON * len(q)))
    psi = float(np.sum((p - q) * np.log(p / q)))
    m = (p + q) / 2
    divergence = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
    return {"psi": psi, "js": float(math.sqrt(max(divergence, 0.0)))}


def act_limits(name: str | None = None) -> dict:
    """{"psi", "js"}: the distances at which histogram `name` calls for action."""
    return ORDINARY_SPREAD.get(name, {"psi": PSI_ACT, "js": JS_ACT})


def level(measured: dict, name: str | None = None) -> str:
    limits = act_limits(name)
    if measured["psi"] >= limits["psi"] or measured["js"] >= limits["js"]:
        return "act"
    return "watch" if measured["psi"] >= PSI_WATCH else "ok"


def compare(
    tonight: dict, baseline: dict, names, against: str, min_inputs: int = MIN_INPUTS
) -> list[dict]:
    """One row per histogram in `names` present in both: distances and level."""
    rows = []
    for name in names:
        if name not in tonight or name not in baseline:
            continue
        n, m = sum(tonight[name]), sum(baseline[name])
        row = {"histogram": name, "against": against, "inputs": n, "baseline_inputs": m}
        if min(n, m) < min_inputs:
            rows.append({**row, "level": "too_few_inputs"})
            continue
        measured = distance(tonight[name], baseline[name])
        rows.append({**row, **measured, "level": level(measured, name)})
    return rows
