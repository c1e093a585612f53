"""The exercise's rules. A failed rule is data (a row of the result), not an exception.

Rules come in two groups. The config rules (allow-lists and from-scratch: Lambda layers, custom
classes, TF-Hub, initializers, frozen layers) are decided on the config's text before Keras reads
it; the model rules (shapes, budget, convolutions, activation size, keras.applications, loaded
weights) on the rebuilt model. A config that breaks an unsafe rule is never rebuilt, and the
model rules are then reported as not checked.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from grader.exercise import Exercise
from grader.rebuild import CONVOLUTIONS, UNSAFE, Finding, ModelInfo

# Names keras.applications gives its models and layers (MobileNetV2 → "mobilenetv2_1.00_192").
APPLICATION_NAME = re.compile(r"^(mobilenet|resnet|vgg|inception|xception|densenet|nasnet|"
                              r"efficientnet|convnext|regnet)", re.IGNORECASE)
MODEL_RULES = ("input_shape", "output_classes", "softmax_output", "min_params", "max_params",
               "conv_layers", "max_activation", "applications", "loaded_weights")
CONFIG_RULES = ("allowed_layers", "lambda_layer", "custom_class", "tf_hub", "initializers",
                "frozen_layers")
ORDER = MODEL_RULES[:7] + CONFIG_RULES + MODEL_RULES[7:]


@dataclass(frozen=True)
class Check:
    id: str
    passed: bool | None   # None: not checked (the model could not be rebuilt)
    rule: str             # the rule, as the exercise states it
    message: str          # what the grader found
    todo: str             # what to do about it ("" unless it failed)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _make(exercise: Exercise, rule_id: str, passed: bool | None, found: str) -> Check:
    text = exercise.rules.text[rule_id]
    return Check(rule_id, passed, text.rule, found, text.todo if passed is False else "")


def _config_checks(findings: list[Finding], exercise: Exercise) -> dict[str, Check]:
    checks = {}
    for rule_id in CONFIG_RULES:
        found = [f.detail for f in findings if f.rule == rule_id]
        message = "; ".join(dict.fromkeys(found))[:600] + "." if found else "None found."
        checks[rule_id] = _make(exercise, rule_id, not found, message[0].upper() + message[1:])
    return checks


def _shape_text(shapes: list[list[Any]]) -> str:
    return " and ".join("x".join(str(d) for d in shape[1:]) for shape in shapes) or "none"


def _model_checks(info: ModelInfo, exercise: Exercise,
                  records: dict[str, list[dict[str, Any]]]) -> dict[str, Check]:
    size, classes, rules = exercise.image_size, len(exercise.classes), exercise.rules
    conv = sum(1 for class_name in info.nested_classes if class_name in CONVOLUTIONS)
    outputs = info.output_shapes
    return {
        "input_shape": _make(exercise, "input_shape", info.input_shapes == [[None, size, size, 3]],
                             f"The model's input is {_shape_text(info.input_shapes)}; the "
                             f"exercise requires {size}x{size}x3."),
        "output_classes": _make(exercise, "output_classes",
                                len(outputs) == 1 and list(outputs[0][1:]) == [classes],
                                f"The model outputs {_shape_text(outputs)} values per image; "
                                f"there are {classes} classes."),
        "softmax_output": _make(exercise, "softmax_output", info.output_activation == "softmax",
                                f"The last layer's activation is "
                                f"{info.output_activation or 'linear'}."),
        "min_params": _make(exercise, "min_params", info.params >= rules.min_params,
                            f"{info.params:,} parameters (minimum {rules.min_params:,})."),
        "max_params": _make(exercise, "max_params", info.params <= rules.max_params,
                            f"{info.params:,} parameters (maximum {rules.max_params:,})."),
        "conv_layers": _make(exercise, "conv_layers", conv >= rules.min_conv_layers,
                             f"{conv} convolution layer(s) (at least {rules.min_conv_layers})."),
        "max_activation": _make(exercise, "max_activation",
                                info.activation_size <= rules.max_activation,
                                f"The convolutions output {info.activation_size:,} values "
                                f"per image "
                                f"(at most {rules.max_activation:,})."),
        "applications": _applications(info, exercise, records.get("applications", [])),
        "loaded_weights": _loaded(exercise, records.get("loaded_weights", [])),
    }


def _applications(info: ModelInfo, exercise: Exercise, built: list[dict[str, Any]]) -> Check:
    """keras.applications, whether the kernel saw it built or the names give it away."""
    used = [f"keras.applications.{a.get('name')} with weights={a.get('weights')}" for a in built]
    used += [f"the sub-model '{layer.name}'" for layer in info.layers
             if layer.class_name in ("Functional", "Sequential")
             and APPLICATION_NAME.match(layer.name)]
    found = ("The model is built on " + ", ".join(dict.fromkeys(used)) +
             ": that is transfer learning.") if used else "None found."
    return _make(exercise, "applications", not used, found)


def _loaded(exercise: Exercise, loads: list[dict[str, Any]]) -> Check:
    calls = [f"{load.get('call')}({load.get('source', '')})" for load in loads]
    found = ("The notebook called " + ", ".join(dict.fromkeys(calls)) + ".") if calls \
        else "None found."
    return _make(exercise, "loaded_weights", not calls, found)


def check(info: ModelInfo | None, findings: list[Finding], exercise: Exercise,
          records: dict[str, list[dict[str, Any]]] | None = None) -> list[Check]:
    """Every rule, in the order the report lists them. ``info`` is None when the config broke
    an unsafe rule and was never rebuilt: the model rules are then not checked."""
    checks = _config_checks(findings, exercise)
    if info is None:
        for rule_id in MODEL_RULES:
            checks[rule_id] = _make(exercise, rule_id, None, "Not checked: the model could not "
                                    "be rebuilt safely.")
    else:
        checks.update(_model_checks(info, exercise, records or {}))
    return [checks[rule_id] for rule_id in ORDER]


def unsafe(findings: list[Finding]) -> bool:
    """Whether the config may not be handed to Keras at all."""
    return any(f.rule in UNSAFE for f in findings)


def too_large(rule_id: str, message: str) -> list[Check]:
    """The one check of a config too large or deep to read."""
    return [Check(rule_id, False, "The model's configuration is of a readable size.", message,
                  "Build a smaller model from standard layers.")]
