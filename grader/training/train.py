"""Trusted training: the rebuilt architecture, fresh seeded weights, the grader's data and budget.

Nothing from the student's kernel reaches this module but the checked model config.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from grader import cost
from grader.errors import GradingError
from grader.exercise import Profile
from grader.lazy import keras as keras_module, tensorflow
from grader.training.batchnorm import (BN_BATCHES, BN_EPOCH_BATCHES, batch_norm_forward,
                                       recalibrate_batch_norm)
from grader.training.callbacks import projection_meter, validation_callback
from grader.training.data import PARALLEL_CALLS, Split, fixed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    confusion: list[list[int]]          # rows: true class, columns: predicted class
    per_class_accuracy: list[float]
    predictions: list[int] = field(repr=False)


@dataclass(frozen=True)
class Training:
    history: dict[str, list[float]]     # per epoch: loss, accuracy, val_loss, val_accuracy
    validation: Evaluation
    test: Evaluation | None
    device: str
    device_kind: str
    precision: str
    seed: int
    deterministic: bool                 # TensorFlow op determinism was on
    epochs: int
    train_images: int
    val_images: int
    seconds: float                      # wall time of fit, evaluation included
    images_per_second: float            # training images per second of fit
    validation_seconds: float = 0.0     # of ``seconds``: per-epoch BN statistics and validation
    projection: cost.Projection | None = None  # speed of the first steps, projected duration
    backend: str = "tensorflow"         # Keras's backend (grader.training.backend)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("validation", "test"):
            if out[key] is not None:
                out[key].pop("predictions")
        return out


def _augment(images, seed: int):
    """Random flips, crops (75-100% of the side) and brightness/contrast jitter, per image."""
    tf = tensorflow()

    batch = tf.shape(images)[0]
    size = tf.shape(images)[1:3]
    images = tf.image.random_flip_left_right(images, seed=seed)
    scale = tf.random.uniform([batch, 1], 0.75, 1.0, seed=seed + 1)
    offset = tf.random.uniform([batch, 2], 0.0, 1.0, seed=seed + 2) * (1.0 - scale)
    boxes = tf.concat([offset, offset + scale], axis=1)
    images = tf.image.crop_and_resize(images, boxes, tf.range(batch), size)
    contrast = tf.random.uniform([batch, 1, 1, 1], 0.8, 1.2, seed=seed + 3)
    brightness = tf.random.uniform([batch, 1, 1, 1], -0.08, 0.08, seed=seed + 4)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * contrast + mean + brightness, 0.0, 1.0)


def make_dataset(split: Split, classes: int, profile: Profile, training: bool):
    """uint8 arrays → batches of float [0, 1] images and one-hot labels, as the codelab feeds."""
    tf = tensorflow()

    dataset = fixed(tf.data.Dataset.from_tensor_slices((split.images, split.labels)))
    if training:
        dataset = dataset.shuffle(len(split.labels), seed=profile.seed,
                                  reshuffle_each_iteration=True)
    dataset = dataset.batch(profile.batch_size, drop_remainder=training)

    def prepare(images, labels):
        images = tf.cast(images, tf.float32) / 255.0
        if training and profile.augment:
            images = _augment(images, profile.seed)
        return images, tf.one_hot(labels, classes)

    return dataset.map(prepare, num_parallel_calls=PARALLEL_CALLS).prefetch(2)


def learning_rate(profile: Profile, steps_per_epoch: int):
    """Adam's learning rate: a linear warm-up, then cosine decay to zero (or constant)."""
    keras = keras_module()

    if profile.schedule == "constant":
        return profile.learning_rate
    warmup = profile.warmup_epochs * steps_per_epoch
    total = max(1, profile.epochs * steps_per_epoch - warmup)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            profile.learning_rate / 10, total, warmup_target=profile.learning_rate,
            warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(profile.learning_rate, total)


def evaluate(model, split: Split, classes: int, profile: Profile) -> tuple[Evaluation, float]:
    """Accuracy, confusion matrix and per-class accuracy, computed from predictions, and the
    training loss on them (:func:`scores`)."""
    probabilities = model.predict(make_dataset(split, classes, profile, False), verbose=0)
    return scores(probabilities, split.labels, classes, profile)


def scores(probabilities: np.ndarray, labels: np.ndarray, classes: int,
           profile: Profile) -> tuple[Evaluation, float]:
    """The evaluation of predicted class probabilities, and the cross-entropy with the
    profile's label smoothing (the training loss) on them."""
    predicted = np.argmax(probabilities, axis=1)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = [float(confusion[i, i] / totals[i]) if totals[i] else 0.0 for i in range(classes)]
    accuracy = float(np.mean(predicted == labels))
    targets = np.eye(classes)[labels] * (1 - profile.label_smoothing) \
        + profile.label_smoothing / classes
    # Keras clips probabilities the same way before the logarithm
    clipped = np.clip(probabilities.astype("float64"), 1e-7, 1 - 1e-7)
    loss = float(np.mean(-np.sum(targets * np.log(clipped), axis=1)))
    return Evaluation(accuracy, confusion.tolist(), per_class, predicted.tolist()), loss


def forward_images(profile: Profile, val_images: int) -> int:
    """Images an epoch passes forward on average besides training: validation and the
    BatchNormalization statistics (cost.project's share of the time)."""
    if profile.validate_every_epoch:
        return val_images + BN_EPOCH_BATCHES * profile.batch_size
    return (val_images + BN_BATCHES * profile.batch_size) // max(1, profile.epochs)


def train(config: dict[str, Any], train_split: Split, val_split: Split, test_split: Split | None,
          classes: int, profile: Profile, precision: str = "auto",
          deterministic: bool | None = None, on_projection: cost.OnProjection | None = None,
          max_minutes: float | None = None) -> Training:
    """Train the architecture in ``config`` from fresh weights and evaluate it.

    ``deterministic`` (None: on for CPUs) turns on TensorFlow's op determinism, so the same
    architecture gets the same accuracy in every run and process: a resumed batch then equals
    an uninterrupted one. After the first steps, ``on_projection`` hears the measured speed and
    the projected duration (grader.cost); a projection over ``max_minutes`` stops the training
    with a GradingError that says so.
    """
    steps = max(1, len(train_split.labels) // profile.batch_size)
    model, device, deterministic = compiled(config, profile, steps, precision, deterministic)
    started = time.perf_counter()
    calibration = make_dataset(train_split, classes, profile, False).take(BN_BATCHES)
    validate = _tensorflow_validation(model, calibration,
                                      make_dataset(val_split, classes, profile, False),
                                      profile.validate_every_epoch)
    forward = forward_images(profile, len(val_split.labels))
    meter = projection_meter(profile, steps, forward, f"{device.description}, {device.precision}",
                             on_projection or (lambda projection: None), max_minutes)
    # One iterator for the whole fit: Keras stops each epoch after `steps` batches, before the
    # iterator reports its end, so a fresh iterator per epoch would leave the old one's
    # background threads running, and destroying it waited for them (5-9 s an epoch here).
    # Each epoch is still one freshly shuffled pass over the training images.
    fit = model.fit(make_dataset(train_split, classes, profile, True).repeat(),
                    steps_per_epoch=steps, epochs=profile.epochs, verbose=0, shuffle=False,
                    callbacks=[meter, validate])
    return concluded(fit, meter, validate, started,
                     lambda split: evaluate(model, split, classes, profile),
                     (train_split, val_split, test_split), profile, steps,
                     int(model.count_params()), device, deterministic, max_minutes)


def concluded(fit, meter, validate, started: float,
              evaluate_split: Callable[[Split], tuple[Evaluation, float]],
              splits: tuple[Split, Split, Split | None], profile: Profile, steps: int,
              params: int, device, deterministic: bool,
              max_minutes: float | None) -> Training:
    """What follows ``fit`` on either backend (this module, grader.training.portable): stop
    when the meter refused the projection, validate the final model once (the result's
    accuracy, which also closes the curve), evaluate the test data, record the cost, and
    assemble the Training."""
    train_split, val_split, test_split = splits
    if meter.refused:
        raise GradingError("train", cost.too_slow_message(meter.projection, max_minutes),
                           cause="too_slow")
    fit_seconds = time.perf_counter() - started - validate.seconds
    # The last epoch's validation: the same pass as the result's, so it is made once, here.
    validating = time.perf_counter()
    validation, val_loss = evaluate_split(val_split)
    validate.seconds += time.perf_counter() - validating
    log.info("epoch %d/%d: accuracy %.3f, val_accuracy %.3f", profile.epochs, profile.epochs,
             fit.history.get("accuracy", [0.0])[-1], validation.accuracy)
    test = evaluate_split(test_split)[0] if test_split is not None else None
    history = {key: [float(v) for v in values] for key, values in fit.history.items()
               if key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    history.setdefault("val_loss", []).append(val_loss)
    history.setdefault("val_accuracy", []).append(validation.accuracy)
    images = steps * profile.batch_size * profile.epochs
    backend = keras_module().backend.backend()
    cost.record({"profile": profile.name, "params": params, "images": images,
                 "fit_seconds": round(fit_seconds, 2),
                 "seconds": round(time.perf_counter() - started, 2),
                 "device": device.description, "precision": device.precision,
                 "backend": backend,
                 # the promise for machines without it: a JAX training never loads TensorFlow
                 "tensorflow_loaded": sys.modules.get("tensorflow") is not None})
    return Training(history, validation, test, device.description, device.kind,
                    device.precision, profile.seed, deterministic, profile.epochs,
                    len(train_split.labels), len(val_split.labels),
                    round(time.perf_counter() - started, 2), round(images / fit_seconds, 1),
                    round(validate.seconds, 2), meter.projection, backend)


def compiled(config: dict[str, Any], profile: Profile, steps_per_epoch: int,
             precision: str = "auto", deterministic: bool | None = None):
    """Seed everything, pick the device and precision, and build and compile the architecture
    from fresh weights: (model, Device, deterministic). The benchmarks time this same model."""
    keras = keras_module()

    from grader.model.architecture import scope_safe
    from grader.model.rebuild import build
    from grader.training import device as devices

    keras.utils.set_random_seed(profile.seed)  # Python, NumPy and TensorFlow
    device, strategy = devices.detect(precision)
    if deterministic is None:
        deterministic = device.kind == "cpu"
    if deterministic:  # with grader.lazy's single inter-op thread
        tensorflow().config.experimental.enable_op_determinism()
    config = scope_safe(config)  # '<b>my model' is a Keras name but no TensorFlow scope
    with strategy.scope():
        model = build(config, device.precision)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate(profile, steps_per_epoch)),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=profile.label_smoothing),
            metrics=["accuracy"])
    return model, device, deterministic


def _tensorflow_validation(model, calibration, validation, every_epoch: bool):
    """:func:`validation_callback` over tf.data datasets, the BN pass compiled once."""
    forward = []

    def recalibrate(last: bool) -> None:
        if not forward:
            forward.append(batch_norm_forward(model))
        recalibrate_batch_norm(model, calibration.take(BN_BATCHES if last else BN_EPOCH_BATCHES),
                               forward[0])

    def score() -> tuple[float, float]:
        scores = model.evaluate(validation, verbose=0, return_dict=True)
        return scores["loss"], scores["accuracy"]

    return validation_callback(recalibrate, score, every_epoch)
