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
