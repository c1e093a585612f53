"""Trusted training on Keras 3's JAX backend (grader.training.portable), checked on this CPU
against the TensorFlow backend: the augmentation gives the same images for the same random
draws (and the same as tf.image's crop_and_resize recipe), two training steps from the same
weights on the same batch give the same losses, and a `smoke` grading runs end to end on JAX
in a process that never loads TensorFlow; and the accelerator benchmark runs. What a GPU or TPU adds (speed, bf16, the accuracy over
seeds) is measured by `python -m benchmarks --accelerator` (docs/accelerators.md), not here:
there is none on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import pytest

from backend_worker import augmented, losses
from conftest import LEDGER_DIR, ROOT, STUDENT_NOTEBOOK
from grader import cost
from grader.lazy import keras, tensorflow

WORKER = Path(__file__).resolve().parent / "backend_worker.py"


@dataclass
class Started:
    """A process the module started, with the ledger its trainings write to."""
    process: subprocess.Popen
    ledger: Path
    out: Path

    def finished(self) -> tuple[int, str, str]:
        stdout, stderr = self.process.communicate(timeout=900)
        return self.process.returncode, stdout, stderr

    def trainings(self) -> list[tuple[str, bool]]:
        """(backend, whether TensorFlow was loaded) of each training it ran."""
        lines = self.ledger.read_text().splitlines() if self.ledger.is_file() else []
        return [(entry["backend"], entry["tensorflow_loaded"])
                for entry in map(json.loads, lines) if "fit_seconds" in entry]


def _draws(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"flips": (rng.random(batch) < 0.5).astype("float32"),
            "sides": rng.uniform(0.75, 1.0, batch).astype("float32"),
            "offsets": rng.random((batch, 2)).astype("float32"),
            "contrast": rng.uniform(0.8, 1.2, batch).astype("float32"),
            "brightness": rng.uniform(-0.08, 0.08, batch).astype("float32")}


def _augment_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    inputs = {"images": rng.random((4, 48, 40, 3)).astype("float32"), **_draws(4)}
    inputs["flips"][:2] = [1.0, 0.0]   # both ways, whatever the draw
    return inputs


def _step_inputs() -> dict[str, np.ndarray]:
    """A model without Dropout (its random stream is the backend's own), its initial weights
    and one batch."""
    layers = keras().layers
    model = keras().Sequential([
        keras().Input((64, 64, 3)), layers.Conv2D(8, 3, strides=2, activation="relu"),
        layers.BatchNormalization(), layers.Conv2D(16, 3, strides=2, activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(5, activation="softmax")])
    rng = np.random.default_rng(3)
    return {"config": np.array(json.dumps(keras().saving.serialize_keras_object(model))),
            "images": rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8),
            "targets": np.eye(5, dtype="float32")[rng.integers(0, 5, 16)],
            **{f"weight_{i}": w for i, w in enumerate(model.get_weights())}}


@pytest.fixture(scope="module")
def started(small_data: Path, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest):
    """Every JAX process of the module, started at once: each spends seconds of one core
    importing, which the others use. Their ledgers sit beside the suite's (its account)."""
    from benchmarks.architectures import others

    work = tmp_path_factory.mktemp("backends")
    ledgers = request.config.stash[LEDGER_DIR]
    commands: dict[str, tuple[list, dict[str, str]]] = {}
    for what, inputs in (("augment", _augment_inputs()), ("steps", _step_inputs())):
        np.savez(work / f"{what}-in.npz", **inputs)
        commands[what] = ([sys.executable, WORKER, what, work / f"{what}-in.npz",
                           work / f"{what}-out.npy"], {"KERAS_BACKEND": "jax"})
    commands["grading"] = ([sys.executable, "-m", "grader", "notebook", STUDENT_NOTEBOOK,
                            "--data", small_data, "--out", work / "grading", "--profile",
                            "smoke", "--backend", "jax"], {})
    configs = [work / f"{name}.json" for name in ("starter", "other")]
    for path in configs:
        path.write_text(json.dumps(others()["starter"]))
    commands["benchmark"] = ([sys.executable, "-m", "benchmarks", "--accelerator", "--data",
                              small_data, "--profile", "smoke", "--seeds", "1", "--together",
                              "2", "--architectures", *configs, "--json",
                              work / "benchmark.json"], {})
    found = {}
    for what, (command, env) in commands.items():
        ledger = ledgers / f"backends-{what}.jsonl"
        ledger.unlink(missing_ok=True)
        found[what] = Started(subprocess.Popen(
            [str(part) for part in command], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, **env, cost.LEDGER_VARIABLE: str(ledger)}), ledger,
            work / what)
    yield found
    for one in found.values():
        if one.process.poll() is None:
            one.process.kill()
            one.process.communicate()


def _on_jax(started: Started) -> np.ndarray:
    code, _, stderr = started.finished()
    assert code == 0, stderr[-3000:]
    return np.load(started.out.with_name(started.out.name + "-out.npy"))


def test_the_augmentation_gives_the_same_images_on_both_backends(started) -> None:
    inputs = _augment_inputs()
    here = augmented(inputs)
    assert keras().backend.backend() == "tensorflow"
    on_jax = _on_jax(started["augment"])
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


def test_two_training_steps_from_the_same_weights_give_the_same_losses(started) -> None:
    here = losses(dict(np.load(started["steps"].out.with_name("steps-in.npz"))))
    on_jax = _on_jax(started["steps"])
    np.testing.assert_allclose(on_jax, here, rtol=1e-4)
    assert here[1] < here[0]   # the second step's loss shows the first step's update


def test_a_smoke_grading_runs_on_jax_without_tensorflow(started) -> None:
    code, stdout, stderr = started["grading"].finished()
    assert code == 1, stderr[-3000:]   # graded, not passed (533 parameters)
    assert "Traceback" not in stdout + stderr
    result = json.loads((started["grading"].out / "result.json").read_text())
    training = result["training"]
    assert result["status"] == "graded" and result["error"] is None
    assert training["backend"] == "jax" and training["precision"] == "float32"
    assert training["device_kind"] == "cpu" and "JAX" in training["device"]
    assert len(training["history"]["val_accuracy"]) == 1
    assert 0.0 <= result["accuracy"] <= 1.0 and training["validation"]["confusion"]
    # the training process's own line in the ledger: Keras on JAX, and TensorFlow never loaded
    assert started["grading"].trainings() == [("jax", False)]


def test_the_accelerator_benchmark_runs_every_part_on_a_small_profile(started) -> None:
    """`python -m benchmarks --accelerator` as a GPU would run it, on this CPU with the smoke
    profile, one seed, and a class of two small architectures (benchmarks/architectures.py's
    "starter") trained side by side."""
    code, stdout, stderr = started["benchmark"].finished()
    assert code == 0, stderr[-3000:]
    record = json.loads((started["benchmark"].out.with_suffix(".json")).read_text())
    assert [run["seed"] for run in record["reference"]] == [42]
    assert [run["name"] for run in record["class"]["2"]["runs"]] == ["starter", "other"]
    for run in record["reference"] + record["class"]["2"]["runs"]:
        assert run["device_kind"] == "cpu" and run["images_per_second"] > 0
        assert run["wall_seconds"] > run["compile_seconds"] > 0
        assert 0.0 <= run["accuracy"] <= 1.0
    assert "reference, accuracy" in stdout and "mean of 1 seed(s)" in stdout
    assert "class of 2, 2 at a time" in stdout
    assert "the targets apply to a GPU or TPU with the full profile" in stdout
    assert "MISSED" not in stdout and "error" not in stdout
    assert started["benchmark"].trainings() == [("jax", False)] * 3
