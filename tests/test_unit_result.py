"""The typed result and its schema: result.json round-trips, and a file this grader cannot read
is refused with a message that says why (newer schema, unknown field, not a result at all)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader.result import SCHEMA, Check, ErrorInfo, Result, SchemaError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "result-v1" / "result.json"


def fixture() -> dict:
    return json.loads(FIXTURE.read_text())


def test_a_schema_1_file_reads_into_types_and_writes_back_the_same_json() -> None:
    data = fixture()
    result = Result.from_json(data)
    assert isinstance(result.checks[0], Check) and result.training.history["accuracy"]
    assert result.model.params and result.submission.file.endswith(".ipynb")
    assert json.dumps(result.to_json(), indent=2) == json.dumps(data, indent=2)


def test_an_error_keeps_its_signal_only_when_there_was_one() -> None:
    assert "signal" not in ErrorInfo("execute", "m", 3).to_json()
    assert ErrorInfo("execute", "m", 3, None, "SIGKILL").to_json()["signal"] == "SIGKILL"
    data = fixture() | {"status": "error", "error": ErrorInfo("execute", "m", 3).to_json()}
    assert Result.from_json(data).error == ErrorInfo("execute", "m", 3)


def test_a_newer_schema_is_refused_with_what_to_do() -> None:
    with pytest.raises(SchemaError, match=f"newer grader .*reads up to {SCHEMA}.*upgrade"):
        Result.from_json(fixture() | {"schema": SCHEMA + 1})


@pytest.mark.parametrize("change, named", [
    (lambda d: d | {"colour": "red"}, "result: unknown field.* colour"),
    (lambda d: d | {"model": d["model"] | {"depth": 3}}, "model: unknown field.* depth"),
    (lambda d: d | {"checks": [{"id": "x", "passed": True, "weight": 2}]}, "checks: unknown"),
    (lambda d: {k: v for k, v in d.items() if k != "student"}, "result: .*student"),
    (lambda d: d | {"training": []}, "training: expected an object"),
    (lambda d: {k: v for k, v in d.items() if k != "schema"}, "no schema version"),
    (lambda d: d | {"schema": "1"}, "schema version '1'"),
])
def test_a_file_that_does_not_fit_the_schema_names_the_field(change, named: str) -> None:
    with pytest.raises(SchemaError, match=named):
        Result.from_json(change(fixture()))


def test_render_skips_an_unreadable_result_and_says_which(tmp_path: Path, grade_here) -> None:
    for name, data in (("good", fixture()), ("future", fixture() | {"schema": SCHEMA + 1})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(data))
    shutil.copy(FIXTURE, tmp_path / "good" / "result.json")
    process = grade_here("render", tmp_path)
    assert process.returncode == 0, process.stderr
    assert "rendered 1 result(s)" in process.stdout
    assert "future/result.json" in process.stderr and "newer grader" in process.stderr
    assert "Traceback" not in process.stderr
    assert (tmp_path / "good" / "report.html").is_file()
    assert not (tmp_path / "future" / "report.html").exists()
