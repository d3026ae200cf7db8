"""Review job: a web page for the people who answer one scored night's review queue.

    digits review --scores out/scores/dt=2026-11-25 --labels out/labels
    digits review --scores gs://BUCKET/digits/scores/dt=2026-11-25 --labels labels --port 8081

It prints its URL when it is ready; the page opens on the first unanswered input and
takes one key per answer (0-9 the digit, n not a digit, s skip, u undo). Every answer is
in --labels the moment it is given: LABELS/<digit>/<input_sha256>.<ext> and
LABELS/not_a_digit/... hold the original bytes, LABELS/answers.jsonl who answered what
and when (review/answers.py). It listens on 127.0.0.1 unless --host says otherwise and
serves only that partition's inputs (review/server.py). Ctrl-C stops it; started again,
it resumes where the answers stopped.
"""

from __future__ import annotations

import argparse
import sys

from jobs.exits import run_job
from review import queue, server
from review.answers import Answers


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="digits review", description=__doc__.split("\n\n")[0], allow_abbrev=False
    )
    parser.add_argument("--scores", required=True, help="a partition digits score finished")
    parser.add_argument("--labels", required=True, help="local folder for the answers")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0: any free one)")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    review = server.Review(queue.load(args.scores), Answers(args.labels))
    httpd = server.serve(review, args.host, args.port)
    host, port = httpd.server_address[:2]
    print(f"Reviewing {len(review.night.items)} inputs of {args.scores}: http://{host}:{port}/")
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job("digits review", run, argv)


if __name__ == "__main__":
    sys.exit(main())
