"""A model folder's files, read without TensorFlow: which file to load, the model's id,
its training metrics and its blessing (so `digits promote` starts in a second).
model.serving, which loads the model, re-exports these names.
"""

from __future__ import annotations

import os

from common import files, schema

REFUSED_SUFFIXES = (".h5", ".hdf5", ".pkl", ".pickle", ".joblib", ".dill", ".pt")


class ModelRefused(ValueError):
    pass


def keras_path(model: str) -> str:
    """A finished MODEL_DIR (from digits train) or a .keras file -> the .keras file to load."""
    if model.endswith(REFUSED_SUFFIXES):
        raise ModelRefused(
            f"--model {model}: refusing to load {os.path.splitext(model)[1]} files, whose "
            "loading can run arbitrary code; export the model in the native .keras format"
        )
    if model.endswith(".keras"):
        if not files.exists(model):
            raise ModelRefused(f"--model {model}: not found; run `digits train` first")
        return model
    if files.is_local(model) and os.path.exists(model) and not os.path.isdir(model):
        raise ModelRefused(f"--model {model}: expected a model folder or a .keras file")
    path = files.join(model, schema.KERAS_FILE)
    if not (files.exists(path) and files.exists(files.join(model, schema.METRICS_FILE))):
        raise ModelRefused(
            f"--model {model}: not a finished model folder (needs {schema.KERAS_FILE} and "
            f"{schema.METRICS_FILE}); run `digits train --output {model}` to finish it"
        )
    return path


def model_id(path: str) -> str:
    """The model's identifier in every prediction: SHA-256 (16 hex) of its .keras file."""
    return identifier(files.sha256_file(path))


def identifier(digest: str) -> str:
    """model_id's form of a .keras file's hex SHA-256."""
    return "sha256:" + digest[:16]


def training_metrics(model_dir: str) -> dict:
    """metrics.json of a finished model folder (what `digits evaluate` reports on)."""
    path = files.join(model_dir, schema.METRICS_FILE)
    if not files.exists(path):
        raise ModelRefused(
            f"--model {model_dir}: not a finished model folder (needs {schema.METRICS_FILE}); "
            f"run `digits train --output {model_dir}` to finish it"
        )
    return files.read_json(path)


def model_folder(model: str) -> str:
    """The folder holding a model's files: `model` itself, or the folder of a .keras file
    (where digits train writes calibration.json and reference.json, and digits evaluate
    blessing.json)."""
    if not model.endswith(".keras"):
        return model
    return model.rsplit("/", 1)[0] if "/" in model else "."


def calibration_path(model: str) -> str:
    """calibration.json beside the model's .keras file (in the model folder)."""
    return files.join(model_folder(model), schema.CALIBRATION_FILE)


def calibration_digest(model: str) -> str | None:
    """The SHA-256 of the model's calibration.json (None without one): a blessing vouches
    for the statuses it gives as well as for the network."""
    path = calibration_path(model)
    return files.sha256_file(path) if files.exists(path) else None


def _calibration_changed(blessing: dict, model: str) -> bool:
    """Whether calibration.json is not the one blessed: never for a blessing written before
    blessings recorded it, nor when it is gone (the loader says so, with the fix)."""
    if "calibration_sha256" not in blessing or (digest := calibration_digest(model)) is None:
        return False
    return blessing["calibration_sha256"] != digest


def check_blessing(model: str, allow_unblessed: bool = False) -> dict:
    """The model's blessing (digits evaluate writes it; evaluation.gate), checked to be for the
    model file and its calibration.json as they are now (a blessing written before it
    recorded the calibration vouches for the model file only). Refuses (ModelRefused) a
    missing blessing, one for another digest, or a "not blessed" verdict, unless
    `allow_unblessed`: then the returned record says so."""
    path = keras_path(model)
    blessing_path = files.join(model_folder(path), schema.BLESSING_FILE)
    digest = files.sha256_file(path)
    record = {"model_sha256": digest, "allowed_unblessed": allow_unblessed}
    if not files.exists(blessing_path):
        problem = f"no {schema.BLESSING_FILE}: run `digits evaluate --model {model} ...` first"
    else:
        blessing = files.read_json(blessing_path)
        record.update(blessed=blessing["blessed"], failed=blessing["failed"])
        record["baseline"] = blessing.get("baseline")
        if blessing["model_sha256"] != digest:
            problem = (
                f"{path} changed since it was blessed (blessed sha256 "
                f"{blessing['model_sha256'][:16]}, now {digest[:16]}); evaluate it again"
            )
        elif _calibration_changed(blessing, path):
            problem = (
                f"{calibration_path(path)} changed since the model was blessed (the gate "
                "judged the statuses it gives); evaluate it again"
            )
        elif not blessing["blessed"]:
            problem = f"not blessed: failed {', '.join(blessing['failed'])} (see {blessing_path})"
        else:
            return record
    if not allow_unblessed:
        raise ModelRefused(f"--model {model}: {problem}; --allow-unblessed scores anyway")
    record.update(blessed=False, problem=problem)
    return record
