"""A model's Keras JSON config as data: its names, the hash of its architecture, and the copies
trusted training builds (names TensorFlow accepts, the precision of each layer).

Nothing here imports Keras: these are pure functions of the JSON document, which has already
passed the size, depth and allow-list checks of grader.model.rebuild.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

SCOPE_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SCOPE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_NESTING = 64   # sub-models inside sub-models followed to the output layer


def _objects(node: Any):
    """Every dict in a JSON document, parents before children."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item)


def with_precision(config: dict[str, Any], policy: str) -> dict[str, Any]:
    """A copy of ``config`` whose layers compute in ``policy``; the output layer stays float32."""
    config = json.loads(json.dumps(config))
    config.pop("compile_config", None)
    outputs = {id(node) for node in _output_layers(config)}
    for node in _objects(config):
        inner = node.get("config")
        if node.get("module") == "keras.layers" and isinstance(inner, dict) \
                and node.get("class_name") != "InputLayer":
            inner["dtype"] = "float32" if id(node) in outputs else policy
    return config


def _names(config: dict[str, Any]) -> list[str]:
    """Every model and layer name in a config, in order of first appearance."""
    names = (node["config"]["name"] for node in _objects(config)
             if isinstance(node.get("config"), dict)
             and isinstance(node["config"].get("name"), str))
    return list(dict.fromkeys(names))


# Where a Keras config names a layer or a model: its own "name" (in its config, and beside it in
# a functional model's list of layers), and the references to it, each [name, node, tensor]: a
# tensor's keras_history and a functional model's input and output layer lists. Nowhere else:
# an option's value that happens to equal a name (activation "relu" in a layer named "relu") is
# not a name.
REFERENCE_KEYS = ("keras_history", "input_layers", "output_layers")


def _renamed(node: Any, renames: dict[str, str], key: str | None = None) -> Any:
    """A copy with every name in ``renames`` replaced where the config names a layer or model
    or refers to one."""
    if isinstance(node, dict):
        return {name: _renamed(value, renames, name) for name, value in node.items()}
    if isinstance(node, list):
        if key in REFERENCE_KEYS:
            return _renamed_reference(node, renames)
        return [_renamed(item, renames) for item in node]
    if key == "name" and isinstance(node, str):
        return renames.get(node, node)
    return node


def _renamed_reference(reference: list[Any], renames: dict[str, str]) -> list[Any]:
    """[name, node, tensor], or a list of them, with the name replaced."""
    if reference and isinstance(reference[0], str):
        return [renames.get(reference[0], reference[0]), *reference[1:]]
    return [_renamed_reference(item, renames) if isinstance(item, list) else item
            for item in reference]


def scope_safe(config: dict[str, Any]) -> dict[str, Any]:
    """A copy whose model and layer names are valid TensorFlow name scopes.

    Keras accepts names like '<b>my model' that TensorFlow refuses as name scopes when the model
    runs. Every name outside [A-Za-z0-9_.-] is replaced, consistently wherever the config
    repeats it, so the trusted copy trains.
    """
    renames = {name: f"layer_{index}_{SCOPE_UNSAFE.sub('_', name)}"
               for index, name in enumerate(sorted(_names(config)))
               if not SCOPE_SAFE.match(name)}
    return _renamed(config, renames) if renames else config


def architecture(config: dict[str, Any]) -> str:
    """A canonical hash of the architecture: the config with every name replaced by its order
    of appearance and the student's compile settings left out. Two models that differ only in
    their names (or their optimizer) hash alike; the trusted training of one serves both."""
    uncompiled = {key: value for key, value in config.items() if key != "compile_config"}
    canonical = _renamed(uncompiled, {name: f"n{index}"
                                      for index, name in enumerate(_names(uncompiled))})
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _output_layers(model: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """The layer nodes that produce the model's outputs, looking into an output that is itself a
    model. Keras writes a functional model's ``output_layers`` as one ``[name, node, index]``
    reference for a single output and as a list of them for several."""
    inner = model.get("config") if isinstance(model.get("config"), dict) else {}
    layers = [l for l in inner.get("layers") or [] if isinstance(l, dict)]
    if model.get("class_name") == "Sequential":
        found = [l for l in layers if l.get("class_name") != "InputLayer"][-1:]
    else:
        references = inner.get("output_layers") or []
        if references and isinstance(references[0], str):
            references = [references]
        names = {str(r[0]) for r in references if isinstance(r, list) and r}
        found = [l for l in layers if isinstance(l.get("config"), dict)
                 and l["config"].get("name") in names]
    nested = {"Sequential", "Functional", "Model"}
    if depth > MAX_NESTING:
        return found
    return [leaf for node in found for leaf in
            (_output_layers(node, depth + 1) if node.get("class_name") in nested else [node])]
