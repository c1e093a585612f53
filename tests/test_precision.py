"""The precision policy: bf16 only where the hardware multiplies it natively, and the model's
output (the softmax) in float32 whatever the policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.exercise import load_exercise
from grader.model.rebuild import build
from grader.training import device
from grader.training.job import TrainingJob


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\n"
                       "flags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n\nprocessor\t: 1\n")
    assert {"avx512f", "avx512_bf16"} <= device.cpu_flags(cpuinfo)
    assert device.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("flags, policy", [
    ({"avx512f", "avx512_bf16"}, "mixed_bfloat16"),   # AVX-512 BF16 (Cooper Lake, Zen 4)
    ({"amx_tile", "amx_bf16"}, "mixed_bfloat16"),     # AMX (Sapphire Rapids)
    ({"avx512f", "avx2"}, "float32"),                 # AVX-512 without BF16: emulated, slower
    (set(), "float32"),
])
def test_cpus_get_bf16_only_with_native_support(flags: set[str], policy: str) -> None:
    assert device.cpu_precision(flags) == policy


@pytest.mark.parametrize("capability, policy", [
    ((9, 0), "mixed_bfloat16"), ((8, 0), "mixed_bfloat16"),   # Ampere and later
    ((7, 5), "mixed_float16"), ((7, 0), "mixed_float16"),     # tensor cores, no bf16
    ((6, 1), "float32"), (None, "float32"),
])
def test_gpus_get_the_half_precision_their_tensor_cores_have(capability, policy) -> None:
    assert device.gpu_precision(capability) == policy


@pytest.mark.parametrize("asked, profile, chosen", [
    ("auto", "demo", "float32"),        # tuned in float32: bf16 reached 0.70 instead of 0.84
    ("auto", "smoke", "auto"),          # the hardware's
    ("mixed_bfloat16", "demo", "mixed_bfloat16"),   # --precision wins
])
def test_a_profile_keeps_the_precision_it_was_tuned_in(asked: str, profile: str,
                                                        chosen: str) -> None:
    exercise = load_exercise()
    job = TrainingJob(Path("data"), None, exercise, exercise.profile(profile), asked)
    assert job.chosen_precision() == chosen


def _models():
    from grader.lazy import keras as keras_module
    keras = keras_module()
    layers = keras.layers

    sequential = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(4, 3),
                                   layers.GlobalAveragePooling2D(),
                                   layers.Dense(5, activation="softmax")])
    inputs = keras.Input((16, 16, 3))
    x = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(inputs))
    single = keras.Model(inputs, layers.Dense(5, activation="softmax")(x))
    head_in = keras.Input((4,))
    head = keras.Model(head_in, layers.Activation("softmax")(layers.Dense(5)(head_in)),
                       name="head")
    nested = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(4, 3),
                               layers.GlobalAveragePooling2D(), head])
    return {"sequential": sequential, "functional, one output": single,
            "ending in a sub-model": nested}


@pytest.mark.training
def test_under_bf16_every_layer_computes_in_bf16_but_the_output_is_float32() -> None:
    from grader.lazy import keras as keras_module
    from grader.model.rebuild import walk_layers
    keras = keras_module()
    images = np.zeros((2, 16, 16, 3), "float32")

    for name, model in _models().items():
        config = keras.saving.serialize_keras_object(model)
        rebuilt = build(config, "mixed_bfloat16")
        assert rebuilt(images).dtype.name == "float32", name
        computing = [l.dtype_policy.name for l in walk_layers(rebuilt)
                     if l.weights and not hasattr(l, "layers")]
        assert computing[0] == "mixed_bfloat16", name   # the convolution
        # A bf16 build leaves nothing behind: the next float32 build computes in float32.
        plain = build(config, "float32")
        assert {l.dtype_policy.name for l in walk_layers(plain)} == {"float32"}, name
