"""The one wrapper that turns every job's errors into its exit status (common/errors.py
lists them): a refusal is a ValueError (the stages' own errors subclass it) and prints one
line naming the value and the fix, never a trace; so does a storage problem
(common.files)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from common.errors import BUSY, DONE, FAILED, REFUSED, Busy


def run_job(prog: str, run: Callable[[list[str] | None], int | None], argv=None, explain=None):
    """`run(argv)` with its errors as exit statuses and one line on standard error.
    `explain(error)`: the job's own account of a failure inside its pipeline (exit 1), or
    None to let the error through with its trace."""
    try:
        status = run(argv)
    except ValueError as error:
        return _say(prog, "error", error, REFUSED)
    except Busy as error:
        return _say(prog, "not started", error, BUSY)
    except Exception as error:
        from common import files

        if (problem := files.storage_problem(error)) is not None:
            return _say(prog, "error", problem, REFUSED)
        if isinstance(error, FileNotFoundError):
            return _say(prog, "error", error, REFUSED)
        if _is_data_loss(error):
            return _say(prog, "corrupt input", getattr(error, "message", error), FAILED)
        if explain is not None and (message := explain(error)) is not None:
            return _say(prog, "failed", message, FAILED)
        raise
    return status if isinstance(status, int) else DONE


def _is_data_loss(error: Exception) -> bool:
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(error, tensorflow.errors.DataLossError)


def _say(prog: str, what: str, error, status: int) -> int:
    print(f"{prog}: {what}: {error}", file=sys.stderr)
    return status
