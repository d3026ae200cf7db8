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
from model import calibration, data, outliers, screening, shape_check  # noqa: E402

COVERAGE_THRESHOLDS = (0.5, 0.9, 0.95, 0.99, 0.995, 0.999)
RULES = {
    "bound": "its 95% upper bound there meets the target",
    "point": "the error seen there meets the target",
}


def calibrate(
    validation: dict,
    test: dict,
    target_error: float,
    budget: float,
    rule: str = "bound",
    shape_weights: dict | None = None,
    shape_review_share: float = 0.0,
) -> dict:
    """Temperature, threshold and input limits on validation (both splits `measure`d with
    `shape_weights`); ECE, coverage, the bound, and the statuses of the digits on test."""
    temperature = calibration.fit_temperature(validation["probabilities"], validation["labels"])
    val = calibration.scale(validation["probabilities"], temperature)
    threshold = calibration.choose_threshold(val, validation["labels"], target_error, rule)
    before, labels = test["probabilities"], test["labels"]
    after = calibration.scale(before, temperature)
    confirmed = calibration.coverage(after, labels, threshold)
    confirmed["error_upper_bound_95"] = calibration.binomial_upper_bound(
        confirmed["errors"], confirmed["accepted"]
    )
    screen = fit_screen(
        validation, temperature, threshold, budget, shape_weights, shape_review_share
    )
    return {
        "screen": screen.to_dict(),
        **judge_test(test, after, screen),
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


def judge_test(test: dict, calibrated, screen: screening.Screen) -> dict:
    """The statuses of the test digits: counts, the share not_a_digit, the share the shape
    check sends to review."""
    judged = screening.judge(test["measured"], calibrated.max(axis=1), screen)
    status = judged["status"].numpy()
    unusual = judged["reasons"].numpy() & (1 << screening.REASONS.index("unusual_shape")) > 0
    return {
        "test_statuses": {
            name: int((status == code).sum()) for code, name in enumerate(screening.STATUSES)
        },
        "test_not_a_digit_share": float((status == screening.NOT_A_DIGIT).mean()),
        "test_unusual_shape_share": float(unusual.mean()),
    }


def add_shape_check_options(parser) -> None:
    defaults = shape_check.ShapeCheckConfig()
    parser.add_argument(
        "--shape-check-epochs",
        type=int,
        default=defaults.epochs,
        help="epochs of the shape check, a small network telling digits from letters, "
        "symbols and scribbles (model/shape_check.py); 0: none",
    )
    parser.add_argument(
        "--shape-check-outliers",
        type=int,
        default=defaults.max_outliers,
        help="not-a-digit images it trains on (at most half the training digits)",
    )
    parser.add_argument(
        "--shape-review-share",
        type=float,
        default=0.02,
        help="share of validation digits whose shape check score sends them to review "
        "(unusual_shape): the least digit-like ones",
    )


def fit_screen(validation, temperature, threshold, budget, shape_weights=None, review=0.0):
    """model.screening's limits from the validation digits (see screening.fit); `review`:
    the share of them the shape check sends to review."""
    confidence = calibration.scale(validation["probabilities"], temperature).max(axis=1)
    limits = (temperature, threshold, budget, shape_weights, review)
    return screening.fit(validation["measured"], confidence, *limits)


def train_shape_check(train_pixels, config: shape_check.ShapeCheckConfig) -> dict | None:
    """The shape check (model.shape_check) trained on the training digits, uint8 [n, 28, 28],
    against model.outliers' images (as many as half of them, at most config.max_outliers;
    the overlays are made from the first 5,000); None with config.epochs 0."""
    if config.epochs <= 0 or not len(train_pixels):
        return None
    count = min(config.max_outliers, len(train_pixels) // 2)
    not_digits = outliers.pool(train_pixels[:5000], count, config.seed)
    return shape_check.train(train_pixels, not_digits, config)


def measure(split: dict, shape_weights: dict | None = None) -> dict:
    """Adds the input checks' measurements of a split's images (model.screening.features)."""
    pixels = data.to_pixels(split["images"])
    split["pixels"] = pixels
    measured = screening.features(pixels, shape_weights)
    split["measured"] = {k: v.numpy() for k, v in measured.items()}
    return split


def for_people(screen: dict) -> dict:
    """The screen as evaluation.json shows it: the shape check's weights stay in
    calibration.json."""
    weights = screen.get("shape_check") or {}
    summary = {"architecture": weights["architecture"]} if weights else {}
    return {**screen, "shape_check": summary}


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
`not_a_digit`, and the shape check finds {result["test_unusual_shape_share"]:.2%} of them
unusual enough for review; {result["test_statuses"]["accepted"]} of the test digits are
`accepted` with every check. Calibrated confidence tells misclassified from correct test
digits with AUROC {result["misclassified_auroc"]:.4f}.
"""
