"""`digits`: one console script, a subcommand per job.

    digits preprocess --output out/data
    digits train --data out/data --output out/model
    digits calibrate --model out/model --data out/data --output out/model-b --target-error 0.005
    digits evaluate --data out/data --model out/model --output out/report
    digits score --model out/model --input 'images/*.png' --output out/scores
    digits promote --candidate out/retrain/model --to out/model
    digits review --scores out/scores/dt=2026-11-25 --labels out/labels

`digits JOB --help` lists each job's options; every job also runs as
`python -m <package>.<module>` with the same flags.
"""

from __future__ import annotations

import importlib
import logging
import sys

from common.startup import quiet_native_startup

JOBS = {
    "preprocess": "jobs.preprocess",
    "train": "jobs.train",
    "calibrate": "jobs.calibrate",
    "evaluate": "jobs.evaluate",
    "score": "jobs.score",
    "promote": "jobs.promote",
    "review": "jobs.review",
}


def quiet_startup(argv: list[str]) -> None:
    """Hides start-up noise that is not about the user's job (`--verbose` shows it):
    TensorFlow's native start-up lines (common.startup) and Beam's note that optional
    BigQuery client libraries are missing."""
    quiet_native_startup(argv)
    if "--verbose" not in argv:
        logging.getLogger().addFilter(
            lambda record: "apitools not found" not in record.getMessage()
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_startup(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in JOBS:
        print(__doc__.strip())
        print("\njobs: " + ", ".join(JOBS))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(JOBS[argv[0]])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
