"""Keras fits that say where they are: a line at most every `Steps.interval` seconds with
the epoch, the batches done of all of them and the time left (common.progress.Steps)."""

from __future__ import annotations

import keras

from common.progress import Steps


class KerasProgress(keras.callbacks.Callback):
    """Progress of a `model.fit` over all its epochs, resumed ones included."""

    def __init__(self, steps: Steps, unit: str = "epoch"):
        super().__init__()
        self.steps, self.unit = steps, unit
        self.epoch = self.first_epoch = 0

    def on_train_begin(self, logs=None):
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self.first_epoch is None:  # a resumed fit starts after its finished epochs
            self.first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        per_epoch = self.params.get("steps") or 0
        epochs = self.params.get("epochs") or 1
        if not per_epoch:
            return
        done = (self.epoch - self.first_epoch) * per_epoch + batch + 1
        total = (epochs - self.first_epoch) * per_epoch
        self.steps.tick(done, total, "batches", f"; {self.unit} {self.epoch + 1} of {epochs}")
