"""The exercise's rules, checked on the rebuilt model. A failed rule is data, not an exception."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from grader.exercise import Exercise
from grader.rebuild import ModelInfo

CONV_CLASSES = frozenset({"Conv2D", "SeparableConv2D", "DepthwiseConv2D"})
# Names keras.applications gives its models (MobileNetV2 → "mobilenetv2_1.00_192", ...).
APPLICATION_NAME = re.compile(r"^(mobilenet|resnet|vgg|inception|xception|densenet|nasnet|"
                              r"efficientnet|convnext|regnet)", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    id: str
    passed: bool
    message: str   # what was found, for the student
    todo: str      # what to do about it ("" when passed)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _check(rule_id: str, passed: bool, ok: str, bad: str, todo: str) -> Check:
    return Check(rule_id, passed, ok if passed else bad, "" if passed else todo)


def _from_scratch(info: ModelInfo, applications: list[dict[str, Any]]) -> Check:
    """No keras.applications model, whether the kernel saw it built or its name gives it away."""
    used = [f"keras.applications.{a.get('name')} (weights={a.get('weights')})"
            for a in applications]
    used += [f"a sub-model named '{layer.name}'" for layer in info.layers
             if layer.class_name in ("Functional", "Sequential")
             and APPLICATION_NAME.match(layer.name)]
    return _check("from_scratch", not used, "The model is built from scratch.",
                  f"The model is built on {', '.join(dict.fromkeys(used))}: that is transfer "
                  f"learning, and this exercise asks for a network built from scratch.",
                  "Remove the pretrained model and build your own stack of Conv2D and "
                  "pooling layers; the grader trains it from fresh weights.")


def check(info: ModelInfo, exercise: Exercise,
          applications: list[dict[str, Any]] | None = None) -> list[Check]:
    """Every rule, in the order the report lists them."""
    size, classes, rules = exercise.image_size, len(exercise.classes), exercise.rules
    wanted_in = [None, size, size, 3]
    inputs = info.input_shapes
    outputs = info.output_shapes
    conv = sum(1 for class_name in info.nested_classes if class_name in CONV_CLASSES)
    found_in = " and ".join("x".join(str(d) for d in shape[1:]) for shape in inputs) or "none"
    found_out = " and ".join(str(shape[-1]) for shape in outputs) or "none"
    return [
        Check("allowed_layers", True, "Every layer is a standard Keras layer.", ""),
        _from_scratch(info, applications or []),
        _check("input_shape", inputs == [wanted_in],
               f"The model takes {size}x{size}x3 images.",
               f"The model's input is {found_in}; this exercise requires {size}x{size}x3.",
               f"Give the first layer input_shape=[{size}, {size}, 3] (or start with "
               f"keras.Input(shape=({size}, {size}, 3))) and train on {size}x{size} images."),
        _check("output_classes", len(outputs) == 1 and outputs[0][-1] == classes,
               f"The model outputs {classes} class scores.",
               f"The model outputs {found_out} values; there are {classes} flower classes.",
               f"End the model with Dense({classes}, activation='softmax')."),
        _check("softmax_output", info.output_activation == "softmax",
               "The last layer is a softmax.",
               f"The last layer's activation is {info.output_activation or 'linear'}, not "
               f"softmax, so its outputs are not class probabilities.",
               "Use activation='softmax' on the last Dense layer."),
        _check("param_budget", rules.min_params <= info.params <= rules.max_params,
               f"{info.params:,} parameters, within the budget of {rules.min_params:,} to "
               f"{rules.max_params:,}.",
               f"{info.params:,} parameters, outside the budget of {rules.min_params:,} to "
               f"{rules.max_params:,}.",
               "Too few parameters underfit: add convolutional layers or filters. Too many "
               "overfit and train slowly: replace Flatten→Dense with GlobalAveragePooling2D."),
        _check("conv_layers", conv >= rules.min_conv_layers,
               f"{conv} convolutional layer(s).",
               f"{conv} convolutional layer(s); the exercise asks for at least "
               f"{rules.min_conv_layers}.",
               "Build the model from Conv2D layers: this is a convolutional network exercise."),
    ]


def rejected(rule_id: str, message: str, todo: str) -> list[Check]:
    """The checks of a model refused before it could be rebuilt (e.g. a disallowed layer)."""
    return [Check(rule_id, False, message, todo)]
