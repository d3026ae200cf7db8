"""Tonight against the training reference (skew) and the trailing nights (drift):
`drift.json` in the partition, and whether to raise the alarm (monitoring/drift.py measures).

    reference = load_reference(model, "--drift-reference or None")
    nights = trailing_nights(output, date, 7)        # earlier ordinary dt=*/summary.json
    report = check(tonight_histograms, reference, nights)

The reference is `reference.json` in the model folder (digits train writes it from the
validation split), or what `--drift-reference` names: a reference.json, or a night's
summary.json (a team whose forms look nothing like MNIST picks a good night).
"""

from __future__ import annotations

import re

from common import files, ownership, schema
from common.counts import merge_counts
from monitoring import drift

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def load_reference(model: str, override: str | None) -> dict | None:
    """{"source", "histograms"} or None (no reference: skew is not checked)."""
    from model.serving import model_folder

    path = override or files.join(model_folder(model), schema.REFERENCE_FILE)
    if not files.exists(path):
        if override:
            raise ValueError(f"--drift-reference {override}: not found")
        return None
    payload = files.read_json(path)
    histograms = payload.get("histograms") or payload.get("drift")
    if not histograms:
        raise ValueError(
            f"--drift-reference {path}: neither a reference.json nor a summary.json with "
            "drift histograms"
        )
    return {"source": path, "histograms": histograms}


def trailing_nights(output: str, date: str | None, nights: int) -> dict:
    """The summed histograms of up to `nights` finished, ordinary nights before `date` in
    `output`. A night that raised the alarm is left out (its shift would become tomorrow's
    normal, and an ordinary night after it would look shifted) unless a person accepted
    it: `_DRIFT_ACCEPTED` in its partition. Folders not named dt=YYYY-MM-DD are ignored."""
    if not date:
        return {"nights": [], "histograms": {}, "left_out": []}
    found, left_out = [], []
    for match in files.match(files.join(output, "dt=*", schema.SUMMARY_FILE)):
        folder = match.path.rstrip("/").rsplit("/", 2)[-2]
        night = folder[len("dt=") :]
        if not DATE.fullmatch(night) or night >= date:
            continue
        if not files.exists(files.join(output, folder, schema.SUCCESS_FILE)):
            continue
        found.append((night, match.path))
    chosen = []
    for night, path in sorted(found, reverse=True):
        if len(chosen) == nights:
            break
        summary = files.read_json(path)
        alarmed = (summary.get("drift_alarm") or {}).get("alarm")
        accepted = files.join(output, f"dt={night}", ownership.DRIFT_ACCEPTED_FILE)
        if alarmed and not files.exists(accepted):
            left_out.append(night)
            continue
        chosen.append((night, summary.get("drift") or {}))
    chosen.reverse()
    return {
        "nights": [night for night, _ in chosen],
        "histograms": merge_counts([histograms for _, histograms in chosen]),
        "left_out": sorted(left_out),
    }


def check(tonight: dict, reference: dict | None, nights: dict, min_inputs: int) -> dict:
    """drift.json: every comparison with its distances and level; alarm if any is `act`."""
    rows = []
    if reference:
        rows += drift.compare(
            tonight, reference["histograms"], drift.AGAINST_REFERENCE, "reference", min_inputs
        )
    if nights["histograms"]:
        rows += drift.compare(
            tonight, nights["histograms"], drift.AGAINST_NIGHTS, "trailing_nights", min_inputs
        )
    breaches = [f"{r['histogram']} vs {r['against']}" for r in rows if r["level"] == "act"]
    return {
        "alarm": bool(breaches),
        "breaches": breaches,
        "thresholds": {
            "psi_watch": drift.PSI_WATCH,
            "psi_act": drift.PSI_ACT,
            "js_act": drift.JS_ACT,
            "act_limits_per_histogram": drift.ORDINARY_SPREAD,
            "min_inputs": min_inputs,
        },
        "reference": reference and reference["source"],
        "trailing_nights": nights["nights"],
        "alarmed_nights_left_out": nights.get("left_out", []),
        "comparisons": rows,
        "tonight": tonight,
    }
