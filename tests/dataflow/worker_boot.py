"""What a Dataflow worker container's boot does, for the stand-in: start Beam's SDK harness.

Run with the clean environment's python, in an empty folder, in isolated mode. When a GCS
emulator stands in for Cloud Storage, Beam is told there are no Google credentials to
fetch (a real worker gets them from its VM).
"""

import os
import sys

if os.environ.get("STORAGE_EMULATOR_HOST"):
    from apache_beam.internal.gcp import auth

    auth._Credentials._credentials_init = True
    auth._Credentials._credentials = None

from apache_beam.runners.worker import sdk_worker_main  # noqa: E402

sdk_worker_main.main(sys.argv)
