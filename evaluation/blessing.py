"""The gate step of `digits evaluate`: the blessing (evaluation/gate.py) for this exact
model file, written last into the model folder as blessing.json, and a model card section.
"""

from __future__ import annotations

from common import files, schema
from evaluation import gate
from model import serving
from model.data import Split


def baseline_exists(baseline: str | None) -> bool:
    """Whether --baseline names a model; a folder with none yet (first run) is said so."""
    if not baseline:
        return False
    path = baseline if baseline.endswith(".keras") else files.join(baseline, schema.KERAS_FILE)
    if files.exists(path):
        return True
    print(f"digits evaluate: no model at --baseline {baseline} yet: not compared (first run)")
    return False


def bless(
    config: gate.GateConfig,
    model: str,
    baseline_model: str | None,
    results: dict,
    test: Split,
    baseline: Split | None,
) -> dict:
    """The gate's verdict (evaluation.gate), written last into the model folder as
    blessing.json for the model file's SHA-256."""
    verdict = gate.bless(
        config,
        test.labels,
        test.predicted,
        results["calibration"]["test_ece_after"],
        results["robustness"]["corruptions"]["mean_accuracy"],
        None if baseline is None else baseline.predicted,
        test.sources,
        (
            _share(results["calibration"]["validation_at_threshold"]),
            None if baseline is None else accepted_share(baseline_model),
        ),
    )
    digest = files.sha256_file(serving.keras_path(model))
    verdict = {
        "model_id": serving.identifier(digest),
        "model_sha256": digest,
        "calibration_sha256": serving.calibration_digest(model),
        "baseline": None
        if baseline is None
        else {
            "model": baseline_model,
            "model_id": serving.model_id(serving.keras_path(baseline_model)),
        },
        **verdict,
        "created": files.utc_timestamp(),
    }
    files.write_json(files.join(model, schema.BLESSING_FILE), verdict)
    return verdict


def accepted_share(model: str) -> float | None:
    """The share of validation digits a model accepts, as its calibration.json records it
    (None when the file, or the figure, is missing)."""
    path = serving.calibration_path(model)
    if not files.exists(path):
        return None
    return _share(files.read_json(path).get("validation_at_threshold"))


def _share(at_threshold: dict | None) -> float | None:
    return (at_threshold or {}).get("accepted_share")


def card_section(blessing: dict) -> str:
    rows = "\n".join(
        f"| {c['check']} | {_figure(c)} | {c['limit']} | {'yes' if c['passed'] else '**no**'} |"
        for c in blessing["checks"]
    )
    verdict = "**blessed**" if blessing["blessed"] else "**not blessed**"
    return f"""## Blessing
This model file (SHA-256 `{blessing["model_sha256"][:16]}`) is {verdict}: `digits score`
refuses a model that is not, or whose file changed since (`--allow-unblessed` overrides,
and the summary records it).

| check | figure | to pass | passed |
| --- | --- | --- | --- |
{rows}
"""


def _figure(check: dict) -> str:
    value = check["value"]
    if check.get("skipped"):
        return f"skipped: {check['skipped']}"
    if check["check"] == "accepted_share":
        shares = [value["candidate_accepted_share"], value["baseline_accepted_share"]]
        text = [f"{share:.2%}" if share is not None else "unknown" for share in shares]
        return text[0] + (f" vs {text[1]} (baseline)" if shares[1] is not None else "")
    if check["check"] == "source_floors" and not value:
        return "no test images"
    if isinstance(value, dict) and "worst_digit" in value:
        return f"digit {value['worst_digit']}: {value['recall']:.4f}"
    if check["check"] == "source_floors":
        return "; ".join(
            f"{name} {v['accuracy']:.4f} ({v['images']} images)"
            for name, v in value.items()
            if name != "missing"
        ) + (f"; no test images of {', '.join(value['missing'])}" if "missing" in value else "")
    if check["check"] == "source_non_inferiority":
        return "; ".join(
            f"{name} {v['candidate_accuracy']:.4f} vs {v['baseline_accuracy']:.4f}"
            for name, v in value.items()
        )
    if isinstance(value, dict):
        return (
            f"{value['candidate_accuracy']:.4f} vs {value['baseline_accuracy']:.4f}; "
            f"only baseline right {value['only_baseline_right']}, only this model "
            f"{value['only_candidate_right']}, p = {value['p']:.3g}"
        )
    return f"{value:.4f}"
