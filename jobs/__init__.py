"""The jobs users run: `digits preprocess | train | evaluate | score` (see jobs.cli)."""

import sys

if sys.argv[:1] == ["-m"]:  # `python -m jobs.JOB`: quiet before the job imports TensorFlow
    from common.startup import quiet_native_startup

    quiet_native_startup()
