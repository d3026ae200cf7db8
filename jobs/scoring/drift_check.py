"""Tonight against the training reference (skew) and the trailing nights (drift):
`drift.json` in the partition, and whether to raise the alarm (model/drift.py measures).

    reference = load_reference(model, "--drift-reference or None")
    nights = trailing_nights(output, date, 7)        # earlier dt=*/summary.json
    report = check(tonight_histograms, reference, nights)

The reference is `reference.json` in the model folder (digits evaluate writes it from the
test split), or what `--drift-reference` names: a reference.json, or a night's
summary.json (a team whose forms look nothing like MNIST picks a good night).
"""

from __future__ import annotations

from common import files, schema
from common.counts import merge_counts
from model import drift


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
    """The summed histograms of up to `nights` finished nights before `date` in `output`."""
    if not date:
        return {"nights": [], "histograms": {}}
    found = []
    for match in files.match(files.join(output, "dt=*", schema.SUMMARY_FILE)):
        night = match.path.rstrip("/").split("/")[-2][len("dt=") :]
        if night < date and files.exists(files.join(output, f"dt={night}", schema.SUCCESS_FILE)):
            found.append((night, match.path))
    found = sorted(found)[-nights:]
    histograms = [files.read_json(path).get("drift") or {} for _, path in found]
    return {"nights": [night for night, _ in found], "histograms": merge_counts(histograms)}


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
            "min_inputs": min_inputs,
        },
        "reference": reference and reference["source"],
        "trailing_nights": nights["nights"],
        "comparisons": rows,
        "tonight": tonight,
    }
