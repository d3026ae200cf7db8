"""Calibration job: fits a trained model's calibration again, into a new model folder, with
other calibration options than it was trained with; the network is not trained again.

    digits calibrate --model out/model --data out/data --output out/model-0.5 --target-error 0.005
    python -m jobs.calibrate --model out/model --data out/data --output out/model-top \
        --ranking confidence              # the threshold on the top probability instead
    digits calibrate ... --keep-shape-check   # its shape check as it is: minutes sooner

Fits what `digits train` fits last, on the validation split of the dataset the model was
trained on (the same folder: the job refuses another), with the options `digits train`
takes for it: the shape check, the temperature, the review threshold and the input
limits. Writes a whole model folder to OUTPUT (the network copied, calibration.json,
reference.json, the SavedModel with statuses, metrics.json last, recording the source
in `recalibrated_from`); the source folder is only read. The new folder is unblessed:
`digits evaluate` judges it, `digits promote` promotes it. The work is in
training/recalibrate.py; this module holds the options.
"""

from __future__ import annotations

import argparse
import sys

from jobs.exits import run_job
from jobs.train import add_calibration_options, add_screen_options, calibration_from
from training.recalibrate import CalibrateRun
from training.recalibrate import run as recalibrate


def parse_args(argv) -> CalibrateRun:
    parser = argparse.ArgumentParser(
        prog="digits calibrate", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    add_calibrate_options(parser)
    args = parser.parse_args(argv)
    return CalibrateRun(
        args.model, args.data, args.output, calibration_from(args), args.keep_shape_check
    )


def add_calibrate_options(parser) -> None:
    parser.add_argument("--model", required=True, help="a model folder from digits train")
    parser.add_argument("--data", required=True, help="the dataset folder the model was trained on")
    parser.add_argument("--output", required=True, help="the new model folder to write")
    add_calibration_options(parser)
    add_screen_options(parser)
    parser.add_argument(
        "--keep-shape-check",
        action="store_true",
        help="take the model's shape check as it is instead of training it again (minutes "
        "saved; the --shape-check-* options then change nothing)",
    )
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up logs")


def run(argv: list[str] | None = None) -> dict:
    job = parse_args(argv)
    metrics = recalibrate(job)
    fitted = metrics["calibration"]
    screen, accepted = fitted["screen"], fitted["validation_at_threshold"]
    print(
        f"{job.output}: review threshold {screen['threshold']:.6g} on {screen['ranking']} "
        f"(target error {fitted['target_error']:g}, rule {fitted['threshold_rule']}): "
        f"{accepted['accepted_share']:.1%} of the validation digits accepted (at most "
        f"{fitted['validation_ceiling']['accepted_share']:.1%} with no bound), the shape "
        f"check reviewing {screen['fitted'].get('shape_reviewed', 0.0):.1%} of them and "
        "their damaged copies; not blessed until digits evaluate judges it"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    return run_job("digits calibrate", run, argv)


if __name__ == "__main__":
    sys.exit(main())
