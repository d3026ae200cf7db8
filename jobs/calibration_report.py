"""Calibration: fitted by `digits train` on the validation split, judged by `digits
evaluate` on the test split.

    fitted = calibration_report.fit(model, model_dir, dataset, config)   # digits train
    judged = calibration_report.judge(test, stored)                       # digits evaluate

`fit` trains the shape check, fits the temperature, the review threshold and the input
limits on the validation split, and writes into the model folder `calibration.json` (the
scorer's screen, for this exact model file), `reference.json` (the validation split's
input and output statistics, for the scorer's skew check) and the SavedModel again, so
that it returns statuses too. `judge` measures that calibration on test (ECE, coverage,
the bound, statuses) for the report: the `calibration` section of evaluation.json,
`reliability.png` and a section of the model card.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import files, schema  # noqa: E402
from jobs.scoring import images  # noqa: E402
from model import (  # noqa: E402
    calibration,
    data,
    drift,
    export,
    outliers,
    screening,
    serving,
    shape_check,
)

COVERAGE_THRESHOLDS = (0.5, 0.9, 0.95, 0.99, 0.995, 0.999)
RULES = {
    "bound": "its 95% upper bound there meets the target",
    "point": "the error seen there meets the target",
}


@dataclass(frozen=True)
class CalibrationConfig:
    """What `digits train` fits the calibration for (its options, written once here)."""

    target_error: float = 0.001
    threshold_rule: str = "bound"
    not_a_digit_budget: float = 0.01
    shape_review_share: float = 0.02
    shape_check: shape_check.ShapeCheckConfig = field(default_factory=shape_check.ShapeCheckConfig)


def fit(model, model_dir: str, dataset_path: str, config: CalibrationConfig) -> dict:
    """Train's last step (see the module doc); returns what metrics.json records of it."""
    validation = data.predict_split(model, dataset_path, "validation")
    train_pixels = None
    if config.shape_check.epochs > 0:
        train_pixels = data.split_pixels(dataset_path, "train", verify=False)
    weights = train_shape_check(train_pixels, config.shape_check)
    measure(validation, weights)
    probabilities, labels = validation["probabilities"], validation["labels"]
    temperature = calibration.fit_temperature(probabilities, labels)
    val = calibration.scale(probabilities, temperature)
    threshold = calibration.choose_threshold(
        val, labels, config.target_error, config.threshold_rule
    )
    screen = fit_screen(
        validation, temperature, threshold, config.not_a_digit_budget, weights,
        config.shape_review_share,
    )  # fmt: skip
    fitted = {
        "screen": screen.to_dict(),
        "target_error": config.target_error,
        "threshold_rule": config.threshold_rule,
        "validation_at_threshold": calibration.coverage(val, labels, threshold),
        "validation_ece_after": calibration.expected_calibration_error(val, labels),
    }
    model_id = serving.model_id(os.path.join(model_dir, schema.KERAS_FILE))
    save(model_dir, model_id, fitted)
    export.replace_saved_model(model, model_dir, screen)
    write_reference(model_dir, serving.Predictor.of(model, screen), validation)
    return {**fitted, "screen": for_people(fitted["screen"])}


def judge(test: dict, stored: dict) -> dict:
    """The stored calibration (calibration.json) on the test split, `measure`d with its
    shape check: ECE, coverage, the bound, and the statuses of the digits."""
    screen = screening.Screen.from_dict(stored)
    temperature, threshold = screen.temperature, screen.threshold
    before, labels = test["probabilities"], test["labels"]
    after = calibration.scale(before, temperature)
    confirmed = calibration.coverage(after, labels, threshold)
    confirmed["error_upper_bound_95"] = calibration.binomial_upper_bound(
        confirmed["errors"], confirmed["accepted"]
    )
    return {
        "screen": for_people(screen.to_dict()),
        **judge_test(test, after, screen),
        "misclassified_auroc": calibration.auroc(
            -after.max(axis=1)[after.argmax(axis=1) != labels],
            -after.max(axis=1)[after.argmax(axis=1) == labels],
        ),
        "temperature": temperature,
        "fitted_on": stored.get("fitted_on", "validation"),
        "ece_bins": calibration.ECE_BINS,
        "test_ece_before": calibration.expected_calibration_error(before, labels),
        "test_ece_after": calibration.expected_calibration_error(after, labels),
        "test_nll_before": calibration.nll(before, labels),
        "test_nll_after": calibration.nll(after, labels),
        "test_accuracy_after": float((after.argmax(axis=1) == labels).mean()),
        "target_error": stored.get("target_error"),
        "threshold_rule": stored.get("threshold_rule", "bound"),
        "threshold": threshold,
        "validation_at_threshold": stored.get("validation_at_threshold"),
        "test_at_threshold": confirmed,
        "test_coverage": [calibration.coverage(after, labels, t) for t in COVERAGE_THRESHOLDS],
    }


def write_reference(model_dir: str, predictor, validation: dict) -> None:
    """reference.json: the validation split's input and output statistics (model/drift.py),
    as the scorer counts them, for its skew check."""
    predicted = predictor.predict(validation["pixels"])
    facts = images.input_facts(list(validation["pixels"][..., None]), record=True)
    histograms = drift.histograms(
        facts,
        predicted["ink"],
        predicted["digit"],
        predicted["calibrated_confidence"],
        predicted["status"],
    )
    files.write_json(
        files.join(model_dir, schema.REFERENCE_FILE),
        {"source": "validation split", "created": files.utc_timestamp(), "histograms": histograms},
    )


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


def add_options(parser) -> None:
    """digits train's calibration options; defaults from CalibrationConfig."""
    defaults = CalibrationConfig()
    parser.add_argument(
        "--target-error",
        type=float,
        default=defaults.target_error,
        help="highest error rate among accepted predictions, for the review threshold",
    )
    parser.add_argument(
        "--threshold-rule",
        choices=calibration.THRESHOLD_RULES,
        default=defaults.threshold_rule,
        help="bound (default): the 95%% upper bound of the error among accepted validation "
        "predictions meets --target-error, so it holds on new data; point: the error seen "
        "there does (more coverage, more errors than the target on new data)",
    )
    parser.add_argument(
        "--not-a-digit-budget",
        type=float,
        default=defaults.not_a_digit_budget,
        help="largest share of validation digits the input checks may call not_a_digit",
    )
    parser.add_argument(
        "--shape-check-epochs",
        type=int,
        default=defaults.shape_check.epochs,
        help="epochs of the shape check, a small network telling digits from letters, "
        "symbols and scribbles (model/shape_check.py); 0: none",
    )
    parser.add_argument(
        "--shape-check-outliers",
        type=int,
        default=defaults.shape_check.max_outliers,
        help="not-a-digit images it trains on (at most half the training digits)",
    )
    parser.add_argument(
        "--shape-review-share",
        type=float,
        default=defaults.shape_review_share,
        help="share of validation digits whose shape check score sends them to review "
        "(unusual_shape): the least digit-like ones",
    )


def config_from(args) -> CalibrationConfig:
    """The typed config from the parsed options (entry points only)."""
    return CalibrationConfig(
        target_error=args.target_error,
        threshold_rule=args.threshold_rule,
        not_a_digit_budget=args.not_a_digit_budget,
        shape_review_share=args.shape_review_share,
        shape_check=shape_check.ShapeCheckConfig(
            epochs=args.shape_check_epochs, max_outliers=args.shape_check_outliers
        ),
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
            "validation_at_threshold": result["validation_at_threshold"],
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
