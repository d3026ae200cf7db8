#!/usr/bin/env bash
# Nightly batch scoring, for cron (see crontab in this folder and the README).
#
# Scores yesterday's images (or DATE=YYYY-MM-DD) into $DIGITS_OUTPUT/dt=DATE. Safe to run
# again: a date already scored with the same inputs and model is skipped; a run killed
# midway leaves no _SUCCESS and the next run redoes it. Exit status (docs/operations.md):
# 0 ok, 2 refused (bad configuration, an output folder holding files the job did not
# write, a model not blessed or changed since), 3 too many inputs failed, 4 the drift
# alarm (3 and 4 after the outputs are written), 75 another run holds the lock (this
# wrapper's, or the job's own on the partition), other: the job crashed.
#
# Settings (environment, or /etc/default/digits-nightly):
#   DIGITS_HOME    checkout with .venv (make setup)         default: this script's repo
#   DIGITS_MODEL   model folder, evaluated and blessed      required
#   DIGITS_INPUT   input glob; may contain {date}           required, e.g. /data/in/{date}/*.png
#   DIGITS_OUTPUT  output folder (local or gs://)           required
#   DIGITS_ARGS    extra flags (--max-error-rate 0.01, --runner DataflowRunner ...)
set -euo pipefail
[ -f /etc/default/digits-nightly ] && . /etc/default/digits-nightly
DIGITS_HOME="${DIGITS_HOME:-$(cd "$(dirname "$0")/../.." && pwd)}"
DATE="${DATE:-$(date -u -d yesterday +%F)}"
: "${DIGITS_MODEL:?set DIGITS_MODEL to a model folder from digits train}"
: "${DIGITS_INPUT:?set DIGITS_INPUT to the images to score, e.g. /data/in/{date}/*.png}"
: "${DIGITS_OUTPUT:?set DIGITS_OUTPUT to the output folder}"
INPUT="${DIGITS_INPUT//\{date\}/$DATE}"
LOCK="${TMPDIR:-/tmp}/digits-nightly.lock"

exec 9>"$LOCK"
if ! flock -n 9; then
  echo "$(date -u +%FT%TZ) digits-nightly: another run holds $LOCK; not starting" >&2
  exit 75
fi
echo "$(date -u +%FT%TZ) digits-nightly: scoring $INPUT for $DATE"
# shellcheck disable=SC2086  # DIGITS_ARGS is a list of flags
"$DIGITS_HOME/.venv/bin/digits" score --model "$DIGITS_MODEL" --input "$INPUT" \
  --output "$DIGITS_OUTPUT" --date "$DATE" ${DIGITS_ARGS:-}
