"""Training job: streams a preprocessed dataset into the CNN, exports it and calibrates it:
the model folder it ends with is servable (`digits score --allow-unblessed` takes it;
`digits evaluate` judges and blesses it).

    digits train --data out/data --output out/model                  # the notebook: seed, 10 epochs
    digits train --data out/data --output out/model --recipe strong  # the stronger recipe
    python -m jobs.train --data out/data --output out/model          # the same

Killed midway, the same command resumes from the last finished epoch (Keras
BackupAndRestore in MODEL_DIR/backup). Writes MODEL_DIR/model.keras, TensorBoard logs in
MODEL_DIR/logs, then the calibration fitted on the validation split
(training/calibrate.py: the shape check, temperature, review threshold and input
limits in calibration.json, reference.json, and MODEL_DIR/saved_model/ with statuses) and,
last, MODEL_DIR/metrics.json: a model folder without metrics.json is not a finished model.
The work is in training/train.py; this module holds the options.

`--precision auto` (the default) trains in mixed bfloat16 on a CPU that computes in
bfloat16 (Intel AMX, AVX-512's bfloat16 of AMD Zen 4 and later) and in float32
elsewhere; `mixed` is float16 on a GPU. The exported model computes in float32 whatever
trained it. On a GPU machine the input is prefetched onto the GPU, `--xla` compiles the
train step, and several GPUs train under MirroredStrategy; on a CPU `--xla` is ignored
(with a warning).
"""

from __future__ import annotations

import argparse
import sys

from jobs.exits import run_job
from model import calibration, shape_check
from model.configs import RECIPES, TrainConfig, recipe
from training.calibrate import CalibrationConfig
from training.train import PRECISIONS, TrainRun
from training.train import run as train

# The TrainConfig fields an option replaces (add_recipe_options, add_data_options).
RECIPE_FIELDS = ("epochs", "batch_size", "seed", "members", "second_look_below", "label_smoothing",
                 "outlier_share", "damage_share", "labelled_weight")  # fmt: skip


def parse_args(argv) -> TrainRun:
    parser = argparse.ArgumentParser(
        prog="digits train", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--data", required=True, help="a dataset folder from digits preprocess")
    parser.add_argument("--output", required=True, help="model folder to write")
    parser.add_argument(
        "--recipe", default=TrainConfig.model, choices=sorted(RECIPES), help="the training recipe"
    )
    parser.add_argument("--model", dest="misnamed_recipe", help=argparse.SUPPRESS)
    add_recipe_options(parser)
    add_data_options(parser)
    add_calibration_options(parser)
    add_screen_options(parser)
    parser.add_argument(
        "--precision",
        default=TrainRun.precision,
        choices=PRECISIONS,
        help="training compute: auto (bfloat16 on a CPU with AMX or AVX-512 bfloat16, else "
        "float32), float32, or "
        "mixed (float16 on a GPU, bfloat16 on a CPU); the exported model computes in float32",
    )
    parser.add_argument(
        "--mixed-precision", dest="precision", action="store_const", const="mixed",
        help=argparse.SUPPRESS,
    )  # fmt: skip
    parser.add_argument("--xla", action="store_true", help="XLA-compile the train step (GPU)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")
    args = parser.parse_args(argv)
    if args.misnamed_recipe:
        parser.error(
            f"--model {args.misnamed_recipe}: the training recipe is --recipe "
            f"{args.misnamed_recipe} (--model names a model folder in the other jobs)"
        )
    config = recipe(args.recipe, **{name: getattr(args, name) for name in RECIPE_FIELDS})
    return TrainRun(
        args.data, args.output, config, calibration_from(args), args.precision, args.xla
    )


def add_recipe_options(parser) -> None:
    """What replaces the recipe's own numbers."""
    parser.add_argument("--epochs", type=int, help="default: the recipe's (seed 10, strong 14)")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's (seed 64)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help="random seed")
    parser.add_argument(
        "--members",
        type=int,
        help="networks trained side by side and averaged in the exported model (default: "
        "the recipe's: robust 2, others 1); training and scoring cost grow with it",
    )
    parser.add_argument(
        "--second-look-below",
        type=float,
        help="the exported model reads again, shifted one pixel each way, every digit whose "
        "top digit's share of the two likeliest is under this, and averages the five "
        "readings (default: the recipe's: robust 0.8, others 0, never)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        help="share of each target spread over the other digits (default: the recipe's: "
        "strong 0.1, robust and seed 0); it squeezes the confidences, so the review "
        "threshold may accept fewer",
    )


def add_data_options(parser) -> None:
    """What the training batches hold beside MNIST's digits."""
    parser.add_argument(
        "--outlier-share",
        type=float,
        help="not-a-digit images per training digit (outlier exposure; default: the "
        "recipe's: strong and robust 0.1, seed 0)",
    )
    parser.add_argument(
        "--damage-share",
        type=float,
        help="damaged training digits per training digit (model/damage.py; default: the "
        "recipe's: robust 0.25, others 0)",
    )
    parser.add_argument(
        "--labelled-weight",
        type=float,
        default=TrainConfig.labelled_weight,
        help="loss weight of a labelled folder's digits (digits preprocess --labelled) "
        f"against MNIST's 1 (default {TrainConfig.labelled_weight:g})",
    )


def add_calibration_options(parser) -> None:
    """The review threshold train fits; defaults from CalibrationConfig."""
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
        "--ranking",
        choices=calibration.RANKINGS,
        default=defaults.ranking,
        help="what the review threshold is set on: top_two (default), the top digit's share "
        "of the two likeliest, p1 / (p1 + p2); confidence, the top probability",
    )


def add_screen_options(parser) -> None:
    """The input checks train fits; defaults from CalibrationConfig."""
    defaults = CalibrationConfig()
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
        help="epochs of the shape check, small networks telling digits from letters, "
        "symbols and scribbles (model/shape_check.py); 0: none",
    )
    parser.add_argument(
        "--shape-check-members",
        type=int,
        default=defaults.shape_check.members,
        help="networks the shape check averages, each trained on its own not-a-digit "
        "images (each costs as much training time as the first)",
    )
    parser.add_argument(
        "--shape-check-outliers",
        type=int,
        default=defaults.shape_check.max_outliers,
        help="not-a-digit images it trains on (at most half the training digits)",
    )
    _add_shape_review_options(parser, defaults)
    parser.add_argument(
        "--check-damage-share",
        type=float,
        default=defaults.check_damage_share,
        help="damaged copies per image (model/damage.py: blur, noise, low resolution, ...) "
        "that the input checks learn from and are fitted on, so a damaged digit is checked "
        "as a digit; 0: clean digits only",
    )


def _add_shape_review_options(parser, defaults: CalibrationConfig) -> None:
    parser.add_argument(
        "--shape-review-share",
        type=float,
        default=defaults.shape_review_share,
        help="share of validation digits whose shape check score sends them to review "
        "(unusual_shape): the least digit-like ones; 0: none",
    )
    parser.add_argument(
        "--shape-review-up-to",
        type=float,
        default=defaults.shape_review_up_to,
        help="the most it reviews, above --shape-review-share, while --keep-accepted of the "
        "validation digits stay accepted by every check",
    )
    parser.add_argument(
        "--keep-accepted",
        type=float,
        default=defaults.keep_accepted,
        help="share of validation digits that must stay accepted by every check when the "
        "shape check reviews more than --shape-review-share; 1: it never does",
    )


def calibration_from(args) -> CalibrationConfig:
    return CalibrationConfig(
        target_error=args.target_error,
        threshold_rule=args.threshold_rule,
        ranking=args.ranking,
        not_a_digit_budget=args.not_a_digit_budget,
        shape_review_share=args.shape_review_share,
        shape_review_up_to=args.shape_review_up_to,
        keep_accepted=args.keep_accepted,
        check_damage_share=args.check_damage_share,
        shape_check=shape_check_from(args),
    )


def shape_check_from(args) -> shape_check.ShapeCheckConfig:
    return shape_check.ShapeCheckConfig(
        epochs=args.shape_check_epochs,
        members=args.shape_check_members,
        max_outliers=args.shape_check_outliers,
    )


def run(argv: list[str] | None = None) -> dict:
    job = parse_args(argv)
    metrics = train(job)
    print(
        f"{job.recipe.model}: validation accuracy {metrics['validation']['accuracy']:.4f}, "
        f"test accuracy {metrics['test']['accuracy']:.4f} (epoch {metrics['chosen_epoch']}); "
        f"exported to {job.output}"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    return run_job("digits train", run, argv)


if __name__ == "__main__":
    sys.exit(main())
