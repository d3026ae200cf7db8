"""The robustness step of `digits evaluate`: the model on inputs that are not clean MNIST.

On a seeded sample of the test split (evaluation.suites makes every set):

- corruptions: accuracy under each MNIST-C-style corruption, and their mean (through
  the scorer's normalisation, like every suite: a 28x28 digit on a black border passes
  unchanged, one on a raised background is normalised);
- not-a-digit kinds: the share of each that is accepted / sent to review / called
  not_a_digit, and the AUROC of the not-a-digit score against the clean test digits;
- scans: the same digits as clean images and as scanned pages (JPEG through the
  scorer's own decoding and normalisation, model.images): the accuracy gap;
- low resolution: the digits reduced to 8x8, 12x12 and 16x16 and scaled back up to 32x32
  (an old form scanner's crops), read through the normalisation and, for comparison,
  through a plain resize to 28x28.

Each is judged by the scorer's predictor (model.serving.Predictor, statuses included), so
what is reported here is what `digits score` does. Writes the `robustness` section of
evaluation.json, corruptions.png, not_a_digit.png, scans.png, low_resolution.png and a model
card section.
"""

from __future__ import annotations

import os

import numpy as np

from common.progress import Steps
from evaluation import suites
from model import calibration, images, screening
from model.data import Split


def evaluate(predictor, test: Split, sizes, steps: Steps | None = None) -> dict:
    """Runs the three suites on `sizes.size` test digits chosen with `sizes.seed`, and
    `sizes.per_kind` images of each not-a-digit kind (evaluation.evaluate.Suites)."""
    steps = steps or Steps("robustness")
    seed = sizes.seed
    chosen = sample(test, sizes.size, seed)
    digits, labels = test.pixels[chosen], test.labels[chosen]
    clean = predictor.predict(digits)
    total = len(suites.CORRUPTIONS) + len(suites.NOT_A_DIGIT_KINDS) + 1

    def tick(done: int, name: str) -> None:
        steps.tick(done, total, "sets", f" ({name} done)")

    return {
        "sample": {"test_digits": len(chosen), "seed": seed},
        "clean_accuracy": _accuracy(clean, labels),
        "corruptions": corruption_suite(predictor, digits, labels, seed, tick),
        "not_a_digit": not_a_digit_suite(
            predictor,
            digits,
            clean,
            sizes.per_kind,
            seed,
            lambda done, name: tick(len(suites.CORRUPTIONS) + done, name),
        ),  # fmt: skip
        "scans": scan_suite(predictor, digits, labels, clean, seed),
        "low_resolution": low_resolution_suite(predictor, digits, labels),
    }


def sample(test: Split, size: int, seed: int) -> np.ndarray:
    """The indices of the test digits the suites use: `size` of them, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    count = min(size, len(test.labels))
    return np.sort(rng.choice(len(test.labels), size=count, replace=False))


def _accuracy(predicted: dict, labels: np.ndarray) -> float:
    return float((predicted["digit"] == labels).mean())


def _error_among_accepted(predicted: dict, labels: np.ndarray) -> float | None:
    """The share of accepted predictions that are wrong; None when none is accepted. The
    review threshold is set on clean digits: on damaged ones it may be higher."""
    accepted = predicted["status"] == screening.ACCEPTED
    if not accepted.any():
        return None
    return float((predicted["digit"][accepted] != labels[accepted]).mean())


def _percent(share: float | None) -> str:
    return "none accepted" if share is None else f"{share:.2%}"


def _shares(predicted: dict) -> dict:
    counts = np.bincount(predicted["status"], minlength=len(screening.STATUSES))
    return {
        name: float(n / len(predicted["status"]))
        for name, n in zip(screening.STATUSES, counts, strict=True)
    }


def corruption_suite(predictor, digits, labels, seed, tick=None) -> dict:
    per = {}
    for done, name in enumerate(suites.CORRUPTIONS, 1):
        corrupted = suites.corrupt(name, digits, seed)
        predicted = predictor.predict(normalised(list(corrupted[..., None])))
        per[name] = {
            "accuracy": _accuracy(predicted, labels),
            "statuses": _shares(predicted),
            "error_among_accepted": _error_among_accepted(predicted, labels),
        }
        if tick:
            tick(done, name)
    mean = float(np.mean([r["accuracy"] for r in per.values()]))
    return {"per_corruption": per, "mean_accuracy": mean}


def normalised(pages: list[np.ndarray]) -> np.ndarray:
    """Pages through the scorer's normalisation (model.images.to_mnist_pixels), on every
    core (model.images.normalise_all)."""
    return images.normalise_all(pages)


ACCEPTED_SHOWN = 10  # not-a-digit images accepted, per kind: recorded and pictured


def not_a_digit_suite(predictor, digits, clean, per_kind, seed, tick=None) -> dict:
    per = {}
    for done, kind in enumerate(suites.NOT_A_DIGIT_KINDS, 1):
        pages = suites.not_a_digit(kind, per_kind, digits, seed)
        predicted = predictor.predict(normalised(pages))
        shares = _shares(predicted)
        accepted = np.flatnonzero(predicted["status"] == screening.ACCEPTED)[:ACCEPTED_SHOWN]
        per[kind] = {
            "statuses": shares,
            # which of the kind's images (as suites.not_a_digit makes them) got through
            "accepted_examples": [
                {"index": int(i), "digit": int(predicted["digit"][i])} for i in accepted
            ],
            "not_accepted": 1.0 - shares["accepted"],
            "auroc": calibration.auroc(predicted["not_a_digit_score"], clean["not_a_digit_score"]),
            "auroc_max_softmax": calibration.auroc(
                -predicted["calibrated_confidence"], -clean["calibrated_confidence"]
            ),
        }
        if tick:
            tick(done, kind)
    return {
        "per_kind": per,
        "count_per_kind": per_kind,
        "worst_not_accepted": min(r["not_accepted"] for r in per.values()),
        "digits_flagged": float((clean["status"] == screening.NOT_A_DIGIT).mean()),
    }


def scan_suite(predictor, digits, labels, clean, seed) -> dict:
    scans = suites.scan(digits, seed)
    predicted = predictor.predict(normalised([images.decode(data) for data in scans]))
    clean_accuracy, scanned_accuracy = _accuracy(clean, labels), _accuracy(predicted, labels)
    return {
        "clean_accuracy": clean_accuracy,
        "scanned_accuracy": scanned_accuracy,
        "gap_points": 100 * (clean_accuracy - scanned_accuracy),
        "scanned_statuses": _shares(predicted),
    }


def low_resolution_suite(predictor, digits, labels) -> dict:
    per = {}
    for side in suites.LOW_RESOLUTIONS:
        pages = suites.low_resolution(digits, side)
        through = predictor.predict(normalised(list(pages[..., None])))
        plain = predictor.predict(suites.plain_resize(pages))
        per[str(side)] = {
            "normalised_accuracy": _accuracy(through, labels),
            "plain_resize_accuracy": _accuracy(plain, labels),
            "normalised_statuses": _shares(through),
            "normalised_error_among_accepted": _error_among_accepted(through, labels),
        }
    return {
        "page": suites.LOW_RESOLUTION_PAGE,
        "per_side": per,
        # Points the normalisation reads worse than a plain resize, at the worst side.
        "worst_shortfall_points": max(
            100 * (r["plain_resize_accuracy"] - r["normalised_accuracy"]) for r in per.values()
        ),
    }


def write_pictures(test: Split, result: dict, output: str, plot_digits) -> None:
    """corruptions.png, not_a_digit.png, scans.png and low_resolution.png: examples of each
    set; not_a_digit_accepted.png: the not-a-digit images `result` (evaluate's) records as
    accepted, if any."""
    seed = result["sample"]["seed"]
    digits = test.pixels[:10]
    rows = [suites.corrupt(name, digits, seed) for name in suites.CORRUPTIONS]
    names = list(suites.CORRUPTIONS)
    plot_digits(
        np.concatenate(rows) / 255.0,
        [names[i // 10] if i % 10 == 0 else "" for i in range(len(names) * 10)],
        os.path.join(output, "corruptions.png"),
        "Test digits under each corruption (row title: the corruption)",
    )
    pages, captions = [], []
    for kind in suites.NOT_A_DIGIT_KINDS:
        made = suites.not_a_digit(kind, 5, test.pixels, seed)
        pages += [_gray(p) for p in made] + list(normalised(made) / 255.0)
        captions += [kind] + [""] * 4 + ["normalised"] + [""] * 4
    plot_digits(
        pages,
        captions,
        os.path.join(output, "not_a_digit.png"),
        "Not digits: the input (left five), what the model sees (right five)",
    )
    scanned = [images.decode(data) for data in suites.scan(digits, seed)]
    scans, seen = [_gray(page) for page in scanned], normalised(scanned) / 255.0
    plot_digits(
        list(digits / 255.0) + scans + list(seen),
        ["clean"] + [""] * 9 + ["scanned"] + [""] * 9 + ["normalised"] + [""] * 9,
        os.path.join(output, "scans.png"),
        "The same test digits clean, scanned (JPEG page), and normalised from the scan",
    )
    _plot_low_resolution(digits, output, plot_digits)
    _plot_accepted(test, result, output, plot_digits)


def _plot_low_resolution(digits: np.ndarray, output: str, plot_digits) -> None:
    rows, captions = [], []
    for side in suites.LOW_RESOLUTIONS:
        pages = suites.low_resolution(digits, side)
        rows += list(suites.plain_resize(pages) / 255.0) + list(
            normalised(list(pages[..., None])) / 255.0
        )
        captions += [f"{side}x{side}"] + [""] * 9 + ["normalised"] + [""] * 9
    plot_digits(
        rows,
        captions,
        os.path.join(output, "low_resolution.png"),
        "Test digits at low resolution: resized to 28x28 (first row), normalised (second)",
    )


def accepted_images(test: Split, result: dict, kind: str) -> np.ndarray:
    """uint8 [n, 28, 28]: the not-a-digit images of `kind` that `result` (evaluate's)
    records as accepted, made again as the suite made them, normalised as the model saw
    them."""
    examples = result["not_a_digit"]["per_kind"][kind].get("accepted_examples") or []
    if not examples:
        return np.zeros((0, *screening.IMAGE_SHAPE), np.uint8)
    chosen = sample(test, result["sample"]["test_digits"], result["sample"]["seed"])
    made = suites.not_a_digit(
        kind, examples[-1]["index"] + 1, test.pixels[chosen], result["sample"]["seed"]
    )
    return normalised([made[e["index"]] for e in examples])


def _plot_accepted(test: Split, result: dict, output: str, plot_digits) -> None:
    """not_a_digit_accepted.png: per kind, a row of the images accepted as digits, as the
    model saw them, each with the digit it read."""
    shown, captions = [], []
    for kind, r in result["not_a_digit"]["per_kind"].items():
        examples = r.get("accepted_examples") or []
        if not examples:
            continue
        picked = accepted_images(test, result, kind) / 255.0
        empty = ACCEPTED_SHOWN - len(examples)  # cells left blank, so each kind has a row
        shown += list(picked) + [None] * empty
        read = [str(e["digit"]) for e in examples]
        captions += [f"{kind}: {read[0]}", *read[1:]] + [""] * empty
    if shown:
        plot_digits(
            shown,
            captions,
            os.path.join(output, "not_a_digit_accepted.png"),
            "Not digits accepted as digits, as the model saw them (caption: the digit read)",
            columns=ACCEPTED_SHOWN,
        )


def _gray(page: np.ndarray) -> np.ndarray:
    """An input page for display: gray, [0, 1]."""
    page = page.astype(np.float64)
    gray = page[..., :3].mean(axis=2) if page.shape[2] >= 3 else page[..., 0]
    return gray / 255.0


def card_section(result: dict) -> str:
    corruptions = result["corruptions"]["per_corruption"]
    rows = "\n".join(
        f"| {name} | {r['accuracy']:.2%} | {r['statuses']['accepted']:.1%} | "
        f"{_percent(r.get('error_among_accepted'))} |"
        for name, r in corruptions.items()
    )
    kinds = result["not_a_digit"]["per_kind"]
    kind_rows = "\n".join(
        f"| {kind} | {r['statuses']['accepted']:.1%} | {r['statuses']['review']:.1%} | "
        f"{r['statuses']['not_a_digit']:.1%} | {r['auroc']:.4f} |"
        for kind, r in kinds.items()
    )
    scans, sample = result["scans"], result["sample"]
    return f"""## Robustness ({sample["test_digits"]:,} test digits, seed {sample["seed"]})
Clean accuracy {result["clean_accuracy"]:.2%}; mean accuracy under the corruptions
**{result["corruptions"]["mean_accuracy"]:.2%}**. The review threshold is set on clean
digits: the error among the damaged digits it accepts may be higher.

| corruption | accuracy | accepted | error among accepted |
| --- | --- | --- | --- |
{rows}

![corruptions](corruptions.png)

Inputs that are not digits ({result["not_a_digit"]["count_per_kind"]} of each kind), by status,
and the AUROC of the not-a-digit score against clean test digits:

| kind | accepted | review | not_a_digit | AUROC |
| --- | --- | --- | --- | --- |
{kind_rows}

![not digits](not_a_digit.png)
{_accepted_text(result["not_a_digit"])}
Scans (the same digits, written in coloured ink on textured paper, anywhere on the page,
thicker or thinner, JPEG): accuracy {scans["scanned_accuracy"]:.2%} against
{scans["clean_accuracy"]:.2%} clean, a gap of **{scans["gap_points"]:.2f} points**.

![scans](scans.png)

""" + _low_resolution_section(result["low_resolution"])


def _accepted_text(suite: dict) -> str:
    if not any(r.get("accepted_examples") for r in suite["per_kind"].values()):
        return ""
    return f"""
The first {ACCEPTED_SHOWN} of each kind that were accepted as digits:

![not digits accepted](not_a_digit_accepted.png)
"""


def _low_resolution_section(low: dict) -> str:
    rows = "\n".join(
        f"| {side}x{side} | {r['normalised_accuracy']:.2%} | {r['plain_resize_accuracy']:.2%} | "
        f"{r['normalised_statuses']['accepted']:.1%} | "
        f"{_percent(r.get('normalised_error_among_accepted'))} |"
        for side, r in low["per_side"].items()
    )
    return f"""Low resolution (the same digits reduced to a few pixels a side and scaled back up to
{low["page"]}x{low["page"]}, as an old form scanner's crops look), read through the
normalisation and through a plain resize to 28x28:

| reduced to | normalised | plain resize | accepted (normalised) | error among accepted |
| --- | --- | --- | --- | --- |
{rows}

![low resolution](low_resolution.png)
"""
