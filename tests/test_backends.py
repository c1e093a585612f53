"""Trusted training on Keras 3's JAX backend (grader.training.portable), checked on this CPU
against the TensorFlow backend: the augmentation gives the same images for the same random
draws (and the same as tf.image's crop_and_resize recipe), two training steps from the same
weights on the same batch give the same losses, and a `smoke` grading runs end to end on JAX
in a process that never loads TensorFlow. What a GPU or TPU adds (speed, bf16, the accuracy over
seeds) is measured by `python -m benchmarks --accelerator` (docs/accelerators.md), not here:
there is none on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from backend_worker import augmented, losses
from conftest import ROOT, STUDENT_NOTEBOOK, run_grade
from grader import cost
from grader.lazy import keras, tensorflow

WORKER = Path(__file__).resolve().parent / "backend_worker.py"


def _on_jax(what: str, inputs: dict[str, np.ndarray], folder: Path) -> np.ndarray:
    given, out = folder / f"{what}-in.npz", folder / f"{what}-out.npy"
    np.savez(given, **inputs)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, WORKER, what, given, out], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(out)


def _draws(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"flips": (rng.random(batch) < 0.5).astype("float32"),
            "sides": rng.uniform(0.75, 1.0, batch).astype("float32"),
            "offsets": rng.random((batch, 2)).astype("float32"),
            "contrast": rng.uniform(0.8, 1.2, batch).astype("float32"),
            "brightness": rng.uniform(-0.08, 0.08, batch).astype("float32")}


def test_the_augmentation_gives_the_same_images_on_both_backends(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    inputs = {"images": rng.random((4, 48, 40, 3)).astype("float32"), **_draws(4)}
    inputs["flips"][:2] = [1.0, 0.0]   # both ways, whatever the draw
    here = augmented(inputs)
    assert keras().backend.backend() == "tensorflow"
    on_jax = _on_jax("augment", inputs, tmp_path)
    assert here.shape == on_jax.shape == (4, 48, 40, 3)
    np.testing.assert_allclose(on_jax, here, atol=2e-5)
    # ... and it is the TensorFlow path's recipe (train._augment) for those draws
    tf = tensorflow()
    images = tf.where(inputs["flips"][:, None, None, None] > 0.5,
                      tf.image.flip_left_right(inputs["images"]), inputs["images"])
    starts = inputs["offsets"] * (1 - inputs["sides"][:, None])
    boxes = tf.concat([starts, starts + inputs["sides"][:, None]], axis=1)
    images = tf.image.crop_and_resize(images, boxes, tf.range(4), (48, 40))
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    expected = tf.clip_by_value((images - mean) * inputs["contrast"][:, None, None, None]
                                + mean + inputs["brightness"][:, None, None, None], 0.0, 1.0)
    np.testing.assert_allclose(here, expected.numpy(), atol=2e-5)
    # the draws matter: other draws give other images
    assert np.abs(augmented({**inputs, **_draws(4, seed=2)}) - here).max() > 0.05


def test_two_training_steps_from_the_same_weights_give_the_same_losses(tmp_path: Path) -> None:
    """No Dropout in the model: its random stream is the backend's own."""
    layers = keras().layers
    model = keras().Sequential([
        keras().Input((64, 64, 3)), layers.Conv2D(8, 3, strides=2, activation="relu"),
        layers.BatchNormalization(), layers.Conv2D(16, 3, strides=2, activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(5, activation="softmax")])
    rng = np.random.default_rng(3)
    inputs = {"config": np.array(json.dumps(keras().saving.serialize_keras_object(model))),
              "images": rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8),
              "targets": np.eye(5, dtype="float32")[rng.integers(0, 5, 16)],
              **{f"weight_{i}": w for i, w in enumerate(model.get_weights())}}
    here = losses(inputs)
    on_jax = _on_jax("steps", inputs, tmp_path)
    np.testing.assert_allclose(on_jax, here, rtol=1e-4)
    assert here[1] < here[0]   # the second step's loss shows the first step's update


def test_a_smoke_grading_runs_on_jax_without_tensorflow(small_data: Path,
                                                         tmp_path: Path) -> None:
    process = run_grade("notebook", STUDENT_NOTEBOOK, "--data", small_data, "--out", tmp_path,
                        "--profile", "smoke", "--backend", "jax")
    assert process.returncode == 1, process.stderr[-3000:]   # graded, not passed (533 params)
    assert "Traceback" not in process.stdout + process.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    training = result["training"]
    assert result["status"] == "graded" and result["error"] is None
    assert training["backend"] == "jax" and training["precision"] == "float32"
    assert training["device_kind"] == "cpu" and "JAX" in training["device"]
    assert len(training["history"]["val_accuracy"]) == 1
    assert 0.0 <= result["accuracy"] <= 1.0 and training["validation"]["confusion"]
    # the training process's own line in the ledger: Keras on JAX, and TensorFlow never loaded
    entries = [json.loads(line) for line in
               Path(os.environ[cost.LEDGER_VARIABLE]).read_text().splitlines()]
    trained = [e for e in entries if "fit_seconds" in e]
    assert [(e["backend"], e["tensorflow_loaded"]) for e in trained] == [("jax", False)]



def test_the_accelerator_benchmark_runs_every_part_on_a_small_profile(small_data: Path,
                                                                      tmp_path: Path) -> None:
    """`python -m benchmarks --accelerator` as a GPU would run it, on this CPU with the smoke
    profile and the smallest architecture (benchmarks/architectures.py's "starter")."""
    from benchmarks.architectures import others

    configs = [tmp_path / f"{name}.json" for name in ("starter", "other")]
    for path in configs:
        path.write_text(json.dumps(others()["starter"]))
    numbers = tmp_path / "numbers.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--accelerator", "--data", small_data, "--profile",
         "smoke", "--seeds", "1", "--together", "2", "--architectures", *configs, "--json",
         numbers], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(numbers.read_text())
    assert [run["seed"] for run in record["reference"]] == [42]
    assert [run["name"] for run in record["class"]["2"]["runs"]] == ["starter", "other"]
    for run in record["reference"] + record["class"]["2"]["runs"]:
        assert run["device_kind"] == "cpu" and run["images_per_second"] > 0
        assert run["wall_seconds"] > run["compile_seconds"] > 0
        assert 0.0 <= run["accuracy"] <= 1.0
    assert "reference, accuracy" in done.stdout and "mean of 1 seed(s)" in done.stdout
    assert "class of 2, 2 at a time" in done.stdout
    assert "the targets apply to a GPU or TPU with the full profile" in done.stdout
    assert "MISSED" not in done.stdout and "error" not in done.stdout
    entries = [json.loads(line) for line in
               Path(os.environ[cost.LEDGER_VARIABLE]).read_text().splitlines()]
    assert [(e["backend"], e["tensorflow_loaded"]) for e in entries if "fit_seconds" in e] \
        == [("jax", False)] * 3

