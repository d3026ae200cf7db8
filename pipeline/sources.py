"""Finds the four raw MNIST files: --source, then $MNIST_DIR, then the cache, then a download.

The download goes through Keras' `get_file` from the mirror TensorFlow Datasets uses
(override with $MNIST_MIRROR, e.g. an internal bucket or a `file://` folder) into the
cache ($DIGITS_CACHE, default ~/.cache/digits/mnist). Offline, put the files in a folder
and pass `--source DIR` or set `MNIST_DIR`.
"""

from __future__ import annotations

import os

from common import files
from pipeline.idx import MNIST_FILE_NAMES

DEFAULT_MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"


class SourceNotFound(FileNotFoundError):
    pass


def cache_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "digits", "mnist")
    return os.environ.get("DIGITS_CACHE", default)


def _missing(directory: str, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not files.exists(files.join(directory, n))]


def _download(directory: str, names: tuple[str, ...]) -> None:
    from keras.utils import get_file  # imported here: only the download path needs Keras

    mirror = os.environ.get("MNIST_MIRROR", DEFAULT_MIRROR).rstrip("/") + "/"
    os.makedirs(directory, exist_ok=True)
    for name in names:
        get_file(fname=name, origin=mirror + name, cache_dir=directory, cache_subdir=".")


def locate(source: str | None, names: tuple[str, ...] = MNIST_FILE_NAMES) -> str:
    """Returns the folder that holds all of `names`; see the module docstring for the order."""
    if source:
        missing = _missing(source, names)
        if missing:
            raise SourceNotFound(f"--source {source}: missing {', '.join(missing)}")
        return source
    env_dir = os.environ.get("MNIST_DIR")
    if env_dir:
        missing = _missing(env_dir, names)
        if missing:
            raise SourceNotFound(f"MNIST_DIR={env_dir}: missing {', '.join(missing)}")
        return env_dir
    cache = cache_dir()
    missing = _missing(cache, names)
    if not missing:
        return cache
    try:
        _download(cache, tuple(missing))
    except Exception as error:  # noqa: BLE001 - any download failure gets the same advice
        raise SourceNotFound(
            f"MNIST files not found and the download failed ({type(error).__name__}: "
            f"{error}). Put {', '.join(names)} in a folder and pass --source DIR or set "
            f"MNIST_DIR=DIR (or place them in the cache {cache})."
        ) from error
    return cache
