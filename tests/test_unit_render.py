"""Results already written keep rendering: a result.json from a real grading with schema 1
(`grade notebook exercises/flowers-cnn/flowers-cnn.ipynb --profile smoke` on synthetic flowers),
committed with the report and exports written beside it, renders to the same bytes today."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "result-v1"
EXPORTS = ("report.html", "results.json", "junit.xml")


def test_the_fixture_is_a_schema_1_grading() -> None:
    result = json.loads((FIXTURE / "result.json").read_text())
    assert result["schema"] == 1 and result["status"] == "graded"


@pytest.mark.parametrize("name", EXPORTS)
def test_a_schema_1_result_renders_to_the_bytes_written_with_it(name: str, tmp_path: Path,
                                                               grade_here) -> None:
    student = tmp_path / "student"
    student.mkdir()
    shutil.copy(FIXTURE / "result.json", student / "result.json")
    process = grade_here("render", tmp_path)
    assert process.returncode == 0, process.stderr
    assert (student / name).read_bytes() == (FIXTURE / name).read_bytes()


@pytest.mark.parametrize("accuracies, borderline", [((0.73, 0.78), True),
                                                    ((0.77, 0.78), False)])
def test_several_seeds_show_each_run_and_a_borderline_verdict(accuracies: tuple[float, ...],
                                                               borderline: bool) -> None:
    """A profile with seeds = 2: the report lists each training and the mean that decides; when
    the runs straddle the target (75%), report and dashboard say borderline."""
    from grader.result import Result
    from reports.render import render_dashboard, render_report

    data = json.loads((FIXTURE / "result.json").read_text())
    data["training"]["runs"] = [
        {"seed": 42 + index, "accuracy": accuracy, "val_accuracy": accuracy,
         "test_accuracy": None, "seconds": 3.0} for index, accuracy in enumerate(accuracies)]
    data["accuracy"] = sum(accuracies) / len(accuracies)
    result = Result.from_json(data)
    assert result.borderline is borderline
    assert Result.from_json(result.to_json()).training.runs == data["training"]["runs"]
    report = render_report(result)
    shown = ", ".join(f"{a:.1%}" for a in accuracies)
    assert f"Trained 2 times, from seeds 42, 43: {shown}; the verdict uses their mean, " \
        f"{result.accuracy:.1%}" in " ".join(report.split())
    assert ("Borderline: the runs fall on both sides of the target" in report) is borderline
    dashboard = render_dashboard([("student", result)])
    assert (">borderline</span>" in dashboard) is borderline
