"""Rebuild the student's architecture in the grader, from its Keras JSON config alone.

The config comes out of an untrusted kernel. Before Keras sees it, every serialized object in it
is checked against an allow-list (:data:`ALLOWED`); Keras then deserializes it with
``safe_mode=True``. Nothing outside the allow-list is ever deserialized, and no weights exist:
the grader only ever trains fresh ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from grader.errors import GradingError
from grader.lazy import keras as keras_module

MAX_CONFIG_BYTES = 5_000_000  # the codelab's solution serializes to about 10 kB
MAX_DEPTH = 64                # nesting of the JSON document itself

# module → class names that may be deserialized. Everything else is refused before Keras runs.
ALLOWED: dict[str, frozenset[str]] = {
    "keras": frozenset({"Sequential", "Functional", "DTypePolicy", "FloatDTypePolicy"}),
    "keras.src.models.functional": frozenset({"Functional"}),  # what keras.Model(x, y) writes
    "keras.layers": frozenset({
        "InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose",
        "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "Dense", "Flatten", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
        "BatchNormalization", "LayerNormalization", "GroupNormalization",
        "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
        "Concatenate", "Add", "Average", "Maximum", "Multiply", "Subtract",
        "ZeroPadding2D", "Cropping2D", "Reshape", "Rescaling", "Identity",
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
        "RandomBrightness", "RandomCrop",
    }),
    "keras.initializers": frozenset({
        "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal",
        "RandomUniform", "RandomNormal", "TruncatedNormal", "VarianceScaling", "Orthogonal",
        "Zeros", "Ones",
    }),
    "keras.regularizers": frozenset({"L1", "L2", "L1L2", "OrthogonalRegularizer"}),
    "keras.constraints": frozenset({"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"}),
}
# Markers Keras itself writes for plain values inside a config.
STRUCTURAL = frozenset({"__tuple__", "__keras_tensor__"})


@dataclass(frozen=True)
class LayerInfo:
    name: str
    class_name: str
    output_shape: list[Any]
    params: int
    activation: str | None


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
    layers: list[LayerInfo] = field(default_factory=list)
    nested_classes: list[str] = field(default_factory=list)  # every layer, sub-models included

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


class ConfigRejected(GradingError):
    """The config holds something that may not be deserialized: the model is rejected."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__("rebuild", message)
        self.rule = rule

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.rule, self.message))


def parse_config(text: str) -> dict[str, Any]:
    """Parse the kernel's JSON with size and depth limits, then check it against the allow-list."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigRejected("config_size", f"The model's configuration is {len(text):,} bytes; "
                             f"the limit is {MAX_CONFIG_BYTES:,}. Build a smaller model.")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise GradingError("extract", f"The model configuration from the kernel is not valid "
                           f"JSON ({exc}). Re-run the notebook top to bottom.") from exc
    if not isinstance(config, dict):
        raise GradingError("extract", "The model configuration is not a JSON object.")
    check_allowed(config)
    return config


def check_allowed(node: Any, depth: int = 0) -> None:
    """Refuse any serialized object whose module and class are not in :data:`ALLOWED`."""
    if depth > MAX_DEPTH:
        raise ConfigRejected("config_depth", f"The model configuration nests deeper than "
                             f"{MAX_DEPTH} levels. Build a flatter model.")
    if isinstance(node, list):
        for item in node:
            check_allowed(item, depth + 1)
        return
    if not isinstance(node, dict):
        return
    class_name = node.get("class_name")
    if isinstance(class_name, str) and class_name not in STRUCTURAL:
        module = node.get("module")
        if class_name not in ALLOWED.get(str(module), frozenset()):
            raise ConfigRejected("allowed_layers", _refusal(module, class_name, node))
    for key, value in node.items():
        if key != "compile_config":
            check_allowed(value, depth + 1)


def _refusal(module: Any, class_name: str, node: dict[str, Any]) -> str:
    name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
    where = f" (layer '{name}')" if name else ""
    return (f"'{class_name}' from module '{module}'{where} is not allowed in this exercise. "
            f"Build the model from standard keras.layers only (Conv2D, MaxPooling2D, "
            f"GlobalAveragePooling2D, Dense, ...).")


def with_precision(config: dict[str, Any], policy: str) -> dict[str, Any]:
    """A copy of ``config`` whose layers compute in ``policy``; the output layer stays float32."""
    config = json.loads(json.dumps(config))
    config.pop("compile_config", None)
    output_names = _output_layer_names(config)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            inner = node.get("config")
            if node.get("module") == "keras.layers" and isinstance(inner, dict) \
                    and node.get("class_name") != "InputLayer":
                inner["dtype"] = "float32" if inner.get("name") in output_names else policy
            for value in node.values():
                visit(value)

    visit(config)
    return config


def _output_layer_names(config: dict[str, Any]) -> set[str]:
    inner = config.get("config", {})
    if config.get("class_name") == "Sequential":
        layers = [l for l in inner.get("layers", []) if l.get("class_name") != "InputLayer"]
        return {layers[-1]["config"]["name"]} if layers else set()
    return {str(entry[0]) for entry in inner.get("output_layers", []) if entry}


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
                        output_shape=_shape(layer), params=int(layer.count_params()),
                        activation=_activation(layer))
              for layer in model.layers]
    return ModelInfo(
        name=model.name, class_name=type(model).__name__,
        params=int(model.count_params()),
        trainable_params=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        input_shapes=[list(t.shape) for t in model.inputs],
        output_shapes=[list(t.shape) for t in model.outputs],
        output_activation=_output_activation(model), layers=layers,
        nested_classes=[type(layer).__name__ for layer in _walk(model)])


def _walk(model):
    """Every layer of the model, descending into sub-models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk(layer)


def _shape(layer) -> list[Any]:
    try:
        shape = layer.output.shape
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
