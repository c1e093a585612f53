"""Choosing the training backend (grader.training.backend) and JAX's device and precision
(grader.training.portable.detect), without training. There is no GPU or TPU here: where a test
needs JAX to see one, it replaces the answer JAX would give (and says so)."""

from __future__ import annotations

import importlib.metadata
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, run_grade
from grader import lazy
from grader.batch.driver import Batch
from grader.batch.keys import Keys
from grader.errors import GradingError
from grader.exercise import load_exercise
from grader.training import backend, portable


@pytest.fixture(autouse=True)
def _fresh_probe():
    backend.accelerator.cache_clear()
    yield
    backend.accelerator.cache_clear()


def _no_probe(*args, **kwargs):
    raise AssertionError("JAX was asked for its accelerator")


def test_tensorflow_is_chosen_when_asked_and_where_jax_sees_no_accelerator(monkeypatch) -> None:
    monkeypatch.setattr(subprocess, "run", _no_probe)
    assert backend.choose("tensorflow") == "tensorflow"
    # JAX installed (the test extra) but no GPU plugin and no libtpu: nothing is started
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    monkeypatch.setattr(backend.importlib.util, "find_spec",
                        lambda name: None if name == "libtpu" else object())
    assert backend.choose("auto") == "tensorflow"


def test_jax_is_chosen_where_its_plugin_sees_a_gpu(monkeypatch) -> None:
    """Mocked: an installed CUDA plugin, and JAX's answer "gpu" (no GPU exists here)."""
    asked = []

    def probe(command, **kwargs):
        asked.append(kwargs["env"])
        return SimpleNamespace(stdout="gpu\n", stderr="")

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: ["jax_cuda12_plugin"])
    monkeypatch.setattr(subprocess, "run", probe)
    assert backend.choose("auto") == "jax"
    assert backend.choose("auto") == "jax" and len(asked) == 1   # asked once per process
    assert asked[0]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_a_plugin_that_finds_no_gpu_leaves_tensorflow(monkeypatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: ["jax_cuda12_plugin"])
    monkeypatch.setattr(subprocess, "run",
                        lambda command, **kwargs: SimpleNamespace(stdout="cpu\n", stderr=""))
    assert backend.choose("auto") == "tensorflow"


def test_jax_asked_for_where_it_is_not_installed_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(GradingError) as raised:
        backend.choose("jax")
    assert raised.value.stage == "usage"
    assert "pip install 'flowers-grader[jax]'" in raised.value.message
    assert backend.choose("auto") == "tensorflow"


def test_an_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(GradingError, match="Unknown backend 'torch'"):
        backend.choose("torch")
    process = run_grade("notebook", ROOT / "x.ipynb", "--data", ROOT, "--out", ROOT / "build",
                        "--backend", "torch")
    assert process.returncode == 2 and "'torch' is not one of" in process.stderr


def test_a_jax_process_gets_its_environment() -> None:
    assert backend.process_env("tensorflow") == {"KERAS_BACKEND": "tensorflow"}
    env = backend.process_env("jax", deterministic=True)
    assert env["KERAS_BACKEND"] == "jax" and env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert "--xla_gpu_deterministic_ops=true" in env["XLA_FLAGS"]
    assert "XLA_FLAGS" not in backend.process_env("jax", deterministic=False)


def test_a_jax_process_refuses_tensorflow(monkeypatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(RuntimeError, match="TensorFlow was asked for in a jax process"):
        lazy.tensorflow()


def test_the_backend_is_part_of_the_training_key(tmp_path: Path) -> None:
    from grader.training.data import synthesize

    exercise = load_exercise()
    synthesize(tmp_path / "data", exercise.classes, 10, 32, 0, shards=2)
    batch = Batch(tmp_path, tmp_path / "data", tmp_path / "out", exercise,
                  exercise.profile("smoke"))
    on_jax = Keys(replace(batch, backend="jax"))
    assert Keys(batch).training("a") != on_jax.training("a")
    assert Keys(batch).inspection("n") == on_jax.inspection("n")   # kernels are the same


@pytest.mark.parametrize("platform, capability, expected", [
    ("gpu", "9.0", "mixed_bfloat16"), ("gpu", "8.6", "mixed_bfloat16"),
    ("gpu", "7.5", "mixed_float16"), ("gpu", "6.1", "float32"), ("tpu", None, "mixed_bfloat16"),
    ("cpu", None, "float32")])
def test_jax_devices_get_their_precision(monkeypatch, platform: str, capability: str | None,
                                         expected: str) -> None:
    """Mocked: the device JAX would list (none but the CPU exists here)."""
    import jax

    device = SimpleNamespace(platform=platform, device_kind=f"a {platform}",
                             compute_capability=capability)
    monkeypatch.setattr(jax, "devices", lambda: [device])
    found = portable.detect()
    assert (found.kind, found.precision) == (platform, expected)
    assert portable.detect("float32").precision == "float32"
    assert "JAX" in found.description


def test_a_batch_train_task_for_jax_starts_a_jax_process(tmp_path: Path) -> None:
    """grade batch's train task process is itself the training's process (grader.batch.tasks),
    so its environment is the backend's; inspections keep the grader's."""
    from grader.batch.tasks import _env
    from grader.training.job import TrainingJob

    exercise = load_exercise()
    job = TrainingJob(tmp_path, None, exercise, exercise.profile("smoke"), "auto",
                      backend="jax", deterministic=True)
    assert _env("train", ({}, job)) == backend.process_env("jax", True)
    assert _env("train", ({}, replace(job, backend="tensorflow"))) == \
        {"KERAS_BACKEND": "tensorflow"}
    assert _env("inspect", object()) == {}
