"""The exercise's rules. A failed rule is data (a row of the result), not an exception.

Rules come in two groups. The config rules (allow-lists and from-scratch: Lambda layers, custom
classes, TF-Hub, initializers, frozen layers) are decided on the config's text before Keras reads
it; the model rules (shapes, budget, convolutions, activation size, keras.applications, loaded
weights) on the rebuilt model. A config that breaks an unsafe rule is never rebuilt, and the
model rules are then reported as not checked.

Each rule is declared once, in RULES: the report's order and every set of rules follow from it,
the exercise loader requires its texts, and a model rule carries the function that decides it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.result import Check

if TYPE_CHECKING:  # types only: the exercise loader reads RULES, so no import back at run time
    from grader.exercise import Exercise
    from grader.model.rebuild import Finding, ModelInfo

# Names keras.applications gives its models and layers (MobileNetV2 → "mobilenetv2_1.00_192").
APPLICATION_NAME = re.compile(r"^(mobilenet|resnet|vgg|inception|xception|densenet|nasnet|"
                              r"efficientnet|convnext|regnet)", re.IGNORECASE)


@dataclass(frozen=True)
class Facts:
    """What a model rule is decided on."""
    info: ModelInfo
    exercise: Exercise
    records: dict[str, list[dict[str, Any]]]   # what the kernel saw built or loaded


@dataclass(frozen=True)
class Rule:
    """One rule. Its texts (`rule`, `todo`) are in the exercise file under [rules.text.ID]."""
    id: str
    decided_on: str   # "config": on the JSON text, before Keras reads it; "model": rebuilt
    unsafe: bool = False   # broken: the config is never handed to Keras
    # model rules: whether the model passes, and what the grader found (with the numbers)
    decide: Callable[[Facts], tuple[bool, str]] | None = None


def _shape_text(shapes: list[list[Any]]) -> str:
    return " and ".join("x".join(str(d) for d in shape[1:]) for shape in shapes) or "none"


def _input_shape(facts: Facts) -> tuple[bool, str]:
    size, shapes = facts.exercise.image_size, facts.info.input_shapes
    return (shapes == [[None, size, size, 3]],
            f"The model's input is {_shape_text(shapes)}; the exercise requires {size}x{size}x3.")


def _output_classes(facts: Facts) -> tuple[bool, str]:
    classes, outputs = len(facts.exercise.classes), facts.info.output_shapes
    return (len(outputs) == 1 and list(outputs[0][1:]) == [classes],
            f"The model outputs {_shape_text(outputs)} values per image; there are {classes} "
            f"classes.")


def _softmax_output(facts: Facts) -> tuple[bool, str]:
    activation = facts.info.output_activation
    return activation == "softmax", f"The last layer's activation is {activation or 'linear'}."


def _min_params(facts: Facts) -> tuple[bool, str]:
    params, least = facts.info.params, facts.exercise.rules.min_params
    return params >= least, f"{params:,} parameters (minimum {least:,})."


def _max_params(facts: Facts) -> tuple[bool, str]:
    params, most = facts.info.params, facts.exercise.rules.max_params
    return params <= most, f"{params:,} parameters (maximum {most:,})."


def _conv_layers(facts: Facts) -> tuple[bool, str]:
    found, least = facts.info.conv_layers, facts.exercise.rules.min_conv_layers
    return found >= least, f"{found} convolution layer(s) (at least {least})."


def _max_activation(facts: Facts) -> tuple[bool, str]:
    size, most = facts.info.activation_size, facts.exercise.rules.max_activation
    return size <= most, f"The convolutions output {size:,} values per image (at most {most:,})."


def _applications(facts: Facts) -> tuple[bool, str]:
    """keras.applications, whether the kernel saw it built or the names give it away."""
    used = [f"keras.applications.{a.get('name')} with weights={a.get('weights')}"
            for a in facts.records.get("applications", [])]
    used += [f"the sub-model '{layer.name}'" for layer in facts.info.layers
             if layer.class_name in ("Functional", "Sequential")
             and APPLICATION_NAME.match(layer.name)]
    return not used, ("The model is built on " + ", ".join(dict.fromkeys(used)) +
                      ": that is transfer learning.") if used else "None found."


def _loaded_weights(facts: Facts) -> tuple[bool, str]:
    calls = [f"{load.get('call')}({load.get('source', '')})"
             for load in facts.records.get("loaded_weights", [])]
    return not calls, ("The notebook called " + ", ".join(dict.fromkeys(calls)) + ".") \
        if calls else "None found."


# Every rule, in the order reports list them. The config rules are found by rebuild.scan.
RULES: tuple[Rule, ...] = (
    Rule("input_shape", "model", decide=_input_shape),
    Rule("output_classes", "model", decide=_output_classes),
    Rule("softmax_output", "model", decide=_softmax_output),
    Rule("min_params", "model", decide=_min_params),
    Rule("max_params", "model", decide=_max_params),
    Rule("conv_layers", "model", decide=_conv_layers),
    Rule("max_activation", "model", decide=_max_activation),
    Rule("allowed_layers", "config", unsafe=True),
    Rule("lambda_layer", "config", unsafe=True),
    Rule("custom_class", "config", unsafe=True),
    Rule("tf_hub", "config", unsafe=True),
    Rule("initializers", "config", unsafe=True),
    Rule("frozen_layers", "config"),
    Rule("applications", "model", decide=_applications),
    Rule("loaded_weights", "model", decide=_loaded_weights),
)
ORDER = tuple(rule.id for rule in RULES)
MODEL_RULES = tuple(rule.id for rule in RULES if rule.decided_on == "model")
CONFIG_RULES = tuple(rule.id for rule in RULES if rule.decided_on == "config")
UNSAFE = frozenset(rule.id for rule in RULES if rule.unsafe)


def _found_in_config(rule_id: str, findings: list[Finding]) -> tuple[bool, str]:
    found = [f.detail for f in findings if f.rule == rule_id]
    message = "; ".join(dict.fromkeys(found))[:600] + "." if found else "None found."
    return not found, message[0].upper() + message[1:]


def check(info: ModelInfo | None, findings: list[Finding], exercise: Exercise,
          records: dict[str, list[dict[str, Any]]] | None = None) -> list[Check]:
    """Every rule, in the order the report lists them. ``info`` is None when the config broke
    an unsafe rule and was never rebuilt: the model rules are then not checked."""
    facts = Facts(info, exercise, records or {}) if info is not None else None
    checks = []
    for rule in RULES:
        if rule.decided_on == "config":
            passed, found = _found_in_config(rule.id, findings)
        elif facts is None:
            passed, found = None, "Not checked: the model could not be rebuilt safely."
        else:
            passed, found = rule.decide(facts)
        text = exercise.rules.text[rule.id]
        checks.append(Check(rule.id, passed, text.rule, found,
                            text.todo if passed is False else ""))
    return checks


def unsafe(findings: list[Finding]) -> bool:
    """Whether the config may not be handed to Keras at all."""
    return any(f.rule in UNSAFE for f in findings)


def too_large(rule_id: str, message: str) -> list[Check]:
    """The one check of a config too large or deep to read."""
    return [Check(rule_id, False, "The model's configuration is of a readable size.", message,
                  "Build a smaller model from standard layers.")]


def score(checks: list[Check], accuracy: float | None, exercise: Exercise) -> float:
    """Rule points shared equally by the checks, plus accuracy points and the stretch bonus.

    Accuracy points rise linearly from chance to the target; the bonus from the target to the
    stretch. A model that was not trained (accuracy None) gets its rule points only.
    """
    rubric, target = exercise.rubric, exercise.target
    points = rubric.rule_points * sum(c.passed is True for c in checks) / len(checks) \
        if checks else 0.0
    if accuracy is not None:
        points += rubric.accuracy_points * _ramp(accuracy, rubric.chance, target.accuracy)
        points += rubric.stretch_bonus * _ramp(accuracy, target.accuracy, target.stretch)
    return round(points, 2)


def _ramp(value: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (value - low) / (high - low))) if high > low else float(value >= high)
