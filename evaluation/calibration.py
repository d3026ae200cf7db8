"""The calibration `digits train` stored, judged on the test split: ECE, coverage, the
bound and the statuses, for the `calibration` section of evaluation.json,
`reliability.png` and a section of the model card.

    judged = evaluation.calibration.judge(test, stored)
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from model import calibration, screening  # noqa: E402
from model.data import Split  # noqa: E402

COVERAGE_THRESHOLDS = (0.5, 0.9, 0.95, 0.99, 0.995, 0.999)
SCORES = {  # model.calibration.RANKINGS, for people
    "top_two": "the top digit's share of the two likeliest, p1 / (p1 + p2)",
    "confidence": "the calibrated confidence",
}
RULES = {
    "bound": "its 95% upper bound there meets the target",
    "point": "the error seen there meets the target",
}
# Accepted validation share under the network's ceiling past which the card says the bound,
# not the network, holds the threshold back.
CEILING_GAP = 0.02


def judge(test: Split, stored: dict) -> dict:
    """The stored calibration (calibration.json) on the test split, `measure`d with its
    shape check: ECE, coverage, the bound, and the statuses of the digits."""
    screen = screening.Screen.from_dict(stored)
    temperature, threshold, ranking = screen.temperature, screen.threshold, screen.ranking
    before, labels = test.probabilities, test.labels
    after = calibration.scale(before, temperature)
    score = calibration.ranking_score(after, ranking)
    confirmed = calibration.coverage(after, labels, threshold, ranking)
    confirmed["error_upper_bound_95"] = calibration.binomial_upper_bound(
        confirmed["errors"], confirmed["accepted"]
    )
    return {
        "screen": screening.for_people(screen.to_dict()),
        **judge_test(test, after, screen),
        "misclassified_auroc": calibration.auroc(
            -score[after.argmax(axis=1) != labels], -score[after.argmax(axis=1) == labels]
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
        "ranking": ranking,
        "validation_at_threshold": stored.get("validation_at_threshold"),
        "validation_ceiling": stored.get("validation_ceiling"),
        "test_at_threshold": confirmed,
        "test_coverage": [
            calibration.coverage(after, labels, t, ranking) for t in COVERAGE_THRESHOLDS
        ],
    }


def judge_test(test: Split, calibrated, screen: screening.Screen) -> dict:
    """The statuses of the test digits: counts, the share not_a_digit, the share the shape
    check sends to review."""
    judged = screening.judge(test.measured, calibrated, screen)
    status = judged["status"].numpy()
    unusual = judged["reasons"].numpy() & (1 << screening.REASONS.index("unusual_shape")) > 0
    return {
        "test_statuses": {
            name: int((status == code).sum()) for code, name in enumerate(screening.STATUSES)
        },
        "test_not_a_digit_share": float((status == screening.NOT_A_DIGIT).mean()),
        "test_unusual_shape_share": float(unusual.mean()),
    }


def by_source(test: Split, stored: dict) -> dict[str, dict]:
    """Per source of the test split (mnist, and each labelled folder): accuracy, ECE after
    scaling, and what the scorer's statuses would be: the accepted share, the error among
    the accepted and the share called not_a_digit."""
    screen = screening.Screen.from_dict(stored)
    after = calibration.scale(test.probabilities, screen.temperature)
    status = screening.judge(test.measured, after, screen)["status"].numpy()
    right = after.argmax(axis=1) == test.labels
    found = {}
    for source in sorted(set(test.sources.tolist()), key=lambda s: (s != "mnist", s)):
        mask = test.sources == source
        accepted = mask & (status == screening.ACCEPTED)
        found[source] = {
            "images": int(mask.sum()),
            "accuracy": float(right[mask].mean()),
            "ece_after": calibration.expected_calibration_error(after[mask], test.labels[mask]),
            "accepted_share": float(accepted.sum() / mask.sum()),
            "error_among_accepted": float((~right[accepted]).mean()) if accepted.any() else 0.0,
            "not_a_digit_share": float((status[mask] == screening.NOT_A_DIGIT).mean()),
        }
    return found


def source_card_section(found: dict[str, dict]) -> str:
    rows = "\n".join(
        f"| {name} | {v['images']:,} | {v['accuracy']:.4f} | {v['ece_after']:.4f} | "
        f"{v['accepted_share']:.1%} | {v['error_among_accepted']:.2%} | "
        f"{v['not_a_digit_share']:.2%} |"
        for name, v in found.items()
    )
    return f"""## By source (test split)
Each source's own test images (`mnist`, and each folder given to `digits preprocess
--labelled`), with the statuses the scorer would give them.

| source | images | accuracy | ECE after scaling | accepted | error among accepted | not_a_digit |
| --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


def plot_reliability(test: Split, temperature: float, path: str) -> None:
    """Accuracy against mean confidence per bin, before and after scaling, with the ECEs."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=100, sharey=True)
    for ax, (title, probs) in zip(
        axes,
        (
            ("before scaling", test.probabilities),
            (
                f"after (T = {temperature:.2f})",
                calibration.scale(test.probabilities, temperature),
            ),
        ),
        strict=True,
    ):
        rows = [r for r in calibration.reliability(probs, test.labels) if r[0]]
        ece = calibration.expected_calibration_error(probs, test.labels)
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


def validation_sentence(result: dict) -> str:
    """What the threshold accepts of validation against the network's ceiling there (the
    most any threshold accepts at the target error seen), where calibration.json has both."""
    chosen, ceiling = result.get("validation_at_threshold"), result.get("validation_ceiling")
    if not chosen or not ceiling:
        return ""
    limit = (
        "a larger validation split (digits preprocess --validation-size) would let the bound "
        "reach further"
        if ceiling["accepted_share"] - chosen["accepted_share"] > CEILING_GAP
        else "the network's confident errors hold it back, not the bound"
    )
    return (
        f"On validation it accepts {chosen['accepted_share']:.2%} ({chosen['errors']} errors); "
        f"with no bound, the most any threshold on this score accepts at the target error "
        f"seen is {ceiling['accepted_share']:.2%} ({ceiling['errors']} errors): {limit}.\n"
    )


def card_section(result: dict) -> str:
    test, score = result["test_at_threshold"], SCORES[result["ranking"]]
    threshold = (
        "none meets it, so every digit goes to review"
        if result["threshold"] == calibration.ACCEPT_NOTHING
        else f"**{result['threshold']:.4f}**"
    )
    rows = "\n".join(
        f"| {c['threshold']} | {c['accepted_share']:.2%} | {c['error_among_accepted']:.3%} |"
        for c in result["test_coverage"]
    )
    fitted = result["screen"]["fitted"]  # shape_reviewed: since the limit is fitted per model
    reviewed = f"{fitted.get('shape_reviewed', fitted.get('shape_review_share', 0.0)):.1%}"
    return f"""## Calibration and the review threshold
Temperature **{result["temperature"]:.3f}**, fitted on the validation split: expected
calibration error on test {result["test_ece_before"]:.2%} before, {result["test_ece_after"]:.2%}
after (15 bins); accuracy unchanged. Threshold for at most {result["target_error"]:.2%} errors
among accepted predictions, chosen on validation ({RULES[result["threshold_rule"]]}), on
{score}: {threshold}. On test it
accepts {test["accepted_share"]:.2%} of the digits with {test["errors"]} errors
({test["error_among_accepted"]:.3%}; 95% upper bound {test["error_upper_bound_95"]:.3%}).
{validation_sentence(result)}
| score at least | accepted | error among accepted |
| --- | --- | --- |
{rows}

![reliability diagram](reliability.png)

Input checks (fitted to flag at most {fitted["budget"]:.1%} of the
validation digits): on test they flag {result["test_not_a_digit_share"]:.2%} of the digits
as `not_a_digit`, and the shape check (fitted to review {reviewed} of the validation
digits and their damaged copies) finds {result["test_unusual_shape_share"]:.2%} of them
unusual enough for review; {result["test_statuses"]["accepted"]} of the test digits are
`accepted` with every check. The score tells misclassified from correct test digits with
AUROC {result["misclassified_auroc"]:.4f}.
"""
