"""The preprocessing pipeline: raw MNIST IDX files -> sharded, normalised TFRecords.

`preprocess.run(config, beam_args)` is the stage `digits preprocess` runs (jobs/preprocess.py
holds its options); the record schema it writes is `common.schema`.
"""

import sys

if sys.argv[:1] == ["-m"]:  # `python -m jobs.preprocess`: quiet before TensorFlow loads
    from common.startup import quiet_native_startup

    quiet_native_startup()

__version__ = "0.1.0"

DESCRIPTION = (
    "MNIST handwritten digits, normalised to [0, 1] float32 28x28 images, with a "
    "validation split carved from the last training images (digits preprocess)."
)


def root_cause(error: BaseException, wanted: type[BaseException]) -> str:
    """The message of the `wanted` error inside `error`, even when a runner re-wrapped it."""
    seen = error
    while seen is not None:
        if isinstance(seen, wanted):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    marker = f"{wanted.__name__}: "
    text = str(error)
    if marker in text:
        return text[text.rindex(marker) + len(marker) :].splitlines()[0]
    return f"{type(error).__name__}: {text}"
