"""The backend-parity computations of test_backends.py, run by that test in its own process
(TensorFlow) and here, in a process whose Keras runs on JAX:
``KERAS_BACKEND=jax python tests/backend_worker.py augment|steps IN.npz OUT.npz``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def augmented(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """grader.training.portable.augment of the inputs' images for the inputs' draws."""
    from grader.lazy import keras
    from grader.training.portable import augment

    ops = keras().ops
    tensors = {name: ops.convert_to_tensor(value) for name, value in inputs.items()}
    return np.asarray(ops.convert_to_numpy(augment(
        tensors["images"], tensors["flips"], tensors["sides"], tensors["offsets"],
        tensors["contrast"], tensors["brightness"])))


def losses(inputs: dict[str, np.ndarray], steps: int = 2) -> np.ndarray:
    """The training losses of ``steps`` steps on one batch, from the inputs' weights: the
    trusted training's model (portable.compiled) with the smoke profile, augmentation off."""
    from dataclasses import replace

    from grader.exercise import load_exercise
    from grader.training.portable import compiled

    config = json.loads(str(inputs["config"]))
    profile = replace(load_exercise().profile("smoke"), augment=False)
    model, inner = compiled(config, profile, 10, inputs["images"].shape[1])
    inner.set_weights([inputs[f"weight_{i}"] for i in range(len(inner.weights))])
    found = [model.train_on_batch(inputs["images"], inputs["targets"], return_dict=True)["loss"]
             for _ in range(steps)]
    return np.asarray(found, dtype="float64")


def main(what: str, given: str, out: str) -> int:
    with np.load(given, allow_pickle=False) as loaded:
        inputs = dict(loaded)
    np.save(out, augmented(inputs) if what == "augment" else losses(inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
