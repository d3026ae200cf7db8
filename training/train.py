"""Training: streams a preprocessed dataset into the CNN, exports it and calibrates it, so
that the model folder it ends with is servable.

    metrics = training.train.run(TrainRun(data=..., output=..., recipe=recipe("seed")))

inputs -> callbacks (resume included) -> fit -> choose the epoch -> export -> calibrate
(training.calibrate) -> metrics.json, last: a model folder without metrics.json is not a
finished model. Killed midway, the same run resumes from the last finished epoch (Keras
BackupAndRestore in MODEL_DIR/backup). A gs:// output is trained in a local folder,
synced to the bucket after every epoch and published at the end (training.folder).

Precision: `auto` trains in mixed bfloat16 on a CPU that computes in bfloat16 (Intel AMX,
Xeon 4th generation and later: `seed` about 4x faster there; AVX-512's bfloat16, AMD Zen 4
and later: `seed`'s epochs 2x faster on a Zen 5 EPYC) and in float32 elsewhere; `mixed` is
float16 on a GPU and bfloat16 on a CPU. Whatever the training precision, the weights are
float32 and the model that is exported, evaluated and calibrated computes in float32, so
serving never depends on it. On a GPU machine the input is prefetched onto the GPU, XLA is
available, and several GPUs train under MirroredStrategy; on a CPU `--xla` is ignored
(with a warning).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import tensorflow as tf

from common import files, ownership, schema
from common.progress import Steps
from model import calibration, cnn, damage, data, export, outliers, serving
from model.configs import TrainConfig
from training import calibrate as calibrate_step
from training import folder
from training.calibrate import CalibrationConfig
from training.progress import KerasProgress

BEST_WEIGHTS = "best.weights.h5"
RESUME_FILES = (schema.HISTORY_FILE, BEST_WEIGHTS)  # beside Keras' backup/
log = logging.getLogger("digits.train")
# Keras warns that fit's shuffle does not apply to a tf.data input: ours shuffles itself.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")


@dataclass(frozen=True)
class TrainRun:
    """One `digits train`: where from, where to, the recipe and the calibration to fit."""

    data: str
    output: str
    recipe: TrainConfig
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    precision: str = "auto"  # PRECISIONS
    xla: bool = False


@dataclass(frozen=True)
class DevicePlan:
    """How to use the machine's accelerators; decided once, from the GPU list and flags."""

    strategy: str  # "default" | "mirrored"
    prefetch_device: str | None
    policy: str  # the Keras dtype policy training builds under: float32 | mixed_*
    xla: bool
    notes: tuple[str, ...] = ()


PRECISIONS = ("auto", "float32", "mixed")


# Linux's names for the CPU's bfloat16 arithmetic: Intel AMX's tiles (Xeon Sapphire Rapids
# and later) and AVX-512's bfloat16 dot products (AMD Zen 4 and later, Intel Cooper Lake).
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_bfloat16_units(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU computes in bfloat16 itself (BFLOAT16_FLAGS); False where unknown."""
    try:
        with open(cpuinfo) as handle:
            flags = {f for line in handle if line.startswith("flags") for f in line.split()}
    except OSError:
        return False
    return any(flag in flags for flag in BFLOAT16_FLAGS)


def plan_devices(
    gpus: list[str], precision: str, xla: bool, bfloat16_units: bool | None = None
) -> DevicePlan:
    """GPUs, --precision and --xla -> the plan; `bfloat16_units`: the CPU's (None: ask it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if not gpus:
        if bfloat16_units is None:
            bfloat16_units = cpu_has_bfloat16_units()
        mixed = precision == "mixed" or (precision == "auto" and bfloat16_units)
        policy = "mixed_bfloat16" if mixed else "float32"
        notes = ("--xla ignored: no GPU",) if xla else ()
        return DevicePlan("default", None, policy, False, notes)
    policy = "mixed_float16" if precision == "mixed" else "float32"
    if len(gpus) == 1:
        return DevicePlan("default", "/gpu:0", policy, xla)
    # Several GPUs: MirroredStrategy distributes (and prefetches) each batch itself.
    return DevicePlan("mirrored", None, policy, xla)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras builds layers under `name` inside the block; the policy before it after."""
    before = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def make_strategy(plan: DevicePlan) -> tf.distribute.Strategy:
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class EpochLog(keras.callbacks.Callback):
    """Appends each epoch's metrics, wall time and throughput to history.jsonl."""

    def __init__(self, path: str, examples: int):
        super().__init__()
        self.path, self.examples = path, examples

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        entry.update(
            seconds=round(seconds, 2), examples_per_second=round(self.examples / seconds, 1)
        )
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def read_history(path: str) -> list[dict]:
    """Per-epoch entries; an epoch logged twice (killed between log and backup) counts once."""
    if not os.path.exists(path):
        return []
    by_epoch = {}
    with open(path) as handle:
        for line in handle:
            if line.strip():
                entry = json.loads(line)
                by_epoch[entry["epoch"]] = entry
    return [by_epoch[e] for e in sorted(by_epoch)]


def readable_weights(path: str) -> bool:
    import h5py

    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False


def loss(config: TrainConfig) -> keras.losses.Loss:
    """The notebook's categorical cross-entropy, with the recipe's label smoothing."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)


def compile_model(config: TrainConfig, plan: DevicePlan, steps_per_epoch: int) -> keras.Model:
    model = cnn.build(config)
    learning_rate = config.learning_rate
    if config.one_cycle:  # warm up to the peak for one epoch, then cosine down to zero
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 10,
            warmup_target=config.learning_rate,
            warmup_steps=steps_per_epoch,
            decay_steps=max(1, steps_per_epoch * (config.epochs - 1)),  # --epochs 1 too
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss(config),  # one per member: their sum is minimised, each learns on its own
        metrics=["accuracy"] if config.members == 1 else [["accuracy"]] * config.members,
        jit_compile=plan.xla,
    )
    return model


def for_members(dataset: tf.data.Dataset, members: int) -> tf.data.Dataset:
    """Each batch's targets once per member (its loss weights, if any, serve them all)."""
    if members == 1:
        return dataset
    return dataset.map(lambda images, targets, *weights: (images, (targets,) * members, *weights))


def prepare_output(model_dir: str) -> bool:
    """Returns True when resuming; a finished model's folder is retrained from scratch."""
    os.makedirs(model_dir, exist_ok=True)
    backup = os.path.join(model_dir, "backup")
    if os.path.exists(backup):
        return True
    # metrics.json first: from then on the folder is not a finished model.
    for name in (schema.METRICS_FILE, schema.HISTORY_FILE, BEST_WEIGHTS, schema.CALIBRATION_FILE):
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            os.remove(path)
    return False


def train(
    config: TrainConfig,
    dataset: data.LocalDataset,
    model_dir: str,
    plan: DevicePlan,
    sync: keras.callbacks.Callback | None = None,
    calibrate: CalibrationConfig = CalibrationConfig(),  # noqa: B008 (frozen)
) -> dict:
    """inputs -> callbacks (resume included) -> fit -> choose epoch -> export -> calibrate
    -> metrics. `model_dir` is local; `sync` runs after each epoch's backup
    (training.folder)."""
    steps = Steps("digits train")
    keras.utils.set_random_seed(config.seed)
    splits = make_inputs(config, dataset, plan)
    started = time.perf_counter()
    model, history, chosen = fit(config, dataset, splits, model_dir, plan, sync, steps)
    seconds = time.perf_counter() - started
    steps.start("the chosen epoch on the validation and test splits; export")
    results = evaluate_splits(model, splits)
    export.save_keras(model, model_dir)
    with dtype_policy(plan.policy):  # the shape check trains under the same policy
        fitted = calibrate_step.fit(model, model_dir, dataset.path, calibrate, steps)
    metrics = {
        **record(config, dataset, model, plan),
        "chosen_epoch": chosen,
        **results,
        "epochs": history,
        "train_seconds_this_run": round(seconds, 1),
        "model_id": serving.model_id(os.path.join(model_dir, schema.KERAS_FILE)),
        "calibration": fitted,
    }
    write_metrics(model_dir, metrics)
    return metrics


def fit(
    config: TrainConfig,
    dataset: data.LocalDataset,
    splits: dict[str, tf.data.Dataset],
    model_dir: str,
    plan: DevicePlan,
    sync: keras.callbacks.Callback | None,
    steps: Steps,
) -> tuple[keras.Model, list[dict], int]:
    """The recipe's epochs (resumed where a killed run stopped) -> the chosen epoch's
    weights in a float32 model of one output (several members: their mean), the per-epoch
    history and the chosen epoch."""
    n_train = data.split_size(dataset.manifest, "train")
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    with make_strategy(plan).scope(), dtype_policy(plan.policy):
        model = compile_model(config, plan, steps_per_epoch)
    callbacks = make_callbacks(model_dir, n_train, config.epochs) + ([sync] if sync else [])
    callbacks.append(KerasProgress(steps, "epoch"))
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    precision = "" if plan.policy == "float32" else f" in {plan.policy.replace('_', ' ')}"
    steps.start(f"training {config.model}, {epochs} of {n_train:,} digits{precision}")
    train, validation = (for_members(splits[s], config.members) for s in ("train", "validation"))
    model.fit(train, validation_data=validation, epochs=config.epochs, callbacks=callbacks,
              verbose=2)  # fmt: skip
    history = read_history(os.path.join(model_dir, schema.HISTORY_FILE))
    chosen = choose_epoch(model, config, history, os.path.join(model_dir, BEST_WEIGHTS))
    return to_export(in_float32(model, config, plan, steps_per_epoch), config), history, chosen


def record(config: TrainConfig, dataset: data.LocalDataset, model, plan: DevicePlan) -> dict:
    """What metrics.json says the model came from: recipe, data, size, devices."""
    return {
        "model": config.model,
        "config": asdict(config),
        "data": dataset.source,
        "dataset_manifest_sha256": files.sha256_file(
            os.path.join(dataset.path, schema.MANIFEST_FILE)
        ),
        "parameters": int(model.count_params()),
        "device": asdict(plan),
    }


def make_inputs(
    config: TrainConfig, dataset: data.LocalDataset, plan: DevicePlan
) -> dict[str, tf.data.Dataset]:
    """The three splits as (images, one-hot labels) batches; only train is shuffled, and
    only train gets the recipe's not-a-digit images (outlier exposure) and damaged digits."""
    pools = []
    negatives = outlier_pool(config, dataset)
    if negatives is not None:
        per_batch = round(config.batch_size * config.outlier_share)
        pools.append(data.Pool.not_digits(negatives, per_batch))
    if config.damage_share > 0:
        per_batch = round(config.batch_size * config.damage_share)
        pools.append(data.Pool.digits(*damage_pool(config, dataset), per_batch))
    labelled = len(data.sources(dataset.manifest)) > 1 and config.labelled_weight != 1
    train_extra = {"pools": tuple(pools)}
    if labelled:
        train_extra["labelled_weight"] = config.labelled_weight
    return {
        split: data.supervised(
            dataset.path,
            split,
            config.batch_size,
            training=split == "train",
            seed=config.seed,
            shuffle_buffer=config.shuffle_buffer,
            manifest=dataset.manifest,
            verify=not dataset.verified,
            device=plan.prefetch_device,
            **(train_extra if split == "train" else {}),
        )
        for split in schema.SPLITS
    }


def damage_pool(config: TrainConfig, dataset: data.LocalDataset):
    """model.damage's damaged digits, as many as damage_share of the training split, made
    from its MNIST digits with their labels."""
    records = data.records(dataset.path, "train", 1024, manifest=dataset.manifest, verify=False)
    digits, labels = [], []
    for batch in records:
        mnist = batch[schema.SOURCE_KEY].numpy() == schema.MNIST_SOURCE.encode()
        digits.append(data.to_pixels(batch[schema.IMAGE_KEY].numpy()[mnist]))
        labels.append(batch[schema.LABEL_KEY].numpy()[mnist])
    count = max(1, round(data.split_size(dataset.manifest, "train") * config.damage_share))
    return damage.pool(np.concatenate(digits), np.concatenate(labels), count, config.seed)


def outlier_pool(config: TrainConfig, dataset: data.LocalDataset):
    """model.outliers' images, made from the first 5,000 training digits, and the labelled
    folders' not-a-digit training images (None: no outlier exposure)."""
    if config.outlier_share <= 0:
        return None
    n_train = data.split_size(dataset.manifest, "train")
    digits = data.split_pixels(dataset.path, "train", 5000, manifest=dataset.manifest, verify=False)
    made = outliers.pool(digits, max(1, round(n_train * config.outlier_share)), config.seed)
    given = data.not_a_digit_pixels(dataset.path, "train", dataset.manifest, verify=False)
    return np.concatenate([made, given])


def make_callbacks(model_dir: str, n_train: int, epochs: int) -> list[keras.callbacks.Callback]:
    """History log, best-epoch weights, TensorBoard and resumable backups.

    In a folder with a backup (a killed run), training resumes after the last finished
    epoch, and the best-epoch choice carries on from the epochs already logged.
    """
    resumed = prepare_output(model_dir)
    history_path = os.path.join(model_dir, schema.HISTORY_FILE)
    best_path = os.path.join(model_dir, BEST_WEIGHTS)
    best = keras.callbacks.ModelCheckpoint(
        # Validation loss, not accuracy: on 5,000 images accuracy moves in steps of 0.02%
        # and ties often; the loss ranks epochs more steadily.
        best_path,
        monitor="val_loss",
        mode="min",
        save_best_only=True,
        save_weights_only=True,
    )
    if resumed:
        earlier = read_history(history_path)
        print(f"Resuming {model_dir} after epoch {len(earlier)} of {epochs}", flush=True)
        if readable_weights(best_path):
            best.best = min((e["val_loss"] for e in earlier), default=best.best)
        elif os.path.exists(best_path):
            os.remove(best_path)  # killed while being written: start the choice afresh
    return [
        EpochLog(history_path, n_train),
        best,
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
        # Two copies: a kill while one is being written leaves the other to resume from.
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup"), double_checkpoint=True),
    ]


def choose_epoch(model: keras.Model, config: TrainConfig, history: list[dict], best: str) -> int:
    """The epoch whose weights are kept: the last, or the lowest validation loss (never test)."""
    if not config.keep_best_on_validation:
        return history[-1]["epoch"]
    model.load_weights(best)
    return min(history, key=lambda e: e["val_loss"])["epoch"]


def in_float32(
    model: keras.Model, config: TrainConfig, plan: DevicePlan, steps_per_epoch: int
) -> keras.Model:
    """The trained weights (always float32) in the same network built to compute in
    float32: what is exported, evaluated and calibrated never depends on --precision."""
    if plan.policy == "float32":
        return model
    with dtype_policy("float32"):
        copy = compile_model(config, plan, steps_per_epoch)
    copy.set_weights(model.get_weights())
    return copy


def to_export(model: keras.Model, config: TrainConfig) -> keras.Model:
    """The model every later step gets: one output (the members' mean), with the recipe's
    second look at unsure digits, compiled for evaluation."""
    exported = model if config.members == 1 else cnn.averaged(model)
    if config.second_look_below > 0:
        exported = cnn.with_second_look(exported, config.second_look_below)
    if exported is not model:
        exported.compile(loss=loss(config), metrics=["accuracy"])
    return exported


def evaluate_splits(model: keras.Model, splits: dict) -> dict[str, dict]:
    return {
        split: dict(
            zip(["loss", "accuracy"], map(float, model.evaluate(ds, verbose=0)), strict=True)
        )
        for split, ds in splits.items()
        if split != "train"
    }


def write_metrics(model_dir: str, metrics: dict) -> None:
    """metrics.json, last and atomically: from now on the folder is a finished model."""
    path = os.path.join(model_dir, schema.METRICS_FILE)
    with open(path + ".tmp", "w") as handle:
        json.dump(metrics, handle, indent=2)
    os.replace(path + ".tmp", path)


def warn_if_nothing_accepted(fitted: dict, calibrate) -> None:
    if fitted["screen"]["threshold"] != calibration.ACCEPT_NOTHING:
        return
    ceiling = fitted["validation_ceiling"]["accepted_share"]
    print(
        f"digits train: warning: no review threshold meets --target-error "
        f"{calibrate.target_error} on the validation split (--threshold-rule "
        f"{calibrate.threshold_rule}): the scorer will send every digit to review. With no "
        f"bound, a threshold could accept {ceiling:.1%} of the validation digits at that "
        "error. Raise --target-error, make the validation split larger (digits preprocess "
        "--validation-size) or use --threshold-rule point"
        + ("." if ceiling > 0 else "; this network is wrong too surely: train a better one."),
        file=sys.stderr,
    )


def run(job: TrainRun) -> dict:
    """devices -> refuse a foreign --output -> train (locally, synced to a bucket) ->
    publish; returns metrics.json's content."""
    plan = plan_devices(
        [d.name for d in tf.config.list_physical_devices("GPU")], job.precision, job.xla
    )
    for note in plan.notes:
        log.warning(note)
    files.check_reachable(job.output)
    ownership.claim(
        job.output,
        ownership.MODEL,
        "digits train",
        fix="Train into a new or empty --output folder (or one an earlier digits train wrote).",
    )
    with data.local_dataset(job.data) as dataset, folder.working_folder(job.output) as local:
        remote = not files.is_local(job.output)
        sync = folder.SyncToBucket(local, job.output, RESUME_FILES) if remote else None
        metrics = train(job.recipe, dataset, local, plan, sync, job.calibration)
        if remote:
            folder.publish(local, job.output)
    warn_if_nothing_accepted(metrics["calibration"], job.calibration)
    return metrics
