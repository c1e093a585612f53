"""grades.csv, Gradescope's results.json and JUnit XML from results built the way the
pipeline builds them (blank, checks, then `finish` or a rejection), without grading."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from typing import Any
from xml.etree import ElementTree

import pytest

from grader.exercise import load_exercise
from grader.model.rebuild import Finding, LayerInfo, ModelInfo
from grader.model.rules import MODEL_RULES, ORDER, check, score
from grader.pipeline import finish
from grader.training.job import Trained
from grader.result import ErrorInfo, ModelSummary, Result, TrainingSummary, blank
from reports.exports import dumps, gradescope, grades_csv, junit

EXERCISE = load_exercise()
RUBRIC = EXERCISE.rubric
LAYERS = [LayerInfo("conv2d", "Conv2D", [None, 192, 192, 3], [None, 96, 96, 16], 448, "relu",
                    None),
          LayerInfo("global_average_pooling2d", "GlobalAveragePooling2D", [None, 96, 96, 16],
                    [None, 16], 0, None, None),
          LayerInfo("dense", "Dense", [None, 16], [None, 5], 85, "softmax", 5)]
INFO = ModelInfo("sequential", "Sequential", 300_000, 300_000, [[None, 192, 192, 3]],
                 [[None, 5]], "softmax", 2_500_000, LAYERS, [l.class_name for l in LAYERS])


def _base(student: str) -> Result:
    result = blank(student, f"{student}.ipynb", "ab" * 32, EXERCISE, EXERCISE.profile("smoke"))
    result.timings = {"total": 123.4}
    return result


def graded(student: str, accuracy: float) -> Result:
    result = _base(student)
    result.checks = check(INFO, [], EXERCISE)
    result.model = ModelSummary(**INFO.as_dict(), architecture="0123456789abcdef")
    history = {"accuracy": [0.5, accuracy], "val_accuracy": [0.45, accuracy]}
    finish(result, INFO, Trained(TrainingSummary(history=history, val_accuracy=accuracy),
                                 accuracy, []), EXERCISE)
    return result


def rejected(student: str, info: ModelInfo | None = None,
             findings: list[Finding] | None = None) -> Result:
    result = _base(student)
    result.status, result.checks = "rejected", check(info, findings or [], EXERCISE)
    result.score = score(result.checks, None, EXERCISE)
    return result


def errored(student: str) -> Result:
    result = _base(student)
    result.fail(ErrorInfo("execute", "Cell 3 raised NameError: name \x1b[1m'x'\x1b[0m is not "
                                     "defined \x07— fix it", 3, "\x1b[31mNameError\x1b[0m"))
    return result


def failed_in_training(student: str) -> Result:
    """An inspection that passed every rule, then a training task that died (grade batch)."""
    result = _base(student)
    result.checks = check(INFO, [], EXERCISE)
    result.fail(ErrorInfo("train", "Grading stopped: the task was killed. This is not your "
                                   "fault."))
    return result


RESULTS = {
    "passed": lambda: graded("ana", 0.78),
    "below-target": lambda: graded("ben", 0.52),
    "rejected": lambda: rejected("cas", replace(INFO, params=4_000_000)),
    "rejected-unsafe": lambda: rejected("dee", None,
                                        [Finding("lambda_layer", "'l' is a Lambda layer")]),
    "error": lambda: errored("eli"),
    "error-after-inspection": lambda: failed_in_training("fay"),
}


def test_the_fixtures_are_what_the_pipeline_makes() -> None:
    results = {kind: make() for kind, make in RESULTS.items()}
    assert {kind: (r.status, r.passed) for kind, r in results.items()} == {
        "passed": ("graded", True), "below-target": ("graded", False),
        "rejected": ("rejected", False), "rejected-unsafe": ("rejected", False),
        "error": ("error", False), "error-after-inspection": ("error", False)}
    assert results["passed"].score > results["below-target"].score > \
        results["rejected"].score > results["error"].score == 0


# Gradescope


@pytest.mark.parametrize("kind", list(RESULTS))
def test_gradescope_tests_add_up_to_the_score_and_the_max_score(kind: str) -> None:
    result = RESULTS[kind]()
    document = gradescope(result)
    assert document["score"] == result.score
    assert sum(t["score"] for t in document["tests"]) == pytest.approx(result.score, abs=0.01)
    assert sum(t["max_score"] for t in document["tests"]) == pytest.approx(RUBRIC.max_score)


def test_gradescope_has_one_test_per_check_sharing_the_rule_points() -> None:
    result = graded("ana", 0.78)
    tests = gradescope(result)["tests"]
    assert len(tests) == len(ORDER) + 1 and tests[-1]["name"] == "Verified accuracy"
    assert sum(t["max_score"] for t in tests[:-1]) == pytest.approx(RUBRIC.rule_points)
    assert tests[-1]["max_score"] == pytest.approx(RUBRIC.accuracy_points + RUBRIC.stretch_bonus)
    assert tests[0]["name"] == f"Rule: {EXERCISE.rules.text[ORDER[0]].rule}"


def test_a_failed_rule_is_a_failed_test_with_the_finding_and_what_to_do() -> None:
    result = RESULTS["rejected"]()
    tests = {t["name"]: t for t in gradescope(result)["tests"]}
    failed = tests[f"Rule: {EXERCISE.rules.text['max_params'].rule}"]
    assert (failed["status"], failed["score"]) == ("failed", 0.0)
    assert "4,000,000 parameters" in failed["output"]
    assert EXERCISE.rules.text["max_params"].todo in failed["output"]
    assert [t["status"] for t in tests.values()].count("failed") == 2  # the rule and accuracy
    assert tests["Verified accuracy"]["output"] == "Not trained: the model broke a rule."


def test_the_accuracy_test_reports_the_verified_accuracy_against_the_target() -> None:
    accuracy = gradescope(graded("ana", 0.78))["tests"][-1]
    assert accuracy["status"] == "passed"
    assert accuracy["output"] == (f"Accuracy 78.0% (target {EXERCISE.target.accuracy:.0%}), "
                                  f"retrained by the grader.")


@pytest.mark.parametrize("kind, value", [("passed", 0.78), ("rejected", 0.0), ("error", 0.0)])
def test_the_leaderboard_shows_the_accuracy(kind: str, value: float) -> None:
    assert gradescope(RESULTS[kind]())["leaderboard"] == [
        {"name": "Accuracy", "value": value, "order": "desc"}]


def test_an_ungradable_submission_earns_no_test_points_and_says_why() -> None:
    document = gradescope(errored("eli"))
    assert all(t["score"] == 0 for t in document["tests"])
    assert "Error (execute): Cell 3 raised NameError" in document["output"]
    assert document["tests"][-1]["output"].startswith("Not graded: Cell 3 raised NameError")


def test_rules_passed_before_an_error_earn_no_points() -> None:
    tests = gradescope(failed_in_training("fay"))["tests"]
    assert len(tests) == len(ORDER) + 1 and all(t["score"] == 0 for t in tests)
    assert [t["status"] for t in tests[:-1]] == ["passed"] * len(ORDER)


def test_the_gradescope_document_has_the_autograder_keys() -> None:
    document = json.loads(dumps(gradescope(graded("ana", 0.78))))
    assert set(document) == {"score", "execution_time", "output", "visibility",
                             "stdout_visibility", "tests", "leaderboard"}
    assert document["execution_time"] == 123 and document["visibility"] == "visible"
    assert document["output"].startswith("Status: graded; the submission passed.")


# grades.csv


def _rows(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(grades_csv(results))))


def test_grades_csv_has_the_documented_header() -> None:
    assert grades_csv([]).splitlines() == [
        "student_id,score,max_score,percent,status,passed,accuracy,params,seconds"]


def test_grades_csv_has_one_row_per_result_sorted_by_student() -> None:
    results = [make() for make in RESULTS.values()][::-1]
    rows = _rows(results)
    assert [r["student_id"] for r in rows] == ["ana", "ben", "cas", "dee", "eli", "fay"]


def test_a_graded_row_has_its_score_percent_accuracy_and_size() -> None:
    result = graded("ana", 0.78)
    [row] = _rows([result])
    assert row == {"student_id": "ana", "score": str(result.score),
                   "max_score": str(RUBRIC.max_score),
                   "percent": f"{100 * result.score / RUBRIC.max_score:.1f}",
                   "status": "graded", "passed": "yes", "accuracy": "0.7800",
                   "params": "300000", "seconds": "123.4"}


def test_a_rejected_row_has_no_accuracy_and_did_not_pass() -> None:
    [row] = _rows([rejected("dee", None, [Finding("tf_hub", "'hub' is a Hub layer")])])
    assert (row["status"], row["passed"], row["accuracy"], row["params"]) == \
        ("rejected", "no", "", "")


def test_a_student_id_with_commas_and_quotes_stays_one_field() -> None:
    [row] = _rows([graded('Lee, "Ann"', 0.6)])
    assert row["student_id"] == 'Lee, "Ann"' and row["status"] == "graded"


# JUnit


def _suites(results: list[dict[str, Any]]) -> list[ElementTree.Element]:
    return list(ElementTree.fromstring(junit(results).encode()))


def test_junit_has_one_suite_per_result_with_a_case_per_check_and_accuracy() -> None:
    suites = _suites([graded("ben", 0.52), graded("ana", 0.78)])
    assert [s.get("name") for s in suites] == ["ana", "ben"]
    for suite in suites:
        names = [case.get("name") for case in suite.iter("testcase")]
        assert names == [*ORDER, "accuracy"] and suite.get("tests") == str(len(ORDER) + 1)


@pytest.mark.parametrize("kind, failed", [
    ("passed", []), ("below-target", ["accuracy"]), ("rejected", ["max_params", "accuracy"]),
    ("rejected-unsafe", ["lambda_layer", "accuracy"]), ("error", ["accuracy"]),
    ("error-after-inspection", ["accuracy"]),
])
def test_junit_marks_the_failures(kind: str, failed: list[str]) -> None:
    [suite] = _suites([RESULTS[kind]()])
    found = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert found == failed and suite.get("failures") == str(len(failed))


def test_junit_skips_the_rules_that_were_not_checked() -> None:
    [suite] = _suites([RESULTS["rejected-unsafe"]()])
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert skipped == list(MODEL_RULES)


def test_junit_drops_control_characters_from_an_error() -> None:
    text = junit([errored("eli")])
    [suite] = _suites([errored("eli")])
    assert "\x1b" not in text and "\x07" not in text
    assert suite.find("system-err").text == ("Cell 3 raised NameError: name [1m'x'[0m is not "
                                             "defined — fix it")


# The dashboard's causes


def _failed(student: str, cause: str, message: str) -> Result:
    result = _base(student)
    result.fail(ErrorInfo("execute", message, 1, cause=cause))
    return result


def test_the_dashboard_counts_errors_by_cause_and_says_why_for_each_row() -> None:
    from reports.dashboard import context

    results = [_failed("gil", "missing_package", "Cell 1 raised ModuleNotFoundError: torch"),
               _failed("hal", "missing_package", "Cell 1 raised ModuleNotFoundError: cv3"),
               _failed("ivy", "data_path", "x" * 300), graded("ana", 0.78),
               rejected("cas", replace(INFO, params=4_000_000)), errored("eli")]
    drawn = context([(r.student, r) for r in results])
    assert [(c["cause"], c["count"], c["students"]) for c in drawn["causes"]] == [
        ("missing_package", 2, ["gil", "hal"]), ("cell_error", 1, ["eli"]),
        ("data_path", 1, ["ivy"])]
    why = {row["student"]: row["why"] for row in drawn["rows"]}
    assert why["gil"] == "missing_package: Cell 1 raised ModuleNotFoundError: torch"
    assert why["ivy"] == "data_path: " + "x" * 157 + "…"
    assert why["cas"] == "broke max_params" and why["ana"] == ""
