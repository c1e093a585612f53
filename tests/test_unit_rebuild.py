"""The config boundary without Keras: size and depth limits, the allow-list scan, the
architecture hash and scope-safe names, on dicts shaped like Keras 3's serialized configs."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from grader.errors import GradingError
from grader.exercise import Rules, load_exercise
from grader.model import rebuild
from grader.model.architecture import SCOPE_SAFE, architecture, scope_safe
from grader.model.rebuild import (ALWAYS_ALLOWED, MAX_CONFIG_BYTES, MAX_DEPTH, ConfigRejected,
                                  Finding, parse_config, scan)

POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
          "registered_name": None}


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_exercise().rules


def keras_object(module: str, class_name: str, **config: Any) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": None}


def initializer(class_name: str, module: str = "keras.initializers",
                **config: Any) -> dict[str, Any]:
    return keras_object(module, class_name, **config)


def layer(class_name: str, name: str, module: str = "keras.layers",
          registered_name: str | None = None, **config: Any) -> dict[str, Any]:
    return {"module": module, "class_name": class_name,
            "config": {"name": name, "trainable": True, "dtype": POLICY, **config},
            "registered_name": registered_name}


def conv(name: str = "conv2d", filters: int = 16, **config: Any) -> dict[str, Any]:
    settings = {"filters": filters, "kernel_size": [3, 3], "strides": [1, 1],
                "padding": "same", "activation": "relu", "use_bias": True,
                "kernel_initializer": initializer("GlorotUniform", seed=None),
                "bias_initializer": initializer("Zeros"), "kernel_regularizer": None,
                "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    node = layer("Conv2D", name, **{**settings, **config})
    node["build_config"] = {"input_shape": [None, 192, 192, 3]}
    return node


def dense(name: str = "dense", units: int = 5) -> dict[str, Any]:
    return layer("Dense", name, units=units, activation="softmax", use_bias=True,
                 kernel_initializer=initializer("GlorotUniform", seed=None),
                 bias_initializer=initializer("Zeros"))


def input_layer(name: str = "input_layer") -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [None, 192, 192, 3], "dtype": "float32",
                       "sparse": False, "name": name}, "registered_name": None}


def sequential(*layers: dict[str, Any], name: str = "sequential") -> dict[str, Any]:
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": name, "trainable": True, "dtype": POLICY,
                       "layers": [input_layer(f"{name}_input"), *layers]},
            "registered_name": None,
            "build_config": {"input_shape": [None, 192, 192, 3]},
            "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam",
                                             "config": {"learning_rate": 0.001},
                                             "registered_name": None},
                               "loss": "sparse_categorical_crossentropy",
                               "metrics": ["accuracy"]}}


def tensor(source: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 192, 192, 3], "dtype": "float32",
                       "keras_history": [source, 0, 0]}}


def functional(names: tuple[str, str, str, str] = ("in", "conv", "pool", "out"),
               filters: int = 16) -> dict[str, Any]:
    """A keras.Model(inputs, outputs) config: layers refer to each other by name."""
    model, first, pool, last = names
    start = input_layer(first)
    start["name"], start["inbound_nodes"] = first, []
    nodes = [start]
    for node, source in ((conv(first + "_conv", filters), first),
                         (layer("GlobalAveragePooling2D", pool), first + "_conv"),
                         (dense(last), pool)):
        node["name"] = node["config"]["name"]
        node["inbound_nodes"] = [{"args": [tensor(source)], "kwargs": {}}]
        nodes.append(node)
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model, "trainable": True, "layers": nodes,
                       "input_layers": [[first, 0, 0]], "output_layers": [[last, 0, 0]]},
            "registered_name": "Functional"}


def rules_found(config: dict[str, Any], rules: Rules) -> list[str]:
    return [finding.rule for finding in scan(config, rules)]


# parse_config: size and depth, before json.loads


def _padded(length: int) -> str:
    head, tail = '{"pad": "', '"}'
    return head + "x" * (length - len(head) - len(tail)) + tail


def test_a_config_of_exactly_the_size_limit_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a small limit: reading 5 MB costs most of a second."""
    monkeypatch.setattr(rebuild, "MAX_CONFIG_BYTES", 1000)
    assert len(parse_config(_padded(1000))["pad"]) == 1000 - 11
    with pytest.raises(ConfigRejected):
        parse_config(_padded(1001))


def test_a_config_one_byte_over_the_size_limit_is_rejected_as_config_size() -> None:
    with pytest.raises(ConfigRejected) as caught:
        parse_config(_padded(MAX_CONFIG_BYTES + 1))
    assert caught.value.rule == "config_size" and caught.value.stage == "rebuild"
    assert f"{MAX_CONFIG_BYTES + 1:,} bytes" in caught.value.message


def test_the_size_limit_counts_utf8_bytes_not_characters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild, "MAX_CONFIG_BYTES", 1000)
    text = '{"pad": "' + "\u20ac" * 500 + '"}'
    assert len(text) < 1000 < len(text.encode())
    with pytest.raises(ConfigRejected):
        parse_config(text)


def _nested_objects(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_a_config_nested_exactly_max_depth_deep_is_parsed() -> None:
    config = parse_config(_nested_objects(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        config = config["a"]
    assert config == {}


@pytest.mark.parametrize("text", [_nested_objects(MAX_DEPTH + 1),
                                  '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"],
                         ids=["objects", "lists"])
def test_a_config_nested_one_level_too_deep_is_rejected_as_config_depth(text: str) -> None:
    with pytest.raises(ConfigRejected) as caught:
        parse_config(text)
    assert caught.value.rule == "config_depth" and str(MAX_DEPTH) in caught.value.message


def test_depth_is_refused_before_the_json_parser_recurses() -> None:
    """100,000 levels would end in the parser's RecursionError (stage extract) if it ran."""
    with pytest.raises(ConfigRejected) as caught:
        parse_config(_nested_objects(100_000))
    assert caught.value.rule == "config_depth"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    name = '\\"' + "[{" * (10 * MAX_DEPTH)
    config = parse_config('{"name": "' + name + '"}')
    assert config["name"] == '"' + "[{" * (10 * MAX_DEPTH)


@pytest.mark.parametrize("text", ["[1, 2]", '"model"', "{not json"])
def test_text_that_is_not_a_json_object_is_an_extract_error(text: str) -> None:
    with pytest.raises(GradingError) as caught:
        parse_config(text)
    assert caught.value.stage == "extract" and not isinstance(caught.value, ConfigRejected)


# scan: every finding kind


def test_a_plain_sequential_config_has_no_findings(rules: Rules) -> None:
    config = sequential(conv("c1", kernel_regularizer=keras_object("keras.regularizers", "L2",
                                                                    l2=0.01),
                             kernel_constraint=keras_object("keras.constraints", "MaxNorm",
                                                            max_value=2, axis=0)),
                        layer("MaxPooling2D", "pool", pool_size=[2, 2]),
                        layer("BatchNormalization", "bn",
                              gamma_initializer=initializer("Ones"),
                              beta_initializer=initializer("Zeros")),
                        layer("GlobalAveragePooling2D", "gap"), dense())
    assert scan(config, rules) == []


def test_a_functional_config_with_keras_tensors_has_no_findings(rules: Rules) -> None:
    assert scan(functional(), rules) == []


def test_the_compile_settings_are_never_scanned(rules: Rules) -> None:
    config = sequential(conv())
    config["compile_config"]["loss"] = layer("Lambda", "custom_loss")
    assert scan(config, rules) == []


def test_a_lambda_layer_is_found_as_lambda_layer(rules: Rules) -> None:
    lam = layer("Lambda", "double", function={"class_name": "__lambda__",
                                              "config": {"code": "4wEAAAAA", "defaults": None}})
    assert scan(sequential(conv(), lam), rules) == [
        Finding("lambda_layer", "'double' is a Lambda layer")]


def test_python_code_embedded_in_an_allowed_layer_is_found_as_lambda_layer(rules: Rules) -> None:
    activation = layer("Activation", "act", activation={"class_name": "__lambda__",
                                                        "config": {"code": "4wEAAAAA"}})
    findings = scan(sequential(conv(), activation), rules)
    assert findings == [Finding("lambda_layer", "the configuration embeds Python code")]


@pytest.mark.parametrize("node, registered", [
    (layer("Brighten", "brighten", module="__main__", registered_name="Custom>Brighten"),
     "Custom>Brighten"),
    (layer("Conv2D", "fake_conv", registered_name="mypackage>Conv2D"), "mypackage>Conv2D"),
    (layer("Sequential", "inner", module="keras.src.models.sequential"),
     "keras.src.models.sequential.Sequential"),
], ids=["main-module", "registered-as-a-standard-name", "unknown-keras-module"])
def test_a_custom_class_is_found_with_its_registered_name(node: dict[str, Any], registered: str,
                                                          rules: Rules) -> None:
    findings = scan(sequential(conv(), node), rules)
    assert [f.rule for f in findings] == ["custom_class"]
    assert registered in findings[0].detail and node["config"]["name"] in findings[0].detail


@pytest.mark.parametrize("module", ["tensorflow_hub.keras_layer", "hub_mirror"])
def test_a_tensorflow_hub_layer_is_found_as_tf_hub(module: str, rules: Rules) -> None:
    hub = layer("KerasLayer", "mobilenet", module=module,
                handle="https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")
    findings = scan(sequential(hub, dense()), rules)
    assert [f.rule for f in findings] == ["tf_hub"]
    assert "'mobilenet'" in findings[0].detail and f"{module}.KerasLayer" in findings[0].detail


@pytest.mark.parametrize("class_name", ["LSTM", "Embedding", "Conv3D", "UpSampling2D"])
def test_a_layer_not_on_the_allowed_list_is_found_as_allowed_layers(class_name: str,
                                                                    rules: Rules) -> None:
    assert class_name not in rules.allowed_layers
    findings = scan(sequential(conv(), layer(class_name, "odd"), dense()), rules)
    assert findings == [Finding("allowed_layers", f"'odd' is a {class_name}, which is not on "
                                                  f"the exercise's list of layers")]


def test_every_allowed_layer_passes(rules: Rules) -> None:
    layers = [layer(name, f"layer_{index}") for index, name in
              enumerate(sorted(rules.allowed_layers))]
    assert scan(sequential(*layers), rules) == []


def test_a_disallowed_layer_inside_a_sub_model_is_found(rules: Rules) -> None:
    inner = sequential(conv(), layer("LSTM", "memory"), name="block")
    assert rules_found(sequential(inner, dense(), name="outer"), rules) == ["allowed_layers"]


def test_a_constant_initializer_is_found_with_the_number_of_values_it_carries(
        rules: Rules) -> None:
    values = [[[[0.5] * 2] * 4]]  # shape (1, 1, 4, 2), as Keras writes np.full(...).tolist()
    smuggler = conv("c", kernel_initializer=initializer("Constant", value=values))
    assert scan(sequential(smuggler), rules) == [
        Finding("initializers", "the initializer Constant holding 8 values "
                                "(in kernel_initializer)")]


def test_a_constant_initializer_is_refused_even_where_an_exercise_lists_it(
        rules: Rules) -> None:
    lenient = replace(rules, allowed_initializers=rules.allowed_initializers | {"Constant"})
    smuggler = conv(kernel_initializer=initializer("Constant", value=[[0.5, 0.5]]))
    assert rules_found(sequential(smuggler), lenient) == ["initializers"]


def test_a_scalar_constant_initializer_is_still_found(rules: Rules) -> None:
    findings = scan(sequential(conv(bias_initializer=initializer("Constant", value=0.1))), rules)
    assert findings == [Finding("initializers", "the initializer Constant (in bias_initializer)")]


@pytest.mark.parametrize("node", [initializer("Identity"),
                                  initializer("Weights", module="my_package.initializers")],
                         ids=["unlisted-keras-initializer", "foreign-module-initializer"])
def test_an_initializer_off_the_list_is_found_as_initializers(node: dict[str, Any],
                                                              rules: Rules) -> None:
    findings = scan(sequential(conv(kernel_initializer=node)), rules)
    assert [f.rule for f in findings] == ["initializers"]
    assert node["class_name"] in findings[0].detail


def test_an_embedded_numpy_array_is_found_as_initializers_with_its_size(rules: Rules) -> None:
    array = {"class_name": "__numpy__",
             "config": {"value": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "dtype": "float32"}}
    findings = scan(sequential(conv(), layer("Rescaling", "scale", scale=array)), rules)
    assert findings == [Finding("initializers", "the configuration embeds an array of 6 values")]


def test_every_allowed_initializer_passes(rules: Rules) -> None:
    convs = [conv(f"c{index}", kernel_initializer=initializer(name))
             for index, name in enumerate(sorted(rules.allowed_initializers))]
    assert scan(sequential(*convs), rules) == []


@pytest.mark.parametrize("module, class_name", sorted(
    (module, class_name) for module in ("keras.regularizers", "keras.constraints")
    for class_name in ALWAYS_ALLOWED[module]))
def test_standard_regularizers_and_constraints_pass(module: str, class_name: str,
                                                    rules: Rules) -> None:
    key = "kernel_regularizer" if module == "keras.regularizers" else "kernel_constraint"
    assert scan(sequential(conv(**{key: keras_object(module, class_name)})), rules) == []


def test_a_frozen_layer_is_found_as_frozen_layers(rules: Rules) -> None:
    frozen = conv("features")
    frozen["config"]["trainable"] = False
    assert scan(sequential(frozen, dense()), rules) == [
        Finding("frozen_layers", "'features' is set trainable=False")]


def test_a_frozen_sub_model_is_found_as_frozen_layers(rules: Rules) -> None:
    inner = sequential(conv(), name="backbone")
    inner["config"]["trainable"] = False
    assert scan(sequential(inner, dense(), name="outer"), rules) == [
        Finding("frozen_layers", "'backbone' is set trainable=False")]


def test_what_is_inside_a_refused_layer_is_one_finding(rules: Rules) -> None:
    custom = layer("Block", "block", module="__main__", registered_name="Custom>Block",
                   kernel_initializer=initializer("Constant", value=[1.0, 2.0]),
                   inner=layer("Lambda", "hidden"))
    assert rules_found(sequential(custom), rules) == ["custom_class"]


def test_every_violation_of_a_config_is_found(rules: Rules) -> None:
    frozen = conv("frozen")
    frozen["config"]["trainable"] = False
    config = sequential(frozen, layer("Lambda", "lam"), layer("LSTM", "lstm"),
                        layer("KerasLayer", "hub", module="tensorflow_hub.keras_layer"),
                        conv("c", kernel_initializer=initializer("Constant", value=[1.0])),
                        layer("Mine", "mine", module="__main__"), dense())
    assert sorted(rules_found(config, rules)) == sorted(
        ["frozen_layers", "lambda_layer", "allowed_layers", "tf_hub", "initializers",
         "custom_class"])


# architecture and scope_safe


def _renamed_sequential(prefix: str, filters: int = 16) -> dict[str, Any]:
    return sequential(conv(f"{prefix}_conv", filters), layer("GlobalAveragePooling2D",
                                                             f"{prefix}_pool"),
                      dense(f"{prefix}_head"), name=f"{prefix}_model")


def test_configs_that_differ_only_by_names_have_the_same_architecture() -> None:
    assert architecture(_renamed_sequential("alice")) == architecture(_renamed_sequential("bob"))
    assert architecture(functional(("m", "x", "p", "y"))) == \
        architecture(functional(("net", "image", "gap", "probabilities")))


def test_a_different_filter_count_is_a_different_architecture() -> None:
    assert architecture(_renamed_sequential("a", 16)) != architecture(_renamed_sequential("a", 32))
    assert architecture(functional(filters=16)) != architecture(functional(filters=32))


@pytest.mark.parametrize("option, values", [("activation", ("relu", "tanh")),
                                            ("padding", ("same", "valid"))])
def test_layers_named_like_their_options_still_hash_by_the_options(
        option: str, values: tuple[str, str]) -> None:
    first, second = (sequential(conv(value, **{option: value}), dense(), name="m")
                     for value in values)
    assert architecture(first) != architecture(second)


def test_compile_settings_do_not_change_the_architecture() -> None:
    other = _renamed_sequential("a")
    other["compile_config"]["optimizer"]["config"]["learning_rate"] = 0.5
    other["compile_config"]["loss"] = "categorical_crossentropy"
    assert architecture(other) == architecture(_renamed_sequential("a"))


def test_an_architecture_is_a_short_hex_digest() -> None:
    digest = architecture(_renamed_sequential("a"))
    assert len(digest) == 16 and int(digest, 16) >= 0


def test_a_config_whose_names_are_all_safe_is_returned_unchanged() -> None:
    config = functional()
    assert scope_safe(config) is config


def test_unsafe_names_are_renamed_consistently_wherever_they_appear() -> None:
    config = functional(("<b>mine", "in <put>", "join & merge", "out"))
    before = copy.deepcopy(config)
    safe = scope_safe(config)
    text = json.dumps(safe)
    assert "<" not in text and "&" not in text and config == before
    names = [node["config"]["name"] for node in safe["config"]["layers"]]
    assert all(SCOPE_SAFE.match(name) for name in [safe["config"]["name"], *names])
    assert safe["config"]["input_layers"][0][0] == names[0]
    assert safe["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"][
        "keras_history"][0] == names[0]
    assert names[3] == "out" and safe["config"]["output_layers"] == [["out", 0, 0]]


def test_renamed_names_stay_distinct_from_existing_safe_names() -> None:
    config = sequential(conv("a_b"), conv("a b"), dense("a.b"), name="m")
    names = [node["config"]["name"] for node in scope_safe(config)["config"]["layers"][1:]]
    assert len(set(names)) == 3 and names[0] == "a_b" and names[2] == "a.b"
