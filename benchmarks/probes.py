"""Measurements that need TensorFlow, each run in a fresh process:
``python -m benchmarks.probes SPEC.json`` prints one JSON answer on its last line.

- ``gemm``: this machine's float32 and bfloat16 matrix-multiplication rate (GFLOP/s), the
  practical limit training is compared with.
- ``throughput``: training images/s of one architecture, after a warm-up, either the grader's
  trusted training step (``grader.training.train.compiled`` and ``make_dataset``: its precision,
  determinism and augmentation) or a plain float32 Keras ``fit`` with the default Adam and no
  augmentation. Also the model's forward FLOPs per image.
- ``pipeline``: the trusted input pipeline alone (uint8 cache → augmented float batches), images/s.
- ``layers``: each convolution alone, forward and backward: what limits (b).
- ``ops``: oneDNN's own profile (``ONEDNN_VERBOSE=1``) of trusted training steps: how much of a
  step its primitives (convolutions, pooling, dense) take, the rest being TensorFlow's own
  kernels (activations, BatchNormalization, casts, loss, optimizer) and the framework.
"""

from __future__ import annotations

import ctypes
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GEMM_SIDE = 4096
GEMM_SECONDS = 4.0       # per dtype, after one warm-up product
WARMUP_STEPS = 3


def gemm(spec: dict[str, Any]) -> dict[str, Any]:
    from grader.lazy import tensorflow
    tf = tensorflow()

    rates = {}
    n = int(spec.get("side", GEMM_SIDE))
    for name in ("float32", "bfloat16"):
        dtype = getattr(tf, name)
        a = tf.cast(tf.random.normal((n, n)), dtype)
        b = tf.cast(tf.random.normal((n, n)), dtype)
        product = tf.function(tf.matmul)
        product(a, b).numpy()
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < float(spec.get("seconds", GEMM_SECONDS)):
            product(a, b).numpy()
            count += 1
        rates[name] = round(2 * n ** 3 * count / (time.perf_counter() - started) / 1e9, 1)
    return {"gflops": rates, "side": n}


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one image's forward pass through the convolution and dense layers
    (the layers that hold the FLOPs; pooling, normalization and activations are not counted)."""
    from grader.lazy import keras as keras_module
    from grader.model.rebuild import walk_layers
    keras = keras_module()

    total = 0
    for layer in walk_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                              keras.layers.SeparableConv2D)):
            height, width = layer.output.shape[1:3]
            k = int(layer.kernel_size[0] * layer.kernel_size[1])
            inputs = int(layer.input.shape[-1])
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                macs = k * inputs * layer.depth_multiplier
            elif isinstance(layer, keras.layers.SeparableConv2D):
                macs = k * inputs * layer.depth_multiplier + inputs * layer.depth_multiplier \
                    * layer.filters
            else:
                macs = k * inputs * layer.filters // layer.groups
            total += 2 * macs * height * width
        elif isinstance(layer, keras.layers.Dense):
            positions = 1
            for side in layer.input.shape[1:-1]:
                positions *= int(side)
            total += 2 * int(layer.input.shape[-1]) * layer.units * positions
    return total


def _data(spec: dict[str, Any]):
    """The exercise, the profile and the training split, read through the grader's cache."""
    from grader.exercise import load_exercise
    from grader.training.job import TrainingJob
    from grader.training import datacache

    exercise = load_exercise(spec["exercise"])
    profile = exercise.profile(spec["profile"])
    job = TrainingJob(Path(spec["data"]), None, exercise, profile, "auto",
                      Path(spec["cache"]) if spec.get("cache") else None)
    return exercise, profile, datacache.load(job.sources()[0], job.cache).splits["train"]


def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    from grader.lazy import keras as keras_module
    from grader.model.architecture import scope_safe
    from grader.model.rebuild import build
    from grader.training.train import compiled
    keras = keras_module()

    exercise, profile, split = _data(spec)
    config = json.loads(Path(spec["config"]).read_text())
    steps = int(spec["steps"])
    classes = len(exercise.classes)
    if spec["plain"]:  # what a notebook does: float32, default Adam, no augmentation
        keras.utils.set_random_seed(profile.seed)
        model = build(scope_safe(config), "float32")
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        profile = replace(profile, augment=False)
        precision, deterministic = "float32", False
    else:
        model, device, deterministic = compiled(config, profile, steps, spec["precision"],
                                                spec["deterministic"])
        precision = device.precision
    dataset = _warmed_up(model, split, classes, profile)
    clock = _StepClock()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    seconds = clock.seconds
    return {"images_per_second": round(steps * profile.batch_size / seconds, 1),
            "precision": precision, "deterministic": deterministic,
            "forward_flops": forward_flops(model), "steps": steps,
            "batch_size": profile.batch_size}


def _warmed_up(model, split, classes: int, profile):
    """The trusted training batches, repeated, after ``WARMUP_STEPS`` steps of ``model`` on them
    (tracing and oneDNN's first calls are not what is measured)."""
    from grader.training.train import make_dataset

    dataset = make_dataset(split, classes, profile, True).repeat()
    model.fit(dataset, steps_per_epoch=WARMUP_STEPS, epochs=1, verbose=0)
    return dataset


def _StepClock(on_first=None, on_last=None):
    """Seconds from the start of a fit's first batch to the end of its last: the training
    steps, without the fit's set-up and the tear-down of its data iterator (which waits for
    the pipeline's background threads, seconds at a time here, once per fit)."""
    from grader.lazy import keras as keras_module
    keras = keras_module()

    class StepClock(keras.callbacks.Callback):
        first = last = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            if not self.first:
                if on_first:
                    on_first()
                self.first = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()
            if on_last and batch + 1 == self.params.get("steps"):
                on_last()

        @property
        def seconds(self) -> float:
            return self.last - self.first

    return StepClock()


def pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    from grader.training.train import make_dataset

    exercise, profile, split = _data(spec)
    dataset = make_dataset(split, len(exercise.classes), profile, True).repeat()
    batches = iter(dataset)
    for _ in range(WARMUP_STEPS):
        next(batches)
    steps = int(spec["steps"])
    started = time.perf_counter()
    for _ in range(steps):
        images, _labels = next(batches)
    images.numpy()
    seconds = time.perf_counter() - started
    return {"images_per_second": round(steps * profile.batch_size / seconds, 1),
            "augment": profile.augment}


def layers(spec: dict[str, Any]) -> dict[str, Any]:
    """The profile behind (b): each Conv2D of the model alone, forward and backward (weights,
    and inputs except for the first layer) at the training batch size in the trusted precision,
    and the images/s all of them together would allow: the ceiling the convolution kernels
    put on training, whatever the pipeline does."""
    from grader.lazy import keras as keras_module, tensorflow
    from grader.model.architecture import scope_safe
    from grader.model.rebuild import build, walk_layers
    keras, tf = keras_module(), tensorflow()

    exercise, profile, _split = _data(spec)
    precision = spec["precision"]
    dtype = tf.bfloat16 if "bfloat16" in precision else (
        tf.float16 if "float16" in precision else tf.float32)
    model = build(scope_safe(json.loads(Path(spec["config"]).read_text())), "float32")
    batch, rows, total = profile.batch_size, [], 0.0
    for index, layer in enumerate(l for l in walk_layers(model)
                                  if type(l) is keras.layers.Conv2D and l.groups == 1):
        shape = [batch, *[int(d) for d in layer.input.shape[1:]]]
        x = tf.cast(tf.random.normal(shape), dtype)
        kernel = tf.Variable(tf.cast(tf.random.normal(
            [*layer.kernel_size, shape[-1], layer.filters]) * 0.1, dtype))
        inputs_too = index > 0  # the first layer needs no gradient for the images

        @tf.function
        def step(x, kernel=kernel, layer=layer, inputs_too=inputs_too):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.relu(tf.nn.convolution(x, kernel, strides=layer.strides,
                                                  padding=layer.padding.upper(),
                                                  dilations=layer.dilation_rate))
                loss = tf.reduce_sum(tf.cast(y, tf.float32))
            return tape.gradient(loss, [kernel, x] if inputs_too else [kernel])

        step(x)
        started, count = time.perf_counter(), 0
        while count < 3 or time.perf_counter() - started < 1.0:
            [g.numpy() for g in step(x)]
            count += 1
        seconds = (time.perf_counter() - started) / count
        height, width = layer.output.shape[1:3]
        flops = 2 * batch * height * width * int(np.prod(layer.kernel_size)) * shape[-1] \
            * layer.filters * (3 if inputs_too else 2)
        total += seconds
        rows.append({"layer": f"{height}x{width} {shape[-1]}->{layer.filters} "
                              f"k{layer.kernel_size[0]}",
                     "ms_per_batch": round(seconds * 1000, 1),
                     "gflops": round(flops / seconds / 1e9, 1)})
    return {"precision": precision, "layers": rows,
            "conv_only_images_per_second": round(batch / total, 1) if total else None}


def ops(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``ops_steps`` in a child process with oneDNN's verbose mode on and add up the
    execution time of its primitives per step, by kind. The logging slows the steps, not the
    primitives' own times, so the share of a step is taken against the unlogged step time of
    the ``throughput`` probe (the suite does that)."""
    output = spawn({**spec, "kind": "ops_steps"}, {"ONEDNN_VERBOSE": "1"})
    return {**onednn_profile(output.splitlines(), int(spec["steps"])),
            "precision": spec["precision"]}


def ops_steps(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then ``steps`` trusted steps between two markers on stdout (oneDNN writes its
    lines with C's stdio, flushed at each marker so the lines fall on the right side)."""
    from grader.training.train import compiled

    exercise, profile, split = _data(spec)
    config = json.loads(Path(spec["config"]).read_text())
    model, _device, _deterministic = compiled(config, profile, int(spec["steps"]),
                                              spec["precision"], True)
    dataset = _warmed_up(model, split, len(exercise.classes), profile)
    libc = ctypes.CDLL(None)

    def mark(text: str) -> None:
        libc.fflush(None)
        print(text, flush=True)

    clock = _StepClock(on_first=lambda: mark(ONEDNN_START), on_last=lambda: mark(ONEDNN_END))
    model.fit(dataset, steps_per_epoch=int(spec["steps"]), epochs=1, verbose=0,
              callbacks=[clock])
    return {"logged_step_ms": round(clock.seconds * 1000 / int(spec["steps"]), 1)}


ONEDNN_START, ONEDNN_END = "=== benchmarks: timed steps", "=== benchmarks: end"


def onednn_profile(lines: list[str], steps: int) -> dict[str, Any]:
    """Sum ``onednn_verbose,...,primitive,exec,cpu,KIND,IMPLEMENTATION,PROPAGATION,...,MS``
    lines between the markers, per kind and propagation, in ms per step."""
    inside, by_kind, calls = False, Counter(), Counter()
    logged = None
    for line in lines:
        if line.startswith(ONEDNN_START):
            inside = True
        elif line.startswith(ONEDNN_END):
            inside = False
        elif line.startswith("{"):
            logged = json.loads(line).get("logged_step_ms")
        elif inside and line.startswith("onednn_verbose") and ",exec," in line:
            fields = line.split(",")
            at = fields.index("exec")
            try:
                milliseconds = float(fields[-1])
            except ValueError:
                continue
            key = f"{fields[at + 2]} {fields[at + 4]}"
            by_kind[key] += milliseconds
            calls[key] += 1
    total = sum(by_kind.values())
    return {"steps": steps, "primitives_ms_per_step": round(total / steps, 1),
            "logged_step_ms": logged,
            "by_kind": [{"primitive": key, "ms_per_step": round(ms / steps, 1),
                         "calls_per_step": calls[key] // steps}
                        for key, ms in by_kind.most_common()]}


def spawn(spec: dict[str, Any], env: dict[str, str] | None = None) -> str:
    """Run the probe ``spec`` in a fresh process (``python -m benchmarks.probes``, through
    grader.proc), with ``env`` added to the environment; its standard output. Raises when the
    probe failed."""
    from grader.proc import run_module

    with tempfile.TemporaryDirectory(prefix="flowers-grader-probe-") as private:
        path = Path(private) / "spec.json"
        path.write_text(json.dumps(spec))
        done = run_module("benchmarks.probes", path, cwd=ROOT, env=env, merge=False)
    if done.code != 0:
        raise RuntimeError(f"probe {spec.get('kind')}: {done.failure('the probe', None)}: "
                           f"{(done.errors or done.output)[-1500:]}")
    return done.output


def main(spec_path: str) -> int:
    from grader.lazy import quiet_libraries

    quiet_libraries()
    spec = json.loads(Path(spec_path).read_text())
    kinds = {"gemm": gemm, "throughput": throughput, "pipeline": pipeline, "layers": layers,
             "ops": ops, "ops_steps": ops_steps}
    answer = kinds[spec["kind"]](spec)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
