"""The calibration step of `digits evaluate`: a temperature and a review threshold for the
model, fitted on the validation split and checked on the test split.

Writes `calibration.json` into the model folder (the temperature, the threshold, the target
they were chosen for, the model's identifier) and, into the report, the `calibration`
section of evaluation.json, `reliability.png` and a section of the model card.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import files, schema  # noqa: E402
from model import calibration, screening  # noqa: E402

COVERAGE_THRESHOLDS = (0.5, 0.9, 0.95, 0.99, 0.995, 0.999)
RULES = {
    "bound": "its 95% upper bound there meets the target",
    "point": "the error seen there meets the target",
}


def calibrate(
    validation: dict, test: dict, target_error: float, budget: float, rule: str = "bound"
) -> dict:
    """Temperature, threshold and input limits on validation; ECE, coverage, the bound, and
    the share of digits the input checks flag, on test."""
    temperature = calibration.fit_temperature(validation["probabilities"], validation["labels"])
    val = calibration.scale(validation["probabilities"], temperature)
    threshold = calibration.choose_threshold(val, validation["labels"], target_error, rule)
    before, labels = test["probabilities"], test["labels"]
    after = calibration.scale(before, temperature)
    confirmed = calibration.coverage(after, labels, threshold)
    confirmed["error_upper_bound_95"] = calibration.binomial_upper_bound(
        confirmed["errors"], confirmed["accepted"]
    )
    screen = fit_screen(validation, temperature, threshold, budget)
    test_status = screening.judge(test["measured"], after.max(axis=1), screen)["status"].numpy()
    return {
        "screen": screen.to_dict(),
        "test_statuses": {
            name: int((test_status == code).sum()) for code, name in enumerate(screening.STATUSES)
        },
        "test_not_a_digit_share": float((test_status == screening.NOT_A_DIGIT).mean()),
        "misclassified_auroc": calibration.auroc(
            -after.max(axis=1)[after.argmax(axis=1) != labels],
            -after.max(axis=1)[after.argmax(axis=1) == labels],
        ),
        "temperature": temperature,
        "fitted_on": "validation",
        "ece_bins": calibration.ECE_BINS,
        "test_ece_before": calibration.expected_calibration_error(before, labels),
        "test_ece_after": calibration.expected_calibration_error(after, labels),
        "test_nll_before": calibration.nll(before, labels),
        "test_nll_after": calibration.nll(after, labels),
        "test_accuracy_after": float((after.argmax(axis=1) == labels).mean()),
        "target_error": target_error,
        "threshold_rule": rule,
        "threshold": threshold,
        "validation_at_threshold": calibration.coverage(val, validation["labels"], threshold),
        "test_at_threshold": confirmed,
        "test_coverage": [calibration.coverage(after, labels, t) for t in COVERAGE_THRESHOLDS],
    }


def fit_screen(validation: dict, temperature: float, threshold: float, budget: float):
    """model.screening's limits from the validation digits (see screening.fit)."""
    confidence = calibration.scale(validation["probabilities"], temperature).max(axis=1)
    return screening.fit(validation["measured"], confidence, temperature, threshold, budget)


def measure(split: dict) -> dict:
    """Adds the input checks' measurements of a split's images (model.screening.features)."""
    pixels = (split["images"] * schema.PIXEL_MAX).round().astype("uint8")
    split["pixels"] = pixels
    split["measured"] = {k: v.numpy() for k, v in screening.features(pixels).items()}
    return split


def save(model_dir: str, model_id: str | None, result: dict) -> None:
    """calibration.json in the model folder: what the scorer needs (model.screening.Screen),
    for this exact model."""
    files.write_json(
        files.join(model_dir, schema.CALIBRATION_FILE),
        {
            "model_id": model_id,
            **result["screen"],
            "target_error": result["target_error"],
            "threshold_rule": result["threshold_rule"],
            "fitted_on": "validation",
            "created": files.utc_timestamp(),
        },
    )


def plot_reliability(test: dict, temperature: float, path: str) -> None:
    """Accuracy against mean confidence per bin, before and after scaling, with the ECEs."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=100, sharey=True)
    for ax, (title, probs) in zip(
        axes,
        (
            ("before scaling", test["probabilities"]),
            (
                f"after (T = {temperature:.2f})",
                calibration.scale(test["probabilities"], temperature),
            ),
        ),
        strict=True,
    ):
        rows = [r for r in calibration.reliability(probs, test["labels"]) if r[0]]
        ece = calibration.expected_calibration_error(probs, test["labels"])
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
        ax.plot([r[1] for r in rows], [r[2] for r in rows], marker="o")
        ax.set_title(f"{title}: ECE {ece:.2%}")
        ax.set_xlabel("confidence (mean in bin)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy in bin")
    fig.suptitle("Reliability on the test split (15 bins)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def card_section(result: dict) -> str:
    test = result["test_at_threshold"]
    threshold = (
        "none meets it, so every digit goes to review"
        if result["threshold"] == calibration.ACCEPT_NOTHING
        else f"**{result['threshold']:.4f}**"
    )
    rows = "\n".join(
        f"| {c['threshold']} | {c['accepted_share']:.2%} | {c['error_among_accepted']:.3%} |"
        for c in result["test_coverage"]
    )
    return f"""## Calibration and the review threshold
Temperature **{result["temperature"]:.3f}**, fitted on the validation split: expected
calibration error on test {result["test_ece_before"]:.2%} before, {result["test_ece_after"]:.2%}
after (15 bins); accuracy unchanged. Threshold for at most {result["target_error"]:.2%} errors
among accepted predictions, chosen on validation ({RULES[result["threshold_rule"]]}):
{threshold}. On test it
accepts {test["accepted_share"]:.2%} of the digits with {test["errors"]} errors
({test["error_among_accepted"]:.3%}; 95% upper bound {test["error_upper_bound_95"]:.3%}).

| calibrated confidence at least | accepted | error among accepted |
| --- | --- | --- |
{rows}

![reliability diagram](reliability.png)

Input checks (fitted to flag at most {result["screen"]["fitted"]["budget"]:.1%} of the
validation digits): on test they flag {result["test_not_a_digit_share"]:.2%} of the digits as
`not_a_digit`. Calibrated confidence tells misclassified from correct test digits with AUROC
{result["misclassified_auroc"]:.4f}.
"""
