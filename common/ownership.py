"""What each job may replace: the names of its own outputs, and a refusal for anything else.

A job that publishes into a folder first lists it (local or gs://). A file whose path,
relative to the folder, matches none of that job's patterns belongs to somebody else:
the job then refuses (exit status 2) before any work, naming the folder, a few of the
files and the fix, and it never deletes anything but files its patterns name.

    ownership.claim(output, ownership.SCORE_PARTITION, "digits score", fix="...")
    ownership.is_own("summary.json", ownership.SCORE_PARTITION)  # what a rerun may replace

Patterns are fnmatch patterns on the relative path, '/'-separated (`*` matches across
folders, so `saved_model/*` is everything under saved_model/).
"""

from __future__ import annotations

import fnmatch

from common import files, schema

# A scored partition (OUTPUT/dt=DATE, or OUTPUT itself without --date).
DRIFT_ACCEPTED_FILE = "_DRIFT_ACCEPTED"  # a person's word that an alarmed night is ordinary
SCORE_PARTITION = (
    schema.SUCCESS_FILE,
    schema.SUMMARY_FILE,
    schema.DRIFT_FILE,
    DRIFT_ACCEPTED_FILE,
    "predictions-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].jsonl",
    "predictions-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].csv",
    "review-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].jsonl",
    "review-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].csv",
    "errors-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].jsonl",
)
# The scorer's output folder: dated partitions of the above and its staging area.
SCORE_STAGING = "_staging"
SCORE_OUTPUT = (
    f"{SCORE_STAGING}/*",
    *(f"dt=[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/{name}" for name in SCORE_PARTITION),
)

# A dataset folder from digits preprocess.
DATASET_MARKER = ".digits-dataset"
DATASET = (
    DATASET_MARKER,
    schema.MANIFEST_FILE,
    "_facts.json",
    "dataset_info.json",
    "features.json",
    "image.image.json",
    f"{schema.DATASET_NAME}-*.tfrecord-*",
    f"{schema.NOT_A_DIGIT_FILES}-*.tfrecord",
    "excluded.jsonl",
    "beam-temp-excluded.jsonl-*",  # Beam's text sink's temporary folder
    ".beam-temp/*",
    ".beam-temp-*",
)

# A model folder from digits train (and the blessing.json digits evaluate writes there).
MODEL = (
    schema.KERAS_FILE,
    schema.METRICS_FILE,
    schema.HISTORY_FILE,
    schema.CALIBRATION_FILE,
    schema.BLESSING_FILE,
    schema.REFERENCE_FILE,
    "best.weights.h5",
    "*.tmp",
    "saved_model/*",
    "saved_model.*/*",
    "backup/*",
    "logs/*",
)

# A report folder from digits evaluate.
REPORT = (
    "evaluation.json",
    "report.md",
    "reliability.png",
    "confusion_matrix.png",
    "misclassified.png",
    "samples.png",
    "corruptions.png",
    "not_a_digit.png",
    "scans.png",
)


class ForeignFiles(ValueError):
    """A folder a job would publish into holds files it did not write."""


def is_own(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def foreign_files(folder: str, patterns) -> list[str]:
    """The files under `folder` (relative paths) that no pattern names; [] if none or absent."""
    return [name for name in files.list_tree(folder) if not is_own(name, patterns)]


def claim(folder: str, patterns, job: str, option: str = "--output", fix: str = "") -> None:
    """Refuses (ForeignFiles) when `folder` holds anything `job` did not write."""
    found = foreign_files(folder, patterns)
    if not found:
        return
    entries = sorted({name.split("/")[0] + ("/" if "/" in name else "") for name in found})
    shown = ", ".join(entries[:6]) + (f" and {len(entries) - 6} more" if len(entries) > 6 else "")
    raise ForeignFiles(
        f"{option} {folder} holds {len(found)} file(s) that {job} did not write ({shown}); "
        f"it only ever replaces its own outputs, so it refuses to write there. "
        f"{fix or 'Choose a new or empty folder.'}"
    )
