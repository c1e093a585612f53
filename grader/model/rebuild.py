"""Rebuild the student's architecture in the grader, from its Keras JSON config alone.

The config comes out of an untrusted kernel. Before Keras sees it, every serialized object in it
is checked against the exercise's allow-lists (:func:`scan`); Keras then deserializes it with
``safe_mode=True``. Nothing outside the allow-list is ever deserialized, and no weights exist:
the grader only ever trains fresh ones.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from grader.errors import GradingError
from grader.exercise import Rules
from grader.lazy import keras as keras_module
from grader.model.architecture import with_precision

MAX_CONFIG_BYTES = 5_000_000  # the codelab's solution serializes to about 10 kB
MAX_DEPTH = 64                # nesting of the JSON document itself

# Serialized objects other than layers and initializers that a plain model config contains.
# Layers and initializers come from the exercise's allow-lists (exercise.toml [rules]).
ALWAYS_ALLOWED: dict[str, frozenset[str]] = {
    "keras": frozenset({"Sequential", "Functional", "DTypePolicy", "FloatDTypePolicy"}),
    "keras.src.models.functional": frozenset({"Functional"}),  # what keras.Model(x, y) writes
    "keras.regularizers": frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"}),
    "keras.constraints": frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}),
}
# Markers Keras itself writes for plain values inside a config.
STRUCTURAL = frozenset({"__tuple__", "__keras_tensor__"})
CONVOLUTIONS = frozenset({"Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose"})


@dataclass(frozen=True)
class Finding:
    """One violation of a from-scratch or allow-list rule, found in the config's text."""
    rule: str
    detail: str


@dataclass(frozen=True)
class LayerInfo:
    name: str
    class_name: str
    input_shape: list[Any]
    output_shape: list[Any]
    params: int
    activation: str | None
    units: int | None       # Dense layers: output units


@dataclass(frozen=True)
class ModelInfo:
    """What the rules and the report need to know about the rebuilt model."""
    name: str
    class_name: str
    params: int
    trainable_params: int
    input_shapes: list[list[Any]]
    output_shapes: list[list[Any]]
    output_activation: str | None
    activation_size: int    # values the convolutions output for one image, summed
    layers: list[LayerInfo] = field(default_factory=list)
    nested_classes: list[str] = field(default_factory=list)  # every layer, sub-models included

    @property
    def conv_layers(self) -> int:
        """Convolution layers, sub-models included."""
        return sum(1 for class_name in self.nested_classes if class_name in CONVOLUTIONS)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelInfo":
        """The inverse of as_dict (a batch passes descriptions between processes as JSON)."""
        names = {f.name for f in fields(cls)}
        kept = {key: value for key, value in values.items() if key in names}
        kept["layers"] = [LayerInfo(**layer) for layer in kept.get("layers", [])]
        return cls(**kept)


class ConfigRejected(GradingError):
    """The config is too large or deep to be read at all: the model is rejected."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__("rebuild", message)
        self.rule = rule

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.rule, self.message))


def parse_config(text: str) -> dict[str, Any]:
    """Parse the kernel's JSON with size and depth limits."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigRejected("config_size", f"The model's configuration is {size:,} bytes; "
                             f"the limit is {MAX_CONFIG_BYTES:,}. Build a smaller model.")
    _bracket_depth(text)
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GradingError("extract", f"The model configuration from the kernel is not valid "
                           f"JSON ({exc}). Re-run the notebook top to bottom.") from exc
    if not isinstance(config, dict):
        raise GradingError("extract", "The model configuration is not a JSON object.")
    _depth(config, 0)
    return config


STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def _bracket_depth(text: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH before the JSON parser recurses into it
    (10,000 nested layers would exhaust its recursion instead of being rejected)."""
    depth = 0
    for char in STRINGS.sub("", text):
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigRejected("config_depth", f"The model's configuration nests deeper "
                                     f"than {MAX_DEPTH} levels. Build a flatter model.")
        elif char in "]}":
            depth -= 1


def _depth(node: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ConfigRejected("config_depth", f"The model configuration nests deeper than "
                             f"{MAX_DEPTH} levels. Build a flatter model.")
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        _depth(child, depth + 1)


def scan(config: dict[str, Any], rules: Rules) -> list[Finding]:
    """Every from-scratch and allow-list violation in the config, before Keras sees any of it."""
    findings: list[Finding] = []

    def visit(node: Any, key: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item, key)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("class_name"), str) and node["class_name"] not in STRUCTURAL:
            finding = _classify(node, key, rules)
            if finding:
                findings.append(finding)
                return  # what is inside a refused object is part of the same finding
        inner = node.get("config")
        if isinstance(inner, dict) and inner.get("trainable") is False \
                and node.get("module") in ("keras.layers", "keras", "keras.src.models.functional"):
            findings.append(Finding("frozen_layers", f"'{inner.get('name')}' is set "
                                                     f"trainable=False"))
        for child_key, value in node.items():
            if child_key not in ("compile_config", "build_config"):
                visit(value, child_key)

    visit(config, None)
    return findings


def _classify(node: dict[str, Any], key: str | None, rules: Rules) -> Finding | None:
    """The rule a serialized object breaks, if any."""
    module, class_name = str(node.get("module")), node["class_name"]
    inner = node.get("config") if isinstance(node.get("config"), dict) else {}
    name = f"'{inner['name']}'" if isinstance(inner.get("name"), str) else f"a {class_name}"
    if class_name == "__lambda__":
        return Finding("lambda_layer", "the configuration embeds Python code")
    if class_name == "__numpy__":
        return Finding("initializers", f"the configuration embeds an array of "
                                       f"{_count(node):,} values")
    if module == "keras.initializers" or (key or "").endswith("_initializer"):
        if class_name == "Constant" or class_name not in rules.allowed_initializers:
            value = inner.get("value")
            size = f" holding {_count(value):,} values" if isinstance(value, (list, dict)) else ""
            return Finding("initializers", f"the initializer {class_name}{size} "
                                           f"(in {key or 'a layer'})")
        return None
    if module.startswith("tensorflow_hub") or class_name == "KerasLayer":
        return Finding("tf_hub", f"{name} is a TensorFlow Hub layer ({module}.{class_name})")
    if class_name == "Lambda":
        return Finding("lambda_layer", f"{name} is a Lambda layer")
    if module == "keras.layers" and node.get("registered_name") in (None, class_name):
        if class_name in rules.allowed_layers:
            return None
        return Finding("allowed_layers", f"{name} is a {class_name}, which is not on the "
                                         f"exercise's list of layers")
    if class_name in ALWAYS_ALLOWED.get(module, frozenset()):
        return None
    registered = node.get("registered_name") or f"{module}.{class_name}"
    return Finding("custom_class", f"{name} is the custom class {registered}")


def _count(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count(v) for v in value) if value and isinstance(value[0], list) else len(value)
    if isinstance(value, dict):  # Keras writes arrays as {"class_name": "__numpy__", ...}
        return _count(value.get("config", {}).get("value", []))
    return 1


def build(config: dict[str, Any], policy: str = "float32"):
    """Deserialize the checked config into a fresh Keras model (random, untrained weights)."""
    keras = keras_module()

    checked = with_precision(config, policy)
    try:
        model = keras.saving.deserialize_keras_object(checked, safe_mode=True)
    except Exception as exc:  # Keras raises many types for malformed configs
        raise GradingError("rebuild", f"Keras could not rebuild the model from its "
                           f"configuration: {type(exc).__name__}: {exc}. Make sure the model "
                           f"cell runs on its own and builds a standard Keras model.") from exc
    if not isinstance(model, keras.Model):
        raise GradingError("rebuild", "The configuration does not describe a Keras model.")
    return model


def describe(model) -> ModelInfo:
    """Count parameters and list layers of a rebuilt model, from the model itself."""
    layers = [LayerInfo(name=layer.name, class_name=type(layer).__name__,
                        input_shape=_shape(layer, "input"), output_shape=_shape(layer),
                        params=int(layer.count_params()), activation=_activation(layer),
                        units=getattr(layer, "units", None))
              for layer in model.layers]
    return ModelInfo(
        name=model.name, class_name=type(model).__name__,
        params=int(model.count_params()),
        trainable_params=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        input_shapes=[list(t.shape) for t in model.inputs],
        output_shapes=[list(t.shape) for t in model.outputs],
        output_activation=_output_activation(model),
        activation_size=sum(_values(_shape(layer)) for layer in walk_layers(model)
                            if type(layer).__name__ in CONVOLUTIONS), layers=layers,
        nested_classes=[type(layer).__name__ for layer in walk_layers(model)])


def walk_layers(model):
    """Every layer of the model, descending into sub-models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from walk_layers(layer)


def _values(shape: list[Any]) -> int:
    """Values per image of an output shape (nested lists for multi-output layers)."""
    if shape and isinstance(shape[0], list):
        return sum(_values(s) for s in shape)
    return math.prod(int(d) for d in shape[1:] if d is not None) if shape else 0


def _shape(layer, which: str = "output") -> list[Any]:
    try:
        shape = getattr(layer, which).shape
    except (AttributeError, ValueError):
        return []
    return list(shape) if not isinstance(shape, list) else [list(s) for s in shape]


def _activation(layer) -> str | None:
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


def _output_activation(model) -> str | None:
    """The activation that produces the model's (first) output."""
    if not model.outputs:
        return None
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history[0] if history else model.layers[-1]
    return _activation(layer)
