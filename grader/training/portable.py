"""Trusted training written against Keras 3's backend-neutral API, for JAX on a GPU or TPU.

The same recipe as grader.training.train (TensorFlow, tf.data, the CPU path): the rebuilt
architecture from seeded weights, Adam with warm-up and cosine decay, label smoothing, flips,
crops of 75-100% of the side resized back, brightness and contrast jitter, precise BN statistics
before every evaluation. What differs is where the work runs. The uint8 images go to the device
as they are, and the model is wrapped so that scaling to [0, 1] and the augmentation happen
inside the compiled training step, as batched ``keras.ops`` arithmetic: Keras's preprocessing
layers (RandomZoom above all) ran 80 times slower than the training step itself on a GPU.

Every batch has the same shape (the last partial batch of a pass is dropped when training and
padded when predicting), so XLA compiles each function once.

The process that runs this imports no TensorFlow (grader.lazy refuses it when KERAS_BACKEND is
jax): GPU images and TPU VMs may have none. The data comes from grader.training.records.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from grader import cost
from grader.cost import cpu_description
from grader.exercise import Profile
from grader.lazy import keras as keras_module
from grader.training.batchnorm import BN_BATCHES, BN_EPOCH_BATCHES, recalibrate_batch_norm
from grader.training.callbacks import projection_meter, validation_callback
from grader.training.data import Split
from grader.training.device import Device, cpu_flags, gpu_precision
from grader.training.train import (Evaluation, Training, concluded, forward_images,
                                   learning_rate, scores)

log = logging.getLogger(__name__)

# The augmentation's ranges (grader.training.train._augment draws the same).
CROP = (0.75, 1.0)          # side of the crop, as a share of the image's
CONTRAST = (0.8, 1.2)
BRIGHTNESS = (-0.08, 0.08)


# ---------------------------------------------------------------- augmentation

def crop_weights(starts, sides, size: int):
    """Bilinear interpolation matrices (batch, size, size) that take ``size`` samples of the
    span [start, start + side] (shares of the side) of a row of ``size`` pixels: what
    tf.image.crop_and_resize does along one axis, as a matrix the device multiplies by."""
    ops = keras_module().ops
    steps = ops.arange(size, dtype="float32") / max(size - 1, 1)
    grid = (starts[:, None] + sides[:, None] * steps[None, :]) * (size - 1)   # (batch, out)
    pixels = ops.arange(size, dtype="float32")
    return ops.relu(1.0 - ops.abs(grid[:, :, None] - pixels[None, None, :]))  # (batch, out, in)


def augment(images, flips, sides, offsets, contrast, brightness):
    """The augmentation for given random draws (one per image): float images in [0, 1]
    (batch, height, width, 3); ``flips`` 1 to mirror left-right; ``sides`` the crop's side
    (share of the image's); ``offsets`` (batch, 2) where the crop starts, as a share of the room
    left (0 to 1, y then x); ``contrast`` and ``brightness`` the jitter. Pure ``keras.ops``, so
    it runs on any backend; :class:`Augment` draws the randomness."""
    ops = keras_module().ops
    height, width = images.shape[1], images.shape[2]
    images = ops.where(flips[:, None, None, None] > 0.5, ops.flip(images, axis=2), images)
    starts = offsets * (1.0 - sides[:, None])
    rows = crop_weights(starts[:, 0], sides, height)
    columns = crop_weights(starts[:, 1], sides, width)
    images = ops.einsum("boh,bhwc->bowc", rows, images)
    images = ops.einsum("bpw,bowc->bopc", columns, images)
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    jittered = (images - mean) * contrast[:, None, None, None] + mean \
        + brightness[:, None, None, None]
    return ops.clip(jittered, 0.0, 1.0)


def _layers():
    """The input layers, defined once Keras is imported (its backend is chosen then)."""
    keras = keras_module()

    class Scale(keras.layers.Layer):
        """uint8 pixels → float32 in [0, 1], on the device."""

        def call(self, images):
            return keras.ops.cast(images, "float32") / 255.0

    class Augment(keras.layers.Layer):
        """:func:`augment` with draws from the layer's seeded generator; the identity when not
        training."""

        def __init__(self, seed: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            if not training:
                return images
            batch = keras.ops.shape(images)[0]

            def uniform(shape, low, high):
                return keras.random.uniform(shape, low, high, seed=self.generator)

            return augment(images, uniform((batch,), 0.0, 1.0), uniform((batch,), *CROP),
                           uniform((batch, 2), 0.0, 1.0), uniform((batch,), *CONTRAST),
                           uniform((batch,), *BRIGHTNESS))

    return Scale, Augment


def wrapped(model, image_size: int, augmented: bool, seed: int):
    """``model`` behind the input pipeline: uint8 images in, scaled (and augmented when
    training) on the device. The wrapper has no weights of its own."""
    keras = keras_module()
    scale, augment_layer = _layers()
    inputs = keras.Input((image_size, image_size, 3), dtype="uint8", name="pixels")
    images = scale(dtype="float32", name="scale")(inputs)
    if augmented:
        images = augment_layer(seed, dtype="float32", name="augment")(images)
    return keras.Model(inputs, model(images), name="trusted")


# ---------------------------------------------------------------- data

def _batches(split: Split, classes: int, batch_size: int, seed: int):
    """Training batches: uint8 images and one-hot labels, a fresh shuffle every epoch, the last
    partial batch dropped (tf.data's drop_remainder in the TensorFlow path)."""
    keras = keras_module()
    targets = np.eye(classes, dtype="float32")[split.labels]

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.random = np.random.default_rng(seed)
            self.order = self.random.permutation(len(targets))

        def __len__(self) -> int:
            return len(targets) // batch_size

        def __getitem__(self, index: int):
            # sorted: memory-mapped arrays (grade batch's cache) are read front to back
            chosen = np.sort(self.order[index * batch_size:(index + 1) * batch_size])
            return np.asarray(split.images[chosen]), targets[chosen]

        def on_epoch_end(self) -> None:
            self.order = self.random.permutation(len(targets))

    return Batches()


def _padded(images: np.ndarray, batch_size: int) -> np.ndarray:
    """``images`` padded with zeros to whole batches (one compiled shape for predict)."""
    extra = -len(images) % batch_size
    if not extra:
        return np.asarray(images)
    return np.concatenate([images, np.zeros((extra, *images.shape[1:]), images.dtype)])


def predict(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Class probabilities (float32) for uint8 ``images``, in whole batches."""
    probabilities = model.predict(_padded(images, batch_size), batch_size=batch_size,
                                  verbose=0)
    return np.asarray(probabilities, dtype="float32")[:len(images)]


def evaluate(model, split: Split, classes: int, profile: Profile) -> tuple[Evaluation, float]:
    """Accuracy, confusion matrix, per-class accuracy and loss (train.scores)."""
    return scores(predict(model, split.images, profile.batch_size), split.labels, classes,
                  profile)


# ---------------------------------------------------------------- device

def detect(precision: str = "auto") -> Device:
    """JAX's first device and its precision: bf16 on TPUs and on GPUs of compute capability 8.0
    and up (float16 on 7.x), float32 on CPUs (XLA's CPU bf16 ran at 2.4 images/s)."""
    import jax

    devices = jax.devices()
    first = devices[0]
    kind = {"gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}.get(first.platform, "cpu")
    if kind == "tpu":
        automatic = "mixed_bfloat16"
    elif kind == "gpu":
        capability = getattr(first, "compute_capability", None)
        automatic = gpu_precision(tuple(int(part) for part in str(capability).split(".")[:2])
                                  if capability else None)
    else:
        automatic = "float32"
    name = cpu_description(cpu_flags()) if kind == "cpu" else first.device_kind
    description = f"{name}, JAX {jax.__version__}"
    return Device(kind, 1, description, automatic if precision == "auto" else precision)


# ---------------------------------------------------------------- training

def train(config: dict[str, Any], train_split: Split, val_split: Split, test_split: Split | None,
          classes: int, profile: Profile, precision: str = "auto",
          deterministic: bool | None = None, on_projection: cost.OnProjection | None = None,
          max_minutes: float | None = None) -> Training:
    """grader.training.train.train's contract, on whatever backend Keras runs (JAX here).

    ``deterministic`` is not used here: on a GPU the training process is started with XLA's
    deterministic-ops flag when it is on (grader.training.backend.process_env), and the
    Training records whether the flag was there; JAX on CPUs and TPUs repeats itself without
    it. The training runs on JAX's first device (no data parallelism over several)."""
    device = detect(precision)
    # on a GPU, what the process was started with decides (backend.process_env)
    deterministic = device.kind != "gpu" or \
        "--xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", "")
    steps = max(1, len(train_split.labels) // profile.batch_size)
    model, inner = compiled(config, profile, steps, train_split.images.shape[1], device.precision)
    started = time.perf_counter()
    calibration = [np.asarray(train_split.images[i:i + profile.batch_size], "float32") / 255.0
                   for i in range(0, min(len(train_split.labels),
                                         BN_BATCHES * profile.batch_size), profile.batch_size)]

    def recalibrate(last: bool) -> None:   # the architecture's own BN layers, eagerly
        batches = calibration[:BN_BATCHES if last else BN_EPOCH_BATCHES]
        recalibrate_batch_norm(inner, ((images, None) for images in batches))

    def score() -> tuple[float, float]:
        evaluation, loss = evaluate(model, val_split, classes, profile)
        return loss, evaluation.accuracy

    validate = validation_callback(recalibrate, score, profile.validate_every_epoch)
    meter = projection_meter(profile, steps, forward_images(profile, len(val_split.labels)),
                             f"{device.description}, {device.precision}",
                             on_projection or (lambda projection: None), max_minutes)
    fit = model.fit(_batches(train_split, classes, profile.batch_size, profile.seed),
                    steps_per_epoch=steps, epochs=profile.epochs, verbose=0,
                    callbacks=[meter, validate])
    return concluded(fit, meter, validate, started,
                     lambda split: evaluate(model, split, classes, profile),
                     (train_split, val_split, test_split), profile, steps,
                     int(inner.count_params()), device, deterministic, max_minutes)


def compiled(config: dict[str, Any], profile: Profile, steps_per_epoch: int, image_size: int,
             precision: str = "float32"):
    """Seed, build the architecture from fresh weights behind the input pipeline, and compile
    it as trusted training does: (the wrapped model, the architecture's own model)."""
    keras = keras_module()
    from grader.model.architecture import scope_safe
    from grader.model.rebuild import build

    keras.utils.set_random_seed(profile.seed)
    inner = build(scope_safe(config), precision)
    model = wrapped(inner, image_size, profile.augment, profile.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(profile, steps_per_epoch)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=profile.label_smoothing),
        metrics=["accuracy"],
        # XLA on JAX; TensorFlow's own graphs elsewhere (XLA compiles slowly on a CPU)
        jit_compile=keras.backend.backend() == "jax")
    return model, inner
