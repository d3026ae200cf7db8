"""Calibrated confidence: temperature scaling, expected calibration error, and the
review threshold above which a prediction may be accepted without a person.

All in NumPy, on the model's probabilities (their logs are its logits up to a constant):

    t = fit_temperature(val_probs, val_labels)           # fitted on validation, never test
    calibrated = scale(test_probs, t)
    expected_calibration_error(calibrated, test_labels)  # 15 equal-width bins (Guo et al.)
    threshold = choose_threshold(scale(val_probs, t), val_labels, 0.001, ranking="top_two")
    # (its 95% upper bound on validation meets the target; rule="point": the error seen)
    chosen = coverage(scale(test_probs, t), test_labels, threshold, "top_two")  # on test
    binomial_upper_bound(chosen["errors"], chosen["accepted"])        # 95% one-sided

Temperature scaling divides the logits by one number, so the predicted digit (the arg
max) never changes: accuracy is exactly the same.
"""

from __future__ import annotations

import math

import numpy as np

ECE_BINS = 15
_LOG_FLOOR = 1e-12


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities a temperature T gives."""
    logits = np.log(np.clip(probabilities, _LOG_FLOOR, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, _LOG_FLOOR, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the negative log-likelihood (golden-section search
    on log T; the likelihood is unimodal in T)."""
    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = (nll(scale(probabilities, math.exp(x)), labels) for x in (a, b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(scale(probabilities, math.exp(a)), labels)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(scale(probabilities, math.exp(b)), labels)
    return float(math.exp((low + high) / 2))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS):
    """Per equal-width confidence bin: (count, mean confidence, accuracy)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        members = index == b
        n = int(members.sum())
        rows.append(
            (
                n,
                float(confidence[members].mean()) if n else 0.0,
                float(correct[members].mean()) if n else 0.0,
            )
        )
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Sum over bins of |accuracy - confidence| weighted by the bin's share of inputs."""
    total = len(labels)
    return float(
        sum(n / total * abs(acc - conf) for n, conf, acc in reliability(probabilities, labels))
    )


# What the review threshold is set on (a higher score: surer). "confidence": the top
# probability. "top_two": the top digit's share of the two likeliest, p1 / (p1 + p2), i.e.
# the log-odds of the digit read against the runner-up alone; it ranks the model's errors
# below more of its right answers than the top probability does (docs/calibration.md).
RANKINGS = ("top_two", "confidence")


def ranking_score(probabilities: np.ndarray, ranking: str = "confidence") -> np.ndarray:
    """Per prediction, the score of `ranking` (RANKINGS) that the threshold is compared
    with; model.screening.rank computes the same in TensorFlow (tested equal)."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking {ranking!r}: choose one of {', '.join(RANKINGS)}")
    top = np.sort(probabilities, axis=1)[:, ::-1]
    if ranking == "confidence":
        return top[:, 0]
    return top[:, 0] / (top[:, 0] + top[:, 1])


def coverage(
    probabilities: np.ndarray, labels: np.ndarray, threshold: float, ranking: str = "confidence"
) -> dict:
    """Accepting predictions whose `ranking` score is >= threshold: the share accepted, and
    the errors among them."""
    accepted = ranking_score(probabilities, ranking) >= threshold
    errors = int((probabilities.argmax(axis=1)[accepted] != labels[accepted]).sum())
    n = int(accepted.sum())
    return {
        "threshold": float(threshold),
        "accepted": n,
        "accepted_share": n / len(labels),
        "errors": errors,
        "error_among_accepted": errors / n if n else 0.0,
    }


THRESHOLD_RULES = ("bound", "point")
# The threshold when none meets the target: above every score (both RANKINGS are at most 1.0,
# float32 ones included), so the scorer's `score >= threshold` accepts nothing.
ACCEPT_NOTHING = 2.0


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    target_error: float = 0.001,
    rule: str = "bound",
    ranking: str = "confidence",
) -> float:
    """The lowest threshold on the `ranking` score (ranking_score) whose accepted
    predictions meet `target_error` (selective classification, Geifman & El-Yaniv 2017):
    the most coverage for the target.

    rule "bound": the 95% upper bound (binomial_upper_bound) of the error among accepted
    predictions is at most the target, as in the paper's SGR, so the target holds on new
    data of the same kind (SGR also widens the bound for trying several thresholds; not
    here). rule "point": the error seen among them is at most the target; more coverage,
    but on a few thousand held-out images it picks thresholds whose error on new data
    exceeds the target. ACCEPT_NOTHING when no threshold reaches it."""
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold rule {rule!r}: choose one of {', '.join(THRESHOLD_RULES)}")
    score = ranking_score(probabilities, ranking)
    wrong = probabilities.argmax(axis=1) != labels
    order = np.argsort(-score, kind="stable")
    errors = np.cumsum(wrong[order])
    accepted = np.arange(1, len(order) + 1)
    # Thresholds fall between distinct scores: only a prefix ending before a tie counts.
    sorted_score = score[order]
    ends = np.append(sorted_score[1:] < sorted_score[:-1], True)
    if rule == "point":
        ok = ends & (errors / accepted <= target_error)
    else:  # per error count, the longest prefix with no more errors (the bound grows with them)
        ok = np.zeros(len(order), bool)
        for k in range(int(errors[-1]) + 1 if len(order) else 0):
            longest = np.flatnonzero(ends & (errors <= k))
            if len(longest):
                i = longest[-1]
                ok[i] = binomial_upper_bound(int(errors[i]), int(accepted[i])) <= target_error
    candidates = np.flatnonzero(ok)
    if not len(candidates):
        return ACCEPT_NOTHING
    return float(sorted_score[candidates[-1]])


def ceiling(
    probabilities: np.ndarray,
    labels: np.ndarray,
    target_error: float = 0.001,
    ranking: str = "confidence",
) -> dict:
    """The most any threshold on `ranking` accepts of these predictions with at most
    `target_error` errors seen among them, no bound (coverage at choose_threshold's "point"
    rule): the network's own limit. A bound-chosen threshold far under it is held back by
    how few held-out digits vouch for it; one near it, by the network's confident errors."""
    threshold = choose_threshold(probabilities, labels, target_error, "point", ranking)
    return coverage(probabilities, labels, threshold, ranking)


def binomial_upper_bound(errors: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on an error rate seen as errors / n."""
    if n == 0 or errors >= n:
        return 1.0
    low, high = errors / n, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        if _binomial_cdf(errors, n, middle) > 1 - confidence:
            low = middle
        else:
            high = middle
    return high


def _binomial_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k + 1)
    ]
    top = max(terms)
    return math.exp(top) * sum(math.exp(t - top) for t in terms)


def auroc(positives, negatives) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half), by ranks (Mann-Whitney U)."""
    pos, neg = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.flatnonzero(np.append(True, sorted_scores[1:] != sorted_scores[:-1]))
    ends = np.append(starts[1:], len(scores))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))
