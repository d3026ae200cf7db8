"""Every job's exit statuses, and what the stages raise besides ValueError (a refusal), so
that jobs/exits.py gives every job the same status for the same trouble without the stages
knowing about jobs.

    0   done
    1   failed while working (a corrupt input shard, a pipeline stage that broke)
    2   refused before any work: an option it does not know, bad input, an --output
        holding files it did not write, an unblessed or uncalibrated model, storage it
        cannot reach
    3   (score) more than --max-error-rate of the inputs failed, after writing everything
    4   (score) the drift alarm, after writing everything
    5   (promote) the candidate is not blessed: nothing promoted
    75  (score) another run is scoring the same partition: not started
"""

DONE = 0
FAILED = 1
REFUSED = 2
TOO_MANY_ERRORS = 3
DRIFT = 4
NOT_BLESSED = 5
BUSY = 75  # the cron wrapper's lock says 75 too


class Busy(RuntimeError):
    """Someone else is doing this same work now (exit 75: not started)."""
