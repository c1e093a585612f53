"""The rules in real kernels (one `grade batch --no-train`): a notebook within every rule
passes them all; each rule whose evidence comes from the kernel or from Keras rebuilding the
model (smuggling attempts, frozen and loaded weights), and one decided on the config alone, is
broken by a notebook rejected for it alone; hints teach. Every rule's logic, each broken alone,
is tested without kernels in test_unit_rules.py."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import run_grade
from grader.exercise import load_exercise
from grader.model.rules import UNSAFE

HEAD = "import keras\nimport numpy as np\nfrom keras import layers\n"
GAP_HEAD = "layers.GlobalAveragePooling2D(), layers.Dense(5, activation='softmax')"
INPUT = "keras.Input(shape=(192, 192, 3))"


def _model(*body: str, head: str = GAP_HEAD) -> str:
    return HEAD + f"model = keras.Sequential([{INPUT}, " + ", ".join(body) + f", {head}])"


# rule id → cells of a notebook whose model breaks it alone: the rules whose evidence comes from
# the kernel's records (loaded weights) or from Keras rebuilding the model (initializers, frozen
# layers, custom classes, Lambda, tensorflow_hub), and one decided on the config alone
BREAKERS: dict[str, list[str]] = {
    "input_shape": [HEAD + "model = keras.Sequential([keras.Input(shape=(160, 160, 3)), "
                    "layers.Conv2D(16, 3), " + GAP_HEAD + "])"],
    "lambda_layer": [_model("layers.Lambda(lambda x: x * 2.0)", "layers.Conv2D(16, 3)")],
    "custom_class": [HEAD + "class Brighten(layers.Layer):\n    def call(self, x):\n"
                     "        return x * 1.1\n",
                     _model("Brighten()", "layers.Conv2D(16, 3)")],
    # A stand-in for tensorflow_hub.KerasLayer: the real package needs its models from the
    # network. What the grader sees is the same: a layer class from the tensorflow_hub module.
    "tf_hub": [HEAD + "class KerasLayer(layers.Layer):\n    def call(self, x):\n"
               "        return x\nKerasLayer.__module__ = 'tensorflow_hub.keras_layer'\n",
               _model("KerasLayer()", "layers.Conv2D(16, 3)")],
    "initializers": [_model("layers.Conv2D(16, 3, kernel_initializer="
                            "keras.initializers.Constant(np.full((3, 3, 3, 16), 0.1)))")],
    "frozen_layers": [_model("layers.Conv2D(16, 3, trainable=False)",
                             "layers.Conv2D(32, 3, strides=2)")],
    "loaded_weights": [_model("layers.Conv2D(16, 3, strides=2)", "layers.Conv2D(32, 3)"),
                       "model.save_weights('pretrained.weights.h5')\n"
                       "model.load_weights('pretrained.weights.h5')"],
}


PASSING = _model(
    "layers.Conv2D(16, 3, padding='same', activation='relu')", "layers.MaxPooling2D(2)",
    "layers.Conv2D(32, 3, padding='same', activation='relu')", "layers.MaxPooling2D(2)",
    "layers.Conv2D(64, 3, padding='same', activation='relu')", "layers.BatchNormalization()",
    "layers.Dropout(0.2)")
FLATTEN_DENSE = (HEAD + "model = keras.Sequential([\n"
                 "    layers.Flatten(input_shape=[192, 192, 3]),\n"
                 "    layers.Dense(500, activation='relu'),\n"
                 "    layers.Dense(50, activation='relu'),\n"
                 "    layers.Dense(5, activation='softmax')])")


def _write(folder: Path, name: str, cells: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    nbformat.write(notebook, str(folder / f"{name}.ipynb"))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, small_data: Path) -> dict[str, dict]:
    """Every notebook below through one `grade batch --no-train` (rules need no training)."""
    folder = tmp_path_factory.mktemp("rules")
    for rule_id, cells in BREAKERS.items():
        _write(folder, f"breaks_{rule_id}", cells)
    _write(folder, "within_every_rule", [PASSING])
    _write(folder, "flatten_dense", [FLATTEN_DENSE])
    out = tmp_path_factory.mktemp("rules-out")
    process = run_grade("batch", folder, "--data", small_data, "--out", out, "--no-train",
                        "--workers", "2")
    assert process.returncode == 0, process.stderr[-3000:]
    return {path.parent.name: {"result": json.loads(path.read_text()),
                               "report": (path.parent / "report.html").read_text()}
            for path in out.glob("*/result.json")}


@pytest.mark.parametrize("rule_id", list(BREAKERS))
def test_a_model_that_breaks_the_rule_is_rejected_for_it_alone(rule_id: str, graded) -> None:
    result = graded[f"breaks_{rule_id}"]["result"]
    assert result["error"] is None, result["error"]
    assert result["status"] == "rejected" and result["passed"] is False
    checks = {c["id"]: c for c in result["checks"]}
    assert checks[rule_id]["todo"], "a failed rule says what to do"
    failed = [c for c, check in checks.items() if check["passed"] is False]
    assert failed == [rule_id]
    if rule_id in UNSAFE:
        assert checks["input_shape"]["passed"] is None  # never rebuilt
        assert result["model"]["layers"] == []
    # Not trained, and no accuracy points: the rubric's rule points, shared by the checks.
    assert result["training"]["history"] == {} and result["accuracy"] is None
    passed = sum(c["passed"] is True for c in checks.values())
    rule_points = load_exercise().rubric.rule_points
    assert result["score"] == pytest.approx(round(rule_points * passed / len(checks), 2))


def test_the_constant_initializer_message_says_why(graded) -> None:
    result = graded["breaks_initializers"]["result"]
    check = next(c for c in result["checks"] if c["id"] == "initializers")
    assert "Constant holding 432 values" in check["message"]
    assert "smuggle" in check["todo"]


def test_a_model_within_every_rule_passes_them_all(graded) -> None:
    result = graded["within_every_rule"]["result"]
    assert result["status"] == "checked", result["checks"]
    assert all(c["passed"] is True and c["todo"] == "" for c in result["checks"])
    assert {c["id"] for c in result["checks"]} == set(load_exercise().rules.text)


def test_codelab_flatten_dense_model_gets_the_global_average_pooling_hint(graded) -> None:
    result = graded["flatten_dense"]["result"]
    hints = {h["id"]: h["message"] for h in result["hints"]}
    assert "flatten_dense_head" in hints
    # 110,592 inputs x 500 units + 500 biases in the first Dense; 55,321,805 in all.
    assert "of your 55,321,805 parameters (55,321,805)" in hints["flatten_dense_head"]
    assert "'dense', alone has 55,296,500" in hints["flatten_dense_head"]
    assert "saving about 55,294,500 parameters" in hints["flatten_dense_head"]
    report = graded["flatten_dense"]["report"]
    assert "GlobalAveragePooling2D" in report and "55,294,500" in report
