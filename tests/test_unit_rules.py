"""The rules on hand-made model descriptions and findings, and the rubric's score."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from grader.errors import GradingError
from grader.exercise import load_exercise
from grader.model.hints import hints
from grader.model.rebuild import Finding, LayerInfo, ModelInfo
from grader.model.rules import (CONFIG_RULES, MODEL_RULES, ORDER, UNSAFE, Check, check, score,
                                too_large, unsafe)
from grader.model.rules import RULES as REGISTRY
from grader.result import TrainingSummary

EXERCISE = load_exercise()
SIZE, CLASSES, RULES = EXERCISE.image_size, len(EXERCISE.classes), EXERCISE.rules


def layer(name: str, class_name: str, output: list[Any], params: int = 0,
          activation: str | None = None, units: int | None = None) -> LayerInfo:
    return LayerInfo(name, class_name, [None, SIZE, SIZE, 3], output, params, activation, units)


def good_info(**changes: Any) -> ModelInfo:
    """A model within every rule, like the codelab's solution."""
    layers = [layer("conv2d", "Conv2D", [None, SIZE, SIZE, 16], 448, "relu"),
              layer("max_pooling2d", "MaxPooling2D", [None, SIZE // 2, SIZE // 2, 16]),
              layer("conv2d_1", "Conv2D", [None, SIZE // 2, SIZE // 2, 32], 4_640, "relu"),
              layer("global_average_pooling2d", "GlobalAveragePooling2D", [None, 32]),
              layer("dense", "Dense", [None, CLASSES], 165, "softmax", CLASSES)]
    info = ModelInfo(name="sequential", class_name="Sequential", params=300_000,
                     trainable_params=300_000, input_shapes=[[None, SIZE, SIZE, 3]],
                     output_shapes=[[None, CLASSES]], output_activation="softmax",
                     activation_size=2_500_000, layers=layers,
                     nested_classes=[l.class_name for l in layers])
    return replace(info, **changes)


Case = tuple[ModelInfo | None, list[Finding], dict[str, list[dict[str, Any]]]]
APPLICATION = layer("mobilenetv2_1.00_192", "Functional", [None, 6, 6, 1280], 2_257_984)


def found_in_config(rule_id: str) -> Callable[[], Case]:
    """A good model whose config text broke ``rule_id``."""
    return lambda: (good_info(), [Finding(rule_id, f"'x' breaks {rule_id}")], {})


# rule id → a submission that breaks it (and only it), and text its failing check must show
BREAKERS: dict[str, tuple[Callable[[], Case], list[str]]] = {
    "input_shape": (lambda: (good_info(input_shapes=[[None, 160, 160, 3]]), [], {}),
                    ["160x160x3", f"{SIZE}x{SIZE}x3"]),
    "output_classes": (lambda: (good_info(output_shapes=[[None, 10]]), [], {}),
                       ["outputs 10 values", f"{CLASSES} classes"]),
    "softmax_output": (lambda: (good_info(output_activation=None), [], {}), ["linear"]),
    "min_params": (lambda: (good_info(params=RULES.min_params - 1), [], {}),
                   [f"{RULES.min_params - 1:,} parameters", f"minimum {RULES.min_params:,}"]),
    "max_params": (lambda: (good_info(params=RULES.max_params + 1), [], {}),
                   [f"{RULES.max_params + 1:,} parameters", f"maximum {RULES.max_params:,}"]),
    "conv_layers": (lambda: (good_info(nested_classes=["Dense", "Flatten"]), [], {}),
                    ["0 convolution layer(s)", f"at least {RULES.min_conv_layers}"]),
    "max_activation": (lambda: (good_info(activation_size=RULES.max_activation + 1), [], {}),
                       [f"{RULES.max_activation + 1:,} values", f"{RULES.max_activation:,}"]),
    "applications": (lambda: (good_info(layers=[APPLICATION, *good_info().layers]), [], {}),
                     ["'mobilenetv2_1.00_192'", "transfer learning"]),
    "loaded_weights": (lambda: (good_info(), [], {"loaded_weights": [
        {"call": "load_weights", "source": "pretrained.weights.h5"}]}),
                       ["load_weights(pretrained.weights.h5)"]),
    **{rule_id: (found_in_config(rule_id), [f"'x' breaks {rule_id}"])
       for rule_id in CONFIG_RULES},
}


def by_id(checks: list[Check]) -> dict[str, Check]:
    return {c.id: c for c in checks}


def test_every_rule_of_the_exercise_has_a_breaking_case() -> None:
    assert set(BREAKERS) == set(EXERCISE.rules.text) == set(ORDER)


def test_a_model_within_every_rule_passes_every_check() -> None:
    checks = check(good_info(), [], EXERCISE)
    assert [c.id for c in checks] == list(ORDER)
    assert all(c.passed is True and c.todo == "" for c in checks)


@pytest.mark.parametrize("rule_id", list(BREAKERS))
def test_a_model_that_breaks_a_rule_fails_that_check_alone(rule_id: str) -> None:
    info, findings, records = BREAKERS[rule_id][0]()
    checks = check(info, findings, EXERCISE, records)
    assert [c.id for c in checks if c.passed is not True] == [rule_id]


@pytest.mark.parametrize("rule_id", list(BREAKERS))
def test_a_failing_check_shows_the_finding_and_says_what_to_do(rule_id: str) -> None:
    make, shown = BREAKERS[rule_id]
    info, findings, records = make()
    failed = by_id(check(info, findings, EXERCISE, records))[rule_id]
    text = EXERCISE.rules.text[rule_id]
    assert failed.passed is False and (failed.rule, failed.todo) == (text.rule, text.todo)
    for fragment in shown:
        assert fragment in failed.message


def test_the_input_check_names_every_input() -> None:
    info = good_info(input_shapes=[[None, SIZE, SIZE, 3], [None, 10]])
    failed = by_id(check(info, [], EXERCISE))["input_shape"]
    assert failed.passed is False and f"{SIZE}x{SIZE}x3 and 10;" in failed.message


def test_two_outputs_fail_even_when_the_first_has_one_value_per_class() -> None:
    info = good_info(output_shapes=[[None, CLASSES], [None, CLASSES]])
    assert by_id(check(info, [], EXERCISE))["output_classes"].passed is False


def test_a_spatial_output_with_five_channels_fails_output_classes() -> None:
    info = good_info(output_shapes=[[None, 6, 6, CLASSES]])
    failed = by_id(check(info, [], EXERCISE))["output_classes"]
    assert f"6x6x{CLASSES} values" in failed.message
    assert failed.passed is False


@pytest.mark.parametrize("changes", [
    {"params": RULES.min_params}, {"params": RULES.max_params},
    {"activation_size": RULES.max_activation},
    {"nested_classes": ["Dense"] + ["SeparableConv2D"] * RULES.min_conv_layers},
], ids=["min_params", "max_params", "max_activation", "conv_layers"])
def test_a_model_exactly_at_a_bound_passes(changes: dict[str, Any]) -> None:
    assert all(c.passed for c in check(good_info(**changes), [], EXERCISE))


def test_convolutions_inside_sub_models_count() -> None:
    info = good_info(layers=[layer("block", "Sequential", [None, 96, 96, 32], 5_000)],
                     nested_classes=["Sequential", "DepthwiseConv2D", "Conv2DTranspose"])
    conv = by_id(check(info, [], EXERCISE))["conv_layers"]
    assert conv.passed is True and conv.message.startswith("2 convolution layer(s)")


def test_an_application_the_kernel_saw_built_fails_with_its_weights() -> None:
    records = {"applications": [{"name": "MobileNetV2", "weights": "imagenet"}]}
    failed = by_id(check(good_info(), [], EXERCISE, records))["applications"]
    assert failed.passed is False
    assert "keras.applications.MobileNetV2 with weights=imagenet" in failed.message


def test_a_sub_model_with_an_ordinary_name_is_not_an_application() -> None:
    info = good_info(layers=[layer("feature_block", "Functional", [None, 6, 6, 64], 9_000),
                             *good_info().layers])
    assert by_id(check(info, [], EXERCISE))["applications"].passed is True


def test_a_model_that_could_not_be_rebuilt_has_its_model_rules_not_checked() -> None:
    checks = by_id(check(None, [Finding("lambda_layer", "'l' is a Lambda layer")], EXERCISE))
    assert all(checks[r].passed is None and "Not checked" in checks[r].message
               and checks[r].todo == "" for r in MODEL_RULES)
    assert checks["lambda_layer"].passed is False
    assert [r for r in CONFIG_RULES if checks[r].passed] == \
        [r for r in CONFIG_RULES if r != "lambda_layer"]


def test_repeated_findings_are_shown_once_capitalized() -> None:
    findings = [Finding("initializers", "the initializer Constant (in bias_initializer)")] * 3 \
        + [Finding("initializers", "the initializer Identity (in kernel_initializer)")]
    message = by_id(check(None, findings, EXERCISE))["initializers"].message
    assert message == ("The initializer Constant (in bias_initializer); "
                       "the initializer Identity (in kernel_initializer).")


def test_a_long_list_of_findings_is_cut() -> None:
    findings = [Finding("allowed_layers", f"'layer_{i}' is a LSTM") for i in range(100)]
    message = by_id(check(None, findings, EXERCISE))["allowed_layers"].message
    assert message.startswith("'layer_0' is a LSTM") and len(message) == 601


@pytest.mark.parametrize("rule_id", sorted(UNSAFE))
def test_an_unsafe_finding_keeps_the_config_from_keras(rule_id: str) -> None:
    assert unsafe([Finding("frozen_layers", "'a'"), Finding(rule_id, "'b'")]) is True


@pytest.mark.parametrize("findings", [[], [Finding("frozen_layers", "'a' is frozen")]],
                         ids=["none", "frozen-only"])
def test_a_config_without_unsafe_findings_may_be_rebuilt(findings: list[Finding]) -> None:
    assert unsafe(findings) is False


def test_a_config_too_large_to_read_is_one_failed_check() -> None:
    checks = too_large("config_depth", "The model's configuration nests deeper than 64 levels.")
    assert [(c.id, c.passed, c.message) for c in checks] == [
        ("config_depth", False, "The model's configuration nests deeper than 64 levels.")]
    assert checks[0].todo


# One declaration per rule: the registry, the exercise file's texts, and their numbers


def _exercise_copy(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """The flowers exercise folder, with its exercise file edited."""
    folder = tmp_path / "exercise"
    shutil.copytree(EXERCISE.folder, folder)
    toml = folder / "exercise.toml"
    toml.write_text(edit(toml.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def test_the_orders_and_sets_all_come_from_the_one_list_of_rules() -> None:
    assert ORDER == tuple(rule.id for rule in REGISTRY) and len(set(ORDER)) == len(ORDER)
    assert set(MODEL_RULES) | set(CONFIG_RULES) == set(ORDER)
    assert UNSAFE <= set(CONFIG_RULES) and "frozen_layers" not in UNSAFE
    assert all(rule.decide is not None for rule in REGISTRY if rule.decided_on == "model")


def test_a_rule_without_its_texts_fails_when_the_exercise_loads(tmp_path: Path) -> None:
    folder = _exercise_copy(tmp_path, lambda text: re.sub(
        r"\[rules\.text\.max_activation\]\nrule = .*\ntodo = .*\n", "", text))
    with pytest.raises(GradingError) as caught:
        load_exercise(folder)
    assert "rule 'max_activation' has no [rules.text.max_activation]" in caught.value.message


def test_a_text_asking_for_an_unknown_number_names_the_rule(tmp_path: Path) -> None:
    folder = _exercise_copy(tmp_path, lambda text: text.replace(
        "at most {max_params:,} parameters", "at most {max_weights:,} parameters"))
    with pytest.raises(GradingError) as caught:
        load_exercise(folder)
    assert "text.max_params" in caught.value.message and "max_weights" in caught.value.message


def test_an_unknown_profile_precision_fails_when_the_exercise_loads(tmp_path: Path) -> None:
    folder = _exercise_copy(tmp_path, lambda text: text.replace(
        'precision = "float32"', 'precision = "bf16"'))
    with pytest.raises(GradingError) as caught:
        load_exercise(folder)
    assert "[profiles.demo] precision = 'bf16' is not one of auto, float32" in caught.value.message


def test_the_texts_take_their_numbers_from_the_exercise_file(tmp_path: Path) -> None:
    folder = _exercise_copy(tmp_path, lambda text: text.replace(
        "max_params = 3_000_000", "max_params = 1_234_567"))
    changed = load_exercise(folder)
    assert "at most 1,234,567 parameters" in changed.rules.text["max_params"].rule
    assert f"{SIZE}x{SIZE}x3" in EXERCISE.rules.text["input_shape"].rule
    assert f"Dense({CLASSES}," in EXERCISE.rules.text["output_classes"].todo


def test_the_size_hints_give_the_exercise_s_numbers() -> None:
    small = {h.id: h.message for h in hints(good_info(params=533), None, EXERCISE)}
    assert f"about {EXERCISE.hints.solution_params:,}" in small["too_few_params"]
    large = good_info(params=EXERCISE.hints.overfit_above + 1)
    trained = {h.id: h.message for h in hints(large, TrainingSummary(train_images=1944), EXERCISE)}
    assert "with 1,944 training photos" in trained["too_many_params"]
    untrained = {h.id: h.message for h in hints(large, None, EXERCISE)}
    assert "training photos it" not in untrained["too_many_params"]


def test_the_softmax_hint_names_the_number_of_classes() -> None:
    found = {h.id: h.message for h in hints(good_info(output_activation=None), None,
                                                   EXERCISE)}
    assert f"Dense({CLASSES}, activation='softmax')" in found["not_softmax"]


# The rubric


def checks_passing(passed: int, failed: int = 0, unchecked: int = 0) -> list[Check]:
    return [Check(f"r{i}", outcome, "rule", "found", "")
            for i, outcome in enumerate([True] * passed + [False] * failed + [None] * unchecked)]


RUBRIC, TARGET = EXERCISE.rubric, EXERCISE.target
ALL = len(ORDER)


def _between(low: float, high: float, share: float) -> float:
    return low + share * (high - low)


@pytest.mark.parametrize("accuracy, expected", [
    (None, RUBRIC.rule_points),
    (0.0, RUBRIC.rule_points),
    (RUBRIC.chance, RUBRIC.rule_points),
    (_between(RUBRIC.chance, TARGET.accuracy, 0.5),
     RUBRIC.rule_points + RUBRIC.accuracy_points / 2),
    (TARGET.accuracy, RUBRIC.rule_points + RUBRIC.accuracy_points),
    (_between(TARGET.accuracy, TARGET.stretch, 0.5),
     RUBRIC.rule_points + RUBRIC.accuracy_points + RUBRIC.stretch_bonus / 2),
    (TARGET.stretch, RUBRIC.max_score),
    (1.0, RUBRIC.max_score),
], ids=["not-trained", "zero", "chance", "halfway-to-target", "target", "halfway-to-stretch",
        "stretch", "perfect"])
def test_accuracy_points_rise_linearly_from_chance_to_target_then_stretch(
        accuracy: float | None, expected: float) -> None:
    assert score(checks_passing(ALL), accuracy, EXERCISE) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("failed, unchecked", [(1, 0), (3, 0), (0, 9), (ALL, 0)])
def test_rule_points_are_shared_equally_among_the_checks(failed: int, unchecked: int) -> None:
    passed = ALL - failed - unchecked
    expected = round(RUBRIC.rule_points * passed / ALL, 2)
    assert score(checks_passing(passed, failed, unchecked), None, EXERCISE) == expected


def test_a_rejected_submission_earns_its_passed_rules_and_no_accuracy_points() -> None:
    """The pipeline scores a rejected model with no accuracy: it was never trained."""
    checks = check(good_info(params=RULES.max_params + 1), [], EXERCISE)
    expected = round(RUBRIC.rule_points * (len(checks) - 1) / len(checks), 2)
    assert score(checks, None, EXERCISE) == expected < RUBRIC.rule_points


def test_without_checks_only_the_accuracy_counts() -> None:
    assert score([], TARGET.accuracy, EXERCISE) == pytest.approx(RUBRIC.accuracy_points)


def test_the_score_is_rounded_to_hundredths() -> None:
    exact = RUBRIC.rule_points * (ALL - 1) / ALL + \
        RUBRIC.accuracy_points * (0.5 - RUBRIC.chance) / (TARGET.accuracy - RUBRIC.chance)
    assert exact != round(exact, 2)
    assert score(checks_passing(ALL - 1, 1), 0.5, EXERCISE) == round(exact, 2)
