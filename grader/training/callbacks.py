"""The Keras callbacks both trusted-training backends (train.py on TensorFlow, portable.py on
any Keras backend) give fit: the cost meter, and the per-epoch batch-norm statistics and
validation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from grader import cost
from grader.exercise import Profile
from grader.lazy import keras as keras_module

log = logging.getLogger(__name__)


def projection_meter(profile: Profile, steps_per_epoch: int, forward_images: int, host: str,
                     announce: cost.OnProjection, max_minutes: float | None):
    """Times the first training steps (after the one that compiles), projects the whole
    training from them, announces it, and stops the training when it is over the limit."""
    keras = keras_module()
    total = steps_per_epoch * profile.epochs
    timed = min(cost.TIMED_STEPS, total - cost.WARMUP_STEPS)

    class Meter(keras.callbacks.Callback):
        projection: cost.Projection | None = None
        refused = False

        def on_train_begin(self, logs=None) -> None:
            self.begun, self.marks = time.perf_counter(), []

        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if self.projection is not None or timed < 1:
                return
            self.marks.append(time.perf_counter())
            if len(self.marks) < cost.WARMUP_STEPS + timed:
                return
            first = self.marks[cost.WARMUP_STEPS - 1]
            rate = timed * profile.batch_size / max(self.marks[-1] - first, 1e-9)
            self.projection = cost.project(rate, timed, profile.epochs, steps_per_epoch,
                                           profile.batch_size, forward_images,
                                           first - self.begun, host)
            announce(self.projection)
            if cost.exceeds(self.projection, max_minutes):
                self.refused = True
                self.model.stop_training = True

    return Meter()


def validation_callback(recalibrate: Callable[[bool], None],
                        score: Callable[[], tuple[float, float]], every_epoch: bool):
    """After each epoch: precise BN statistics (``recalibrate(last)``), then validation
    (``score()``: loss and accuracy), recorded in the epoch's logs (the History callback runs
    after this one and keeps them). Logs one line per epoch. After the last epoch only the
    statistics: train() validates the final model itself. Without ``every_epoch`` (profiles
    where no one reads the curve), nothing before the last. Both backends use it."""
    keras = keras_module()

    class Validate(keras.callbacks.Callback):
        seconds = 0.0

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            last = epoch + 1 >= self.params.get("epochs", 0)
            # stopped by the cost limit: nothing to validate
            if self.model.stop_training or not (last or every_epoch):
                return
            started = time.perf_counter()
            logs = logs if logs is not None else {}
            # training never reads the statistics, so the final ones are what decides
            recalibrate(last)
            if not last:
                logs["val_loss"], logs["val_accuracy"] = score()
                log.info("epoch %d/%d: accuracy %.3f, val_accuracy %.3f", epoch + 1,
                         self.params.get("epochs", 0), logs.get("accuracy", 0.0),
                         logs["val_accuracy"])
            self.seconds += time.perf_counter() - started

    return Validate()
