"""Evaluation job: judges a trained model on the test split and writes the report and the
blessing; of the model folder it changes only blessing.json.

    digits evaluate --data out/data --model out/model --output out/report
    python -m jobs.evaluate --data out/data --model out/model --output out/report

Writes to REPORT_DIR: evaluation.json (accuracy, loss, per-class precision / recall / F1,
the confusion matrix, the model's calibration measured on test), confusion_matrix.png,
misclassified.png (test digits the model got wrong, true -> predicted), samples.png (test
digits with predictions), reliability.png, corruptions.png, not_a_digit.png, scans.png and
report.md, a short model card. Into the model folder: blessing.json, the gate's verdict
for this exact model file (evaluation/blessing.py). The calibration it measures is the one
`digits train` fitted on the validation split (training/calibrate.py). The work is in
the evaluation package (evaluation/evaluate.py wires it); this module holds the options.
"""

from __future__ import annotations

import argparse
import sys

from evaluation.evaluate import EvaluateRun, Suites
from evaluation.evaluate import run as evaluate
from evaluation.gate import GateConfig
from jobs.exits import run_job

GATE_OPTIONS = (
    ("min_accuracy", "lowest test accuracy to bless"),
    ("min_class_recall", "lowest recall of any digit to bless"),
    ("max_ece", "highest expected calibration error after scaling to bless"),
    ("min_corruption_accuracy", "lowest mean accuracy under the corruptions to bless"),
    ("max_accuracy_drop", "largest accuracy drop against --baseline to bless"),
    ("max_source_drop", "largest drop of any source's accuracy against --baseline to bless"),
    ("min_accepted_share", "lowest share of validation digits accepted to bless"),
    ("max_accepted_drop", "largest drop of that share against --baseline to bless"),
)


def parse_args(argv) -> EvaluateRun:
    parser = argparse.ArgumentParser(
        prog="digits evaluate", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--data", required=True, help="a dataset folder from digits preprocess")
    parser.add_argument("--model", required=True, help="a model folder from digits train")
    parser.add_argument("--output", required=True, help="report folder to write")
    parser.add_argument(
        "--suite-size",
        type=int,
        default=Suites.size,
        help="test digits in the corruption, not-a-digit and scan suites",
    )
    parser.add_argument(
        "--suite-per-kind",
        type=int,
        default=Suites.per_kind,
        help="images of each not-a-digit kind",
    )
    parser.add_argument("--suite-seed", type=int, default=Suites.seed, help="seed of the suites")
    parser.add_argument(
        "--baseline",
        help="the model now promoted: bless only if this one is no worse (a folder without "
        "a model yet, as on a first run, skips the comparison and says so)",
    )
    add_gate_options(parser)
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    gate = {name: getattr(args, name) for name, _ in GATE_OPTIONS}
    return EvaluateRun(
        args.data,
        args.model,
        args.output,
        args.baseline,
        Suites(args.suite_size, args.suite_per_kind, args.suite_seed),
        GateConfig(**gate, source_floors=tuple(args.source_floor)),
    )


def add_gate_options(parser: argparse.ArgumentParser) -> None:
    """The gate's floors and margins; defaults from GateConfig."""
    for name, help_text in GATE_OPTIONS:
        default = getattr(GateConfig, name)
        parser.add_argument(
            "--" + name.replace("_", "-"), type=float, default=default,
            help=f"{help_text} (default {default})",
        )  # fmt: skip
    parser.add_argument(
        "--source-floor",
        action="append",
        type=_source_floor,
        default=[],
        metavar="SOURCE=ACCURACY",
        help="lowest test accuracy of one source (mnist, or a labelled folder's name) to "
        "bless, e.g. forms=0.97; repeatable",
    )


def _source_floor(text: str) -> tuple[str, float]:
    name, _, floor = text.partition("=")
    try:
        value = float(floor)
    except ValueError:
        value = -1.0
    if not name or not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give SOURCE=ACCURACY with an accuracy from 0 to 1, e.g. forms=0.97"
        )
    return name, value


def run(argv: list[str] | None = None) -> dict:
    job = parse_args(argv)
    results = evaluate(job)
    blessing = results["blessing"]
    verdict = "blessed" if blessing["blessed"] else f"NOT blessed ({', '.join(blessing['failed'])})"
    print(
        f"test accuracy {results['accuracy']:.4f}, loss {results['loss']:.4f}; {verdict}; "
        f"report in {job.output}/report.md"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    return run_job("digits evaluate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
