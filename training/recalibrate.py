"""A trained model's calibration fitted again, into a new model folder: another target
error, ranking or input-check budget without training the network again.

    metrics = training.recalibrate.run(CalibrateRun(model=..., data=..., output=...))

check the source and the output -> copy the network -> fit (training.calibrate, exactly
what `digits train` fits) -> metrics.json, last. The source folder is only read: a
promoted or blessed model keeps the calibration it was judged with, and the new folder
holds no blessing until `digits evaluate` judges it. Only the dataset the model was
trained on is taken (the same manifest): another split's validation digits may be ones
the network learnt from, and a threshold fitted on them would promise an error it does
not keep.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from common import files, ownership, schema
from common.progress import Steps
from model import data, outliers, serving
from training import calibrate, folder
from training.calibrate import CalibrationConfig
from training.train import warn_if_nothing_accepted, write_metrics

# metrics.json's record of where a recalibrated model's network came from.
LINEAGE = "recalibrated_from"
COPIED = (schema.KERAS_FILE, schema.HISTORY_FILE)  # the network and how it was trained


@dataclass(frozen=True)
class CalibrateRun:
    """One `digits calibrate`: the source model folder, its dataset, the new folder."""

    model: str
    data: str
    output: str
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    keep_shape_check: bool = False  # the source's shape check, not trained again


def run(job: CalibrateRun) -> dict:
    """Returns the new folder's metrics.json content (see the module doc)."""
    trained = check_source(job)
    check_output(job)
    kept = kept_shape_check(job.model) if job.keep_shape_check else None
    model = serving.load_model(job.model)
    with data.local_dataset(job.data) as dataset, folder.working_folder(job.output) as local:
        clear(local)
        for name in COPIED:
            if files.exists(source := files.join(job.model, name)):
                files.copy(source, files.join(local, name))
        fitted = calibrate.fit(
            model, local, dataset.path, job.calibration, Steps("digits calibrate"), kept
        )
        metrics = {
            **trained,
            "calibration": fitted,
            LINEAGE: {"model": job.model, "model_id": trained.get("model_id"), "data": job.data},
        }
        write_metrics(local, metrics)
        if not files.is_local(job.output):
            folder.publish(local, job.output)
    warn_if_nothing_accepted(fitted, job.calibration)
    return metrics


def check_source(job: CalibrateRun) -> dict:
    """The source's metrics.json, once it is a finished model folder trained on --data."""
    if job.model.endswith(".keras"):
        raise serving.ModelRefused(
            f"--model {job.model}: give the model folder digits train wrote (it holds the "
            "dataset the network was trained on), not its .keras file"
        )
    trained = serving.training_metrics(job.model)
    manifest = files.join(job.data, schema.MANIFEST_FILE)
    if not files.exists(manifest):
        raise data.DatasetError(f"--data {job.data}: no {schema.MANIFEST_FILE}; give the "
                                "dataset folder digits preprocess wrote")  # fmt: skip
    if files.sha256_file(manifest) != trained.get("dataset_manifest_sha256"):
        raise data.DatasetError(
            f"--data {job.data} is not the dataset --model {job.model} was trained on "
            f"({trained.get('data')}, by its metrics.json): its validation digits may be ones "
            "the network learnt from. Give the dataset it was trained on, or train again."
        )
    return {key: value for key, value in trained.items() if key != LINEAGE}


def kept_shape_check(model: str) -> dict:
    """The source's shape check weights (--keep-shape-check), once they were trained against
    the not-a-digit kinds a shape check trains against now (model.outliers)."""
    saved = files.read_json(files.join(model, schema.CALIBRATION_FILE))
    kinds = saved.get("fitted", {}).get("shape_check_kinds")
    if not saved.get("shape_check"):
        raise ValueError(f"--keep-shape-check: --model {model} has no shape check to keep; "
                         "leave the option out to train one")  # fmt: skip
    if kinds != list(outliers.SHAPE_CHECK_ROUND):
        raise ValueError(
            f"--keep-shape-check: the shape check of --model {model} was trained against "
            f"other not-a-digit images ({', '.join(kinds) if kinds else 'kinds not recorded'}; "
            f"now {', '.join(outliers.SHAPE_CHECK_ROUND)}); leave the option out to train it "
            "again"
        )
    return saved["shape_check"]


def check_output(job: CalibrateRun) -> None:
    """Refuses the source folder itself, another job's files, a model digits calibrate did
    not write, a training's resume state and a judged (blessing.json) model: only its own
    earlier, unjudged output is replaced."""
    if _same_folder(job.output, job.model):
        raise ValueError(
            f"--output {job.output} is the --model folder: digits calibrate writes a new model "
            "folder and never changes the one it reads. Choose a new --output."
        )
    files.check_reachable(job.output)
    fix = "Choose a new or empty --output folder (or one an earlier digits calibrate wrote)."
    ownership.claim(job.output, ownership.MODEL, "digits calibrate", fix=fix)
    names = files.list_tree(job.output)
    metrics = files.join(job.output, schema.METRICS_FILE)
    finished = schema.METRICS_FILE in names and LINEAGE not in files.read_json(metrics)
    if finished or any(name.startswith(folder.BACKUP_DIR + "/") for name in names):
        raise ValueError(
            f"--output {job.output} holds a model (or a training's resume state) digits train "
            f"wrote; {fix}"
        )
    if schema.BLESSING_FILE in names:
        raise ValueError(
            f"--output {job.output} holds a model digits evaluate judged ({schema.BLESSING_FILE}"
            "; perhaps the one the scorer reads): digits calibrate never replaces a judged "
            "model. Choose a new --output."
        )


def clear(local: str) -> None:
    """An earlier run's files in the local folder go, metrics.json first: until the end the
    folder is not a finished model. check_output has made sure they are all digits
    calibrate's."""
    os.makedirs(local, exist_ok=True)
    if os.path.exists(metrics := os.path.join(local, schema.METRICS_FILE)):
        os.remove(metrics)
    for entry in os.scandir(local):
        shutil.rmtree(entry.path) if entry.is_dir() else os.remove(entry.path)


def _same_folder(a: str, b: str) -> bool:
    if files.is_local(a) and files.is_local(b):
        return os.path.realpath(a) == os.path.realpath(b)
    return a.rstrip("/") == b.rstrip("/")
