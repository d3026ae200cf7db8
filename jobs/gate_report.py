"""The gate step of `digits evaluate`: the blessing (model/gate.py) for this exact model
file, written last into the model folder as blessing.json, and a model card section.

    digits evaluate --data D --model M --output R [--baseline PROMOTED_MODEL] \\
        [--min-accuracy 0.98] [--min-class-recall 0.95] [--max-ece 0.015] \\
        [--min-corruption-accuracy 0.65] [--max-accuracy-drop 0.001]
"""

from __future__ import annotations

import argparse

from common import files, schema
from model import gate, serving


def add_options(parser: argparse.ArgumentParser) -> None:
    """The blessing gate's floors and ceilings (model.gate)."""
    defaults = gate.GateConfig()
    parser.add_argument(
        "--baseline",
        help="the model now promoted: bless only if this one is no worse (a folder without "
        "a model yet, as on a first run, skips the comparison and says so)",
    )
    for flag, help_text in (
        ("min_accuracy", "lowest test accuracy to bless"),
        ("min_class_recall", "lowest recall of any digit to bless"),
        ("max_ece", "highest expected calibration error after scaling to bless"),
        ("min_corruption_accuracy", "lowest mean accuracy under the corruptions to bless"),
        ("max_accuracy_drop", "largest accuracy drop against --baseline to bless"),
    ):
        parser.add_argument(
            "--" + flag.replace("_", "-"), type=float, default=getattr(defaults, flag),
            help=f"{help_text} (default {getattr(defaults, flag)})",
        )  # fmt: skip


def baseline_exists(baseline: str | None) -> bool:
    """Whether --baseline names a model; a folder with none yet (first run) is said so."""
    if not baseline:
        return False
    path = baseline if baseline.endswith(".keras") else files.join(baseline, schema.KERAS_FILE)
    if files.exists(path):
        return True
    print(f"digits evaluate: no model at --baseline {baseline} yet: not compared (first run)")
    return False


def bless(args, results: dict, test: dict, baseline: dict | None) -> dict:
    """The gate's verdict (model.gate), written last into the model folder as blessing.json
    for the model file's SHA-256."""
    config = gate.GateConfig(
        min_accuracy=args.min_accuracy,
        min_class_recall=args.min_class_recall,
        max_ece=args.max_ece,
        min_corruption_accuracy=args.min_corruption_accuracy,
        max_accuracy_drop=args.max_accuracy_drop,
    )
    verdict = gate.bless(
        config,
        test["labels"],
        test["probabilities"].argmax(axis=1),
        results["calibration"]["test_ece_after"],
        results["robustness"]["corruptions"]["mean_accuracy"],
        None if baseline is None else baseline["probabilities"].argmax(axis=1),
    )
    digest = files.sha256_file(serving.keras_path(args.model))
    verdict = {
        "model_id": serving.identifier(digest),
        "model_sha256": digest,
        "baseline": None
        if baseline is None
        else {
            "model": args.baseline,
            "model_id": serving.model_id(serving.keras_path(args.baseline)),
        },
        **verdict,
        "created": files.utc_timestamp(),
    }
    files.write_json(files.join(args.model, schema.BLESSING_FILE), verdict)
    return verdict


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
    if isinstance(value, dict) and "worst_digit" in value:
        return f"digit {value['worst_digit']}: {value['recall']:.4f}"
    if isinstance(value, dict):
        return (
            f"{value['candidate_accuracy']:.4f} vs {value['baseline_accuracy']:.4f}; "
            f"only baseline right {value['only_baseline_right']}, only this model "
            f"{value['only_candidate_right']}, p = {value['p']:.3g}"
        )
    return f"{value:.4f}"
