"""`grade check`'s verdict in plain words, and the course's stamp it compares versions with."""

from __future__ import annotations

import json
from pathlib import Path

import grader
from conftest import STUDENT_NOTEBOOK
from grader.check import stamp_of, verdict
from grader.errors import GradingError
from grader.exercise import load_exercise
from grader.result import Check, ModelSummary, blank


def _result(status: str, failed_rule: str | None = None, error: GradingError | None = None):
    exercise = load_exercise()
    result = blank("s", "s.ipynb", None, exercise, exercise.profile("smoke"))
    result.model = ModelSummary(params=4_000, variable="model", class_name="Sequential")
    result.checks = [Check("min_params", True, "at least 500 parameters"),
                     Check("softmax_output", failed_rule is None, "a softmax output",
                           "no softmax", "use Dense(5, activation='softmax')")]
    result.status = status
    if error is not None:
        result.fail(error.info())
    return result


def test_every_rule_passed_will_be_graded() -> None:
    said = verdict(_result("checked"), load_exercise(), True, None)
    assert said.ready
    assert said.lines[-1].startswith("VERDICT: WILL BE GRADED. Every rule passed")
    assert "4,000 parameters (the exercise allows 500 to 3,000,000)" in "\n".join(said.lines)


def test_a_failed_rule_is_named_with_what_to_do() -> None:
    said = verdict(_result("rejected", "softmax_output"), load_exercise(), True, None)
    text = "\n".join(said.lines)
    assert not said.ready and "rules: 1 of 2 passed" in text
    assert "FAILED a softmax output: no softmax use Dense(5, activation='softmax')" in text
    assert said.lines[-1].startswith("VERDICT: WILL BE GRADED, BUT REJECTED by 1 rule(s)")


def test_a_failing_cell_with_the_data_will_not_be_graded() -> None:
    error = GradingError("execute", "Cell 3 raised NameError: name 'x' is not defined", cell=3)
    said = verdict(_result("checked", error=error), load_exercise(), True, None)
    assert not said.ready
    assert said.lines[-1] == ("VERDICT: WILL NOT BE GRADED (cell 3). Cell 3 raised NameError: "
                              "name 'x' is not defined")


def test_without_the_data_a_failing_cell_leaves_the_verdict_open() -> None:
    error = GradingError("execute", "Cell 5 raised FileNotFoundError: no shards", cell=5)
    said = verdict(_result("checked", error=error), load_exercise(), False, None)
    assert not said.ready and said.lines[-1].startswith("VERDICT: NOT KNOWN YET.")
    assert "could not run: Cell 5 raised FileNotFoundError" in "\n".join(said.lines)
    assert said.lines[-1].endswith("The model above was checked all the same.")


def test_the_course_notebook_carries_this_grader_and_exercise_version() -> None:
    stamp = stamp_of(STUDENT_NOTEBOOK)
    assert stamp == {"exercise": "flowers-cnn", "exercise_version": load_exercise().version,
                     "grader_version": grader.__version__}
    said = verdict(_result("checked"), load_exercise(), True, stamp)
    assert not any(line.startswith("WARNING") for line in said.lines)
    cells = json.loads(STUDENT_NOTEBOOK.read_text())["cells"]
    assert cells[-1]["cell_type"] == "markdown" and "grade check" in "".join(cells[-1]["source"])


def test_another_version_is_warned_about(tmp_path: Path) -> None:
    old = {"exercise": "flowers-cnn", "exercise_version": "2020.1", "grader_version": "0.0.1"}
    said = verdict(_result("checked"), load_exercise(), True, old)
    warnings = [line for line in said.lines if line.startswith("WARNING")]
    assert len(warnings) == 2
    assert "for grader version 0.0.1, and this check uses " + grader.__version__ in warnings[0]
    assert "for exercise version 2020.1" in warnings[1]
    assert stamp_of(tmp_path / "missing.ipynb") is None
    (tmp_path / "bad.ipynb").write_text("[1, 2]")
    assert stamp_of(tmp_path / "bad.ipynb") is None
