"""Is it a digit, and can the prediction be trusted? The status of every prediction.

One implementation, in TensorFlow ops, shared by the batch scorer (model.serving.Predictor)
and the exported SavedModel's signatures, so both give the same answer:

    screen = model.serving.load_screen("out/model")   # calibration.json, digits train
    out = assess(probabilities, pixels, screen)   # float32 [n, 10], uint8 [n, 28, 28]
    out["status"]   # int32 [n]: 0 accepted, 1 review, 2 not_a_digit (STATUSES)
    out["reasons"]  # int32 [n]: a bit per entry of REASONS

Cheap checks on the normalised 28x28 image (the very pixels the model sees), each against
limits fitted by `digits evaluate` on the validation digits (`fit`, below):

- `blank`: no stroke at all (the brightest pixel is under a quarter of full ink);
- `too_little_ink` / `too_much_ink`: the share of inked pixels (>= 50%) outside what
  digits have (a speck blown up to a square, a page of texture);
- `several_blobs`: an empty row or column splits the ink into parts and the smaller part
  holds a large share of it (two digits side by side, a digit and a blot beside it);
- `rough`: inked edge length per inked pixel (noise and paper texture are all edges);
- `smudged`: the share of visible pixels that are only half-inked (smudges, blur, shadows);
- `too_wide`: the inked box is wider for its height than digits are (the normalisation
  keeps the aspect ratio): two digits written touching, a word, a dash;
- `odd_shape`: the shape check (model.shape_check, small networks trained on digits
  against letters, symbols and scribbles) finds it less like a digit than digits are;
- `unlike_a_digit`: the model's calibrated confidence is below what almost every digit gets.

Any of those makes the input `not_a_digit`. Otherwise a ranking score below the review
threshold (chosen for a target error among accepted predictions; the score is the screen's
`ranking`, model.calibration.RANKINGS: the top digit's share of the two likeliest, or for
calibrations fitted before it, the calibrated confidence) gives `review` with reason
`low_confidence`, and a shape check score above what all but a small share of
digits get (`review_shape`) `review` with reason `unusual_shape`; else `accepted`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import tensorflow as tf

from common import schema
from model import calibration, shape_check

STATUSES = ("accepted", "review", "not_a_digit")
ACCEPTED, REVIEW, NOT_A_DIGIT = range(3)
REASONS = (
    "blank",
    "too_little_ink",
    "too_much_ink",
    "several_blobs",
    "rough",
    "smudged",
    "too_wide",
    "odd_shape",
    "unlike_a_digit",
    "low_confidence",
    "unusual_shape",
)
FEATURES = ("peak", "ink", "second_blob", "roughness", "half_ink", "aspect", "shape")
BLANK_PEAK = 0.25  # the brightest pixel, as a share of full ink, below which nothing is drawn
_INK = 0.5  # a pixel at or above this share of full ink is inked
_VISIBLE = 0.1  # ... at or above this share, visible
LIT = math.ceil(_INK * 255)  # the same on uint8 pixels: p >= LIT exactly when p / 255 >= _INK
SEEN = math.ceil(_VISIBLE * 255)  # p >= SEEN exactly when p / 255 >= _VISIBLE
_LOG_FLOOR = 1e-12
IMAGE_SHAPE = (schema.IMAGE_HEIGHT, schema.IMAGE_WIDTH)  # what the checks measure


@dataclass(frozen=True)
class Screen:
    """What `assess` needs: the temperature, the review threshold and the input limits."""

    temperature: float = 1.0
    threshold: float = 0.0  # a ranking score at or above it: accepted
    ranking: str = "confidence"  # the score (model.calibration.RANKINGS); older files: this
    digit_floor: float = 0.0  # calibrated confidence below it: unlike_a_digit
    ink: tuple[float, float] = (0.0, 1.0)
    max_second_blob: float = 1.0
    max_roughness: float = 4.0
    max_half_ink: float = 1.0
    max_aspect: float = 1e9  # width / height of the inked box; none for screens fitted before it
    max_shape: float = 1.0  # the shape check's score (0-1) above it: not_a_digit; 1.0: never
    review_shape: float = 1.0  # above it: review (unusual_shape); 1.0: never
    shape_check: dict = field(default_factory=dict)  # its weights (model.shape_check); {}: none
    fitted: dict = field(default_factory=dict)  # how the limits were chosen (for people)

    @classmethod
    def from_dict(cls, payload: dict) -> Screen:
        known = {name: payload[name] for name in cls.__dataclass_fields__ if name in payload}
        if "ink" in known:
            known["ink"] = tuple(known["ink"])
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)


def _split_share(profiles: tf.Tensor, total: tf.Tensor) -> tf.Tensor:
    """The ink's best split by an empty row or column: the smaller side's share of the lit
    pixels (0 when no empty line separates ink), from the lit pixels per row and per column
    [n, 2, 28] and in all [n]. Two digits side by side, or a digit and a blot beside it,
    split about evenly; one connected digit does not split at all. Cheap: row and column
    profiles, no labelling of components."""
    before = tf.cumsum(profiles, axis=2)
    smaller = tf.minimum(before, total[:, None, None] - before)
    best = tf.reduce_max(tf.where(profiles == 0, smaller, 0.0), axis=[1, 2])
    return tf.math.divide_no_nan(best, total)


def _extents(profiles: tf.Tensor) -> tf.Tensor:
    """Lit pixels per row and per column [n, 2, 28] -> [n, 2]: from the first to the last
    inked row, and column (0 without ink)."""
    size = profiles.shape[-1]
    positions = tf.range(size)
    inked = profiles > 0
    first = tf.reduce_min(tf.where(inked, positions, size), axis=2)
    last = tf.reduce_max(tf.where(inked, positions, -1), axis=2)
    return tf.cast(tf.maximum(last - first + 1, 0), tf.float32)


def _count(mask: tf.Tensor, axis) -> tf.Tensor:
    """True pixels of a bool mask, summed over `axis`, as float32 (exact: counts < 2**24)."""
    return tf.cast(tf.reduce_sum(tf.cast(mask, tf.int32), axis=axis), tf.float32)


def features(pixels: tf.Tensor, shape_weights: dict | None = None) -> dict:
    """uint8 [n, 28, 28] -> the checks' measurements, float32 [n] each (FEATURES); `shape`
    is 0 without the shape check's weights. This runs on every input the scorer sees, so
    it takes few passes over the pixels and few ops: the pixel tests run on the uint8
    values (LIT, SEEN), counts are integers, rows and columns go together."""
    pixels = tf.ensure_shape(tf.convert_to_tensor(pixels, tf.uint8), [None, *IMAGE_SHAPE])
    lit = pixels >= LIT
    lit_int = tf.cast(lit, tf.int32)
    profiles = tf.stack([tf.reduce_sum(lit_int, axis=2), tf.reduce_sum(lit_int, axis=1)], 1)
    profiles = tf.cast(profiles, tf.float32)  # [n, 2, 28]: lit pixels per row, per column
    lit_count = tf.reduce_sum(profiles[:, 0], axis=1)
    edges = _count(lit[:, 1:, :] != lit[:, :-1, :], [1, 2])
    edges += _count(lit[:, :, 1:] != lit[:, :, :-1], [1, 2])
    visible = _count(pixels >= SEEN, [1, 2])
    peak = tf.cast(tf.reduce_max(pixels, axis=[1, 2]), tf.float32) / 255.0
    extents = _extents(profiles)  # [n, 2]: height, width of the inked box
    return {
        "peak": peak,
        "ink": lit_count / float(math.prod(IMAGE_SHAPE)),
        "second_blob": _split_share(profiles, lit_count),
        "roughness": tf.math.divide_no_nan(edges, lit_count),
        "half_ink": tf.math.divide_no_nan(visible - lit_count, visible),
        "aspect": tf.math.divide_no_nan(extents[:, 1], extents[:, 0]),
        "shape": shape_check.score(pixels, shape_weights) if shape_weights else tf.zeros_like(peak),
    }


def calibrate(probabilities: tf.Tensor, temperature: float) -> tf.Tensor:
    """softmax(log p / T), as model.calibration.scale (tested equal)."""
    logits = tf.math.log(tf.clip_by_value(probabilities, _LOG_FLOOR, 1.0)) / temperature
    return tf.nn.softmax(logits, axis=-1)


def rank(calibrated: tf.Tensor, ranking: str) -> tf.Tensor:
    """The ranking score model.calibration.ranking_score gives (tested equal), [n]."""
    if ranking not in calibration.RANKINGS:
        raise ValueError(f"ranking {ranking!r}: one of {', '.join(calibration.RANKINGS)}")
    top = tf.math.top_k(calibrated, k=2).values
    if ranking == "confidence":
        return top[:, 0]
    return top[:, 0] / (top[:, 0] + top[:, 1])


def _checks(screen: Screen) -> tuple:
    """The not-a-digit checks, in the order of REASONS: the reason, the measurement
    (FEATURES, or the calibrated confidence), whether a value below the limit fails
    (rather than above it), and the limit."""
    return (
        ("blank", "peak", True, BLANK_PEAK),
        ("too_little_ink", "ink", True, screen.ink[0]),
        ("too_much_ink", "ink", False, screen.ink[1]),
        ("several_blobs", "second_blob", False, screen.max_second_blob),
        ("rough", "roughness", False, screen.max_roughness),
        ("smudged", "half_ink", False, screen.max_half_ink),
        ("too_wide", "aspect", False, screen.max_aspect),
        ("odd_shape", "shape", False, screen.max_shape),
        ("unlike_a_digit", "confidence", True, screen.digit_floor),
    )


def judge(measured: dict, calibrated, screen: Screen) -> dict:
    """The checks on measurements (`features`) and calibrated probabilities [n, 10] -> `reasons`
    (bits), `status`, and `not_a_digit_score`: the largest of each check's measurement
    over its limit (limit over measurement, for the checks that fail below it), so above
    1 exactly when a not-a-digit check fails. All checks at once, as [n, checks] arrays."""
    calibrated = tf.convert_to_tensor(calibrated, tf.float32)
    confidence = tf.reduce_max(calibrated, axis=-1)
    m = {name: tf.convert_to_tensor(measured[name], tf.float32) for name in FEATURES}
    m["confidence"] = confidence
    checked, names, fails_below, limits = zip(*_checks(screen), strict=True)
    assert checked == REASONS[: len(checked)], checked  # a reason's bit is its place
    values = tf.stack([m[name] for name in names], axis=1)
    limits = tf.constant(limits, tf.float32)
    below = tf.constant(fails_below)
    ratios = tf.where(  # kept finite where a limit (or a measurement) is 0
        below, limits / tf.maximum(values, 1e-6), values / tf.maximum(limits, 1e-6)
    )
    score = tf.reduce_max(ratios, axis=1)
    unsure = rank(calibrated, screen.ranking) < screen.threshold
    unusual = m["shape"] > screen.review_shape
    failed = tf.concat([ratios > 1.0, tf.stack([unsure, unusual], axis=1)], axis=1)
    bits = tf.constant([1 << i for i in range(len(REASONS))], tf.int32)
    reasons = tf.reduce_sum(tf.where(failed, bits, 0), axis=1)
    not_a_digit = score > 1.0
    review = unsure | unusual
    status = tf.where(not_a_digit, NOT_A_DIGIT, tf.where(review, REVIEW, ACCEPTED))
    return {"status": tf.cast(status, tf.int32), "reasons": reasons, "not_a_digit_score": score}


def assess(probabilities, pixels, screen: Screen) -> dict:
    """Probabilities [n, 10] and the pixels the model saw -> digit, confidence (raw and
    calibrated), status, reason bits, not-a-digit score, and the checks' measurements."""
    probabilities = tf.convert_to_tensor(probabilities, tf.float32)
    measured = features(tf.convert_to_tensor(pixels, tf.uint8), screen.shape_check)
    calibrated = calibrate(probabilities, screen.temperature)
    return {
        "digit": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
        "confidence": tf.reduce_max(probabilities, axis=-1),
        "calibrated_confidence": tf.reduce_max(calibrated, axis=-1),
        **judge(measured, calibrated, screen),
        **measured,
    }


def reason_names(bits: int) -> list[str]:
    return [name for i, name in enumerate(REASONS) if bits & (1 << i)]


def as_strings(assessed: dict) -> dict:
    """`status` and `reasons` as string tensors (names; reasons comma-separated), for the
    SavedModel's callers."""
    status = tf.gather(tf.constant(STATUSES), assessed["status"])
    bits = tf.constant([1 << i for i in range(len(REASONS))], tf.int32)
    has = tf.bitwise.bitwise_and(assessed["reasons"][:, None], bits[None, :]) > 0
    names = tf.broadcast_to(tf.constant(REASONS), tf.shape(has))
    reasons = tf.strings.reduce_join(tf.ragged.boolean_mask(names, has), axis=1, separator=",")
    return {"status": status, "reasons": reasons}


def fit(
    measured: dict,
    calibrated,
    budget: float = 0.01,
    shape_weights: dict | None = None,
    shape_review_share: float = 0.0,
) -> Screen:
    """Input limits from held-out digits' measurements and calibrated probabilities
    [n, 10]: each cuts the same tail share q, the largest (by bisection) flagging at most
    `budget` of them in all. The shape check's review limit (with `shape_weights`) cuts the
    top `shape_review_share` of them. The temperature and the review threshold are the
    caller's to set (dataclasses.replace): the limits do not depend on them."""
    values = {name: np.asarray(measured[name], np.float64) for name in FEATURES}
    calibrated = np.asarray(calibrated, np.float64)
    confidence = calibrated.max(axis=1)
    review_shape = 1.0
    if shape_weights and shape_review_share > 0:
        review_shape = float(np.quantile(values["shape"], 1 - shape_review_share))

    def limits(q: float) -> Screen:
        return Screen(
            digit_floor=float(np.quantile(confidence, q)),
            ink=(float(np.quantile(values["ink"], q)), float(np.quantile(values["ink"], 1 - q))),
            max_second_blob=float(np.quantile(values["second_blob"], 1 - q)),
            max_roughness=float(np.quantile(values["roughness"], 1 - q)),
            max_half_ink=float(np.quantile(values["half_ink"], 1 - q)),
            max_aspect=float(np.quantile(values["aspect"], 1 - q)),
            max_shape=float(np.quantile(values["shape"], 1 - q)) if shape_weights else 1.0,
            shape_check=shape_weights or {},
            review_shape=review_shape,
        )

    def flagged(screen: Screen) -> float:  # the share of digits called not_a_digit
        return float(np.mean(judge(values, calibrated, screen)["status"].numpy() == NOT_A_DIGIT))

    low, high = 0.0, budget
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if flagged(limits(middle)) <= budget else (low, middle)
    screen = limits(low)
    share = shape_review_share if shape_weights else 0.0
    fitted = {"budget": budget, "tail_share": low, "digits": len(confidence),
              "shape_review_share": share, "flagged_share": flagged(screen)}  # fmt: skip
    return replace(screen, fitted=fitted)


def for_people(screen: dict) -> dict:
    """The screen as evaluation.json shows it: the shape check's weights stay in
    calibration.json."""
    weights = screen.get("shape_check") or {}
    summary = {"architecture": weights["architecture"]} if weights else {}
    return {**screen, "shape_check": summary}
