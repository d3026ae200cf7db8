"""Promotion: copy a blessed model folder to the path the nightly scorer reads.

    digits promote --candidate out/retrain/model --to gs://BUCKET/digits/model

Only a candidate blessed by `digits evaluate` for its current model file is promoted
(exit status 5 otherwise, and nothing is touched: the retraining DAG marks the step
skipped). The copy is safe for a scorer starting meanwhile: the promoted folder's
blessing.json is removed first (a scorer then refuses the folder), every other file is
copied, and the candidate's blessing.json comes last. A --to folder holding anything but
a model folder's files (common.ownership.MODEL) is refused (exit status 2). The
copy is model/promotion.py; this module holds the options.
"""

from __future__ import annotations

import argparse
import sys

from common import errors
from jobs.exits import run_job
from model.promotion import NotBlessed, promote


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="digits promote", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--candidate", required=True, help="a model folder digits evaluate blessed")
    parser.add_argument("--to", required=True, help="the model folder the nightly scorer reads")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        blessing = promote(args.candidate, args.to)
    except NotBlessed as refused:
        print(f"digits promote: not promoted: {refused}", file=sys.stderr)
        return errors.NOT_BLESSED
    print(f"promoted {args.candidate} (sha256 {blessing['model_sha256'][:16]}) to {args.to}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job("digits promote", run, argv)


if __name__ == "__main__":
    sys.exit(main())
