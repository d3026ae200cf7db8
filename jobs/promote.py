"""Promotion: copy a blessed model folder to the path the nightly scorer reads.

    digits promote --candidate out/retrain/model --to gs://BUCKET/digits/model

Only a candidate blessed by `digits evaluate` for its current model file is promoted
(exit status 5 otherwise, and nothing is touched: the retraining DAG marks the step
skipped). The copy is safe for a scorer starting meanwhile: the promoted folder's
blessing.json is removed first (a scorer then refuses the folder), every other file is
copied, and the candidate's blessing.json comes last. A --to folder holding anything but
a model folder's files (common.ownership.MODEL) is refused (exit status 2).
"""

from __future__ import annotations

import argparse
import sys

from common import files, ownership, schema
from model import serving

EXIT_NOT_BLESSED = 5


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="digits promote", description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", required=True, help="a model folder digits evaluate blessed")
    parser.add_argument("--to", required=True, help="the model folder the nightly scorer reads")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        blessing = serving.check_blessing(args.candidate)
    except serving.ModelRefused as refused:
        print(f"digits promote: not promoted: {refused}", file=sys.stderr)
        return EXIT_NOT_BLESSED
    fix = "Promote to a new or empty --to folder, or to one digits promote wrote."
    ownership.claim(args.to, ownership.MODEL, "digits promote", "--to", fix)
    names = [n for n in files.list_tree(args.candidate) if n != schema.BLESSING_FILE]
    names = [n for n in names if not n.startswith(("backup/", "logs/"))]
    names = [n for n in names if ownership.is_own(n, ownership.MODEL)]
    files.delete(files.join(args.to, schema.BLESSING_FILE), missing_ok=True)
    own = {n for n in files.list_tree(args.to) if ownership.is_own(n, ownership.MODEL)}
    stale = own - set(names)
    files.delete_all([files.join(args.to, n) for n in sorted(stale)])
    for name in names:
        files.copy(files.join(args.candidate, name), files.join(args.to, name))
    files.copy(
        files.join(args.candidate, schema.BLESSING_FILE), files.join(args.to, schema.BLESSING_FILE)
    )
    print(f"promoted {args.candidate} (sha256 {blessing['model_sha256'][:16]}) to {args.to}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except (ValueError, serving.ModelRefused) as error:
        print(f"digits promote: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
