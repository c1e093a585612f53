"""What a newcomer's first command shows: `grade demo` passes the reference notebook and fails the
untouched student notebook, on fresh synthetic flowers, and says where the reports are. The
calibrated run on the real photos is test_calibration.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.architectures import reference as benchmark_reference
from conftest import run_grade
from grader.model.architecture import architecture
from grader.demo import DEMO_PROFILE
from grader.exercise import load_exercise


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    out = tmp_path_factory.mktemp("demo")
    return run_grade("demo", "--out", out), out


def test_the_demo_passes_the_reference_and_fails_the_untouched_notebook(demo) -> None:
    process, out = demo
    assert process.returncode == 0, (process.stdout, process.stderr[-3000:])
    assert "demo finished as expected" in process.stdout
    for name in ("reference", "student"):
        assert f"report: {out / name / 'report.html'}" in process.stdout
    # Each training's measured speed and projection is shown before it runs its course.
    assert process.stdout.count("trusted training:") == 2
    reference = json.loads((out / "reference" / "result.json").read_text())
    target = load_exercise().target.accuracy
    assert reference["status"] == "graded" and reference["profile"] == DEMO_PROFILE
    assert reference["passed"] is True and reference["accuracy"] >= target
    assert all(check["passed"] for check in reference["checks"])
    assert reference["model"]["variable"] == "model"
    assert 250_000 < reference["model"]["params"] < 350_000
    # the accelerator benchmark trains this architecture (benchmarks/configs/reference.json)
    assert architecture(benchmark_reference()) == reference["model"]["architecture"]
    training = reference["training"]
    assert training["val_accuracy"] == reference["accuracy"] and training["test_accuracy"] is None
    assert training["precision"] == "float32"    # the demo profile's, on every host
    assert len(training["history"]["val_accuracy"]) == training["epochs"]
    assert training["history"]["val_accuracy"][-1] == training["val_accuracy"]
    assert "Passed" in (out / "reference" / "report.html").read_text()


def test_the_untouched_student_notebook_passes_the_rules_and_fails_on_accuracy(demo) -> None:
    _, out = demo
    student = json.loads((out / "student" / "result.json").read_text())
    assert student["status"] == "graded" and student["error"] is None
    assert student["passed"] is False and student["accuracy"] < load_exercise().target.accuracy
    assert student["model"]["params"] == 533
    assert 0 < student["score"] < student["max_score"]
    assert all(check["passed"] is True for check in student["checks"])
    hints = {hint["id"]: hint["message"] for hint in student["hints"]}
    assert "too_few_params" in hints and "533 parameters" in hints["too_few_params"]
    assert "533 parameters" in (out / "student" / "report.html").read_text()
