"""The report `digits evaluate` writes: metrics, pictures and the model card (report.md).

    results = {**classification_metrics(test.labels, test.probabilities), ...}
    write_report(output, model, training, results, test, manifest, validation)

evaluation.json holds the results as they are; confusion_matrix.png, misclassified.png,
samples.png and reliability.png are drawn here, the robustness pictures in
evaluation/robustness.py, label_review.csv and .png in evaluation/label_review.py, and
report.md gathers every section.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile

import keras
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import files, schema  # noqa: E402
from evaluation import blessing, calibration, label_review, robustness  # noqa: E402
from model.data import Split  # noqa: E402


@contextlib.contextmanager
def report_folder(output: str):
    """Yields a local folder to write the report in; uploaded afterwards if `output` is gs://."""
    if files.is_local(output):
        os.makedirs(output, exist_ok=True)
        yield output
        return
    local = tempfile.mkdtemp(prefix="digits-report-")
    try:
        yield local
        files.upload_tree(local, output)
    finally:
        shutil.rmtree(local, ignore_errors=True)


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    predicted = probabilities.argmax(axis=1)
    n = schema.NUM_CLASSES
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    precision = np.divide(
        true_positive, confusion.sum(axis=0), out=np.zeros(n), where=confusion.sum(axis=0) > 0
    )
    recall = np.divide(
        true_positive, confusion.sum(axis=1), out=np.zeros(n), where=confusion.sum(axis=1) > 0
    )
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(n), where=precision + recall > 0
    )
    picked = probabilities[np.arange(len(labels)), labels]
    return {
        "examples": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "per_class": {
            str(digit): {
                "precision": float(precision[digit]),
                "recall": float(recall[digit]),
                "f1": float(f1[digit]),
                "support": int(confusion[digit].sum()),
            }
            for digit in range(n)
        },
        "confusion_matrix": confusion.tolist(),  # rows: true digit, columns: predicted
    }


def plot_confusion(confusion: np.ndarray, path: str, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    shown = np.log1p(confusion)
    ax.imshow(shown, cmap="Blues")
    for (row, col), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if shown[row, col] > shown.max() * 0.6 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_digits(images, captions, path: str, title: str, columns: int = 10) -> None:
    """A grid of images (any size, [0, 1]), each fitted into its cell keeping its aspect,
    its caption above it; a None leaves its cell blank. One axes for the whole grid: a
    subplot per image made each picture take a second or two."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    cell = 1.25  # a cell's height: the image (0.9 of the width) and its caption
    fig = plt.figure(figsize=(columns * 0.9, rows * 1.05 + 0.4), dpi=100)
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.02 - 0.4 / (rows * 1.05 + 0.4)))
    for i, (image, caption) in enumerate(zip(images, captions, strict=False)):
        if image is None:
            continue
        row, column = divmod(i, columns)
        height, width = np.shape(image)[:2]
        scale = 0.9 / max(height, width)
        middle, top = column + 0.5, row * cell + 0.3
        left, right = middle - width * scale / 2, middle + width * scale / 2
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                  extent=(left, right, top + height * scale, top))  # fmt: skip
        if caption:
            ax.text(middle, top - 0.04, caption, ha="center", va="bottom", fontsize=8)
    ax.set_xlim(0, columns)
    ax.set_ylim(rows * cell, 0)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    plt.close(fig)


def model_card(model: keras.Model, training: dict, results: dict, manifest: dict) -> str:
    """report.md: data, architecture, recipe, results and limits of the model."""
    summary = io.StringIO()
    model.summary(print_fn=lambda line, **_: summary.write(line + "\n"))
    splits = {name: f"{manifest['splits'][name]['records']:,}" for name in schema.SPLITS}
    return f"""# Model card: `{training["model"]}` digit classifier

## Data
MNIST: {splits["train"]} training images, {splits["validation"]} validation images carved
from the end of the training file, {splits["test"]} test images; 28x28 grayscale, pixels / 255.
Preprocessed by `digits preprocess` (pipeline {manifest["pipeline_version"]}).
{_labelled_text(manifest)}

## Architecture
{training["parameters"]:,} parameters.

```
{summary.getvalue().strip()}
```

## Training recipe
{_recipe_text(training)}

## Results (test split, {results["examples"]:,} images)
Accuracy **{results["accuracy"]:.4f}**, loss {results["loss"]:.4f}; validation accuracy
{training["validation"]["accuracy"]:.4f}.

{_per_class_table(results["per_class"])}

![confusion matrix](confusion_matrix.png)

![misclassified test digits](misclassified.png)

{calibration.card_section(results["calibration"])}
{_label_review_text(results["label_review"], manifest)}
{calibration.source_card_section(results["by_source"])}
{robustness.card_section(results["robustness"])}
{blessing.card_section(results["blessing"])}
## Limits
{_limits_text(results["per_class"])}
"""


def _label_review_text(rows: list[dict], manifest: dict) -> str:
    """Where the validation digits read as another digit are, and the labels corrected."""
    relabelled = manifest.get("relabelled")
    corrected = (
        f" Validation labels corrected by a person: "
        f"{relabelled['labels_changed']['validation']} (`{relabelled['file']}`)."
        if relabelled
        else ""
    )
    return f"""### Validation labels to check
The {len(rows)} MNIST validation digits the model reads most confidently as another digit
than their label are in `label_review.csv` and `label_review.png`; the first few decide
the review threshold. Those a person finds mislabelled belong in a corrections file for
`digits preprocess --relabel`.{corrected}

![validation digits to check](label_review.png)
"""


def _labelled_text(manifest: dict) -> str:
    """The labelled folders the split counts above include, if any."""
    accounts = manifest.get("labelled") or {}
    if not accounts:
        return ""
    lines = [
        f"- `{name}` ({a['folder']}): {a['records']:,} digits and {a['not_a_digit']:,} "
        f"not-a-digit images, split by digest; {sum(a['excluded'].values()):,} files left out"
        for name, a in accounts.items()
    ]
    return "Labelled folders, included in the counts above:\n" + "\n".join(lines) + "\n"


def _recipe_text(training: dict) -> str:
    config = training["config"]
    schedule = " (one-cycle: warm-up then cosine decay)" if config["one_cycle"] else ""
    augmentation = "none"
    if config["augment"]:
        augmentation = (
            f"random rotations up to {config['max_rotation_degrees']} degrees, zooms up to "
            f"{config['max_zoom']:.0%} and shifts up to {config['max_shift']:.0%}"
        )
    kept = "the last epoch"
    if config["keep_best_on_validation"]:
        kept = f"the epoch with the lowest validation loss (epoch {training['chosen_epoch']})"
    return (
        f"Adam, learning rate {config['learning_rate']}{schedule}, batch {config['batch_size']},\n"
        f"{config['epochs']} epochs, categorical cross-entropy (label smoothing\n"
        f"{config['label_smoothing']}), seed {config['seed']}. Augmentation: {augmentation}.\n"
        f"Weights kept: {kept}.{_exported_text(config)}"
    )


def _exported_text(config: dict) -> str:
    """How the exported model reads a digit, where it is more than one network once."""
    members, below = config.get("members", 1), config.get("second_look_below", 0.0)
    text = f"\nThe exported model averages {members} networks." if members > 1 else ""
    if below > 0:
        text += (
            f"\nIt reads again, shifted one pixel each way, each digit whose p1 / (p1 + p2) is "
            f"under {below:g},\nand gives the mean of the five readings."
        )
    return text


def _per_class_table(per_class: dict) -> str:
    rows = "\n".join(
        f"| {d} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |"
        for d, m in per_class.items()
    )
    return "| digit | precision | recall | F1 | support |\n| --- | --- | --- | --- | --- |\n" + rows


def _limits_text(per_class: dict) -> str:
    worst = min(per_class, key=lambda d: per_class[d]["f1"])
    return (
        "- Trained on centred, size-normalised, white-on-black handwritten digits. Other images\n"
        "  must go through the same MNIST-style normalisation (the SavedModel's `predict_encoded`\n"
        "  and `digits score` do it). Photos, several digits in one image, letters or symbols\n"
        "  still get a digit, often with high raw confidence: use `status`, whose input checks\n"
        "  and shape check catch most of them (Robustness, below), not `confidence`.\n"
        f"- Weakest class here: {worst} (F1 {per_class[worst]['f1']:.4f}).\n"
        "- MNIST writers are American Census Bureau employees and high-school students; other\n"
        "  handwriting styles (e.g. continental 1s and 7s) are under-represented."
    )


def write_pictures(test: Split, results: dict, model_name: str, output: str) -> None:
    """confusion_matrix.png, misclassified.png (first 60), samples.png (first 30) and
    reliability.png."""
    predicted = test.predicted
    calibration.plot_reliability(
        test, results["calibration"]["temperature"], os.path.join(output, "reliability.png")
    )
    plot_confusion(
        np.array(results["confusion_matrix"]),
        os.path.join(output, "confusion_matrix.png"),
        f"{model_name}: test accuracy {results['accuracy']:.2%}",
    )
    wrong = np.flatnonzero(predicted != test.labels)
    plot_digits(
        test.images[wrong[:60]],
        [f"{test.labels[i]}→{predicted[i]}" for i in wrong[:60]],
        os.path.join(output, "misclassified.png"),
        f"{len(wrong)} misclassified test digits (true→predicted), first 60",
    )
    plot_digits(
        test.images[:30],
        [f"pred {predicted[i]}" for i in range(30)],
        os.path.join(output, "samples.png"),
        "First 30 test digits",
    )


def write_report(
    output: str,
    model,
    training: dict,
    results: dict,
    test: Split,
    manifest: dict,
    validation: Split,
) -> None:
    """evaluation.json, the pictures, label_review.csv and report.md into `output` (local or
    gs://)."""
    with report_folder(output) as local:
        with open(os.path.join(local, "evaluation.json"), "w") as handle:
            json.dump(
                {"model": training["model"], "model_id": training.get("model_id"), **results},
                handle,
                indent=2,
            )
        write_pictures(test, results, training["model"], local)
        robustness.write_pictures(test, results["robustness"], local, plot_digits)
        label_review.write(local, validation, results["label_review"], plot_digits)
        with open(os.path.join(local, "report.md"), "w") as handle:
            handle.write(model_card(model, training, results, manifest))
