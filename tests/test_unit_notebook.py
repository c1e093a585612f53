"""Reading a submission as Jupyter would: the schema nits Jupyter tolerates are repaired and named,
nbformat 4.0-4.4 files get cell ids, and no library log line is printed on the way."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nbformat
import pytest

from grader.errors import GradingError
from grader.kernel.notebook import validate


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps(document))
    return path


def _notebook(minor: int, cells: list[dict]) -> dict:
    return {"nbformat": 4, "nbformat_minor": minor, "metadata": {}, "cells": cells}


def _code(source: str, outputs: list[dict] | None = None, **extra) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "source": source,
            "outputs": outputs or [], **extra}


@pytest.mark.parametrize("minor", [0, 1, 2, 3, 4])
def test_a_4_x_notebook_without_ids_is_upgraded_and_says_so(tmp_path: Path, minor: int,
                                                             caplog) -> None:
    caplog.set_level(logging.DEBUG)
    validated = validate(_write(tmp_path, _notebook(minor, [
        _code("x = 1"), {"cell_type": "markdown", "metadata": {}, "source": "# notes"}])))
    notebook = validated.notebook
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    ids = [cell.id for cell in notebook.cells]
    assert len(set(ids)) == 2 and all(ids)
    assert validated.repairs == [f"upgraded nbformat 4.{minor} to 4.5, which gives each cell "
                                 f"an id"]
    notebook.cells.append(nbformat.v4.new_code_cell("y = 2"))  # what the grader then does
    nbformat.validate(notebook)
    assert caplog.records == []


def test_keys_the_schema_does_not_allow_are_dropped_and_named(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    stream = {"output_type": "stream", "name": "stdout", "text": "1\n", "metadata": {}}
    validated = validate(_write(tmp_path, _notebook(5, [
        _code("print(1)", [stream], id="a"), _code("print(1)", [dict(stream)], id="b"),
        {"cell_type": "markdown", "metadata": {}, "source": "m", "outputs": [], "id": "c"}])))
    assert validated.repairs == ["removed 'metadata' in a stream output (2 times)",
                                 "removed 'outputs' in a markdown cell"]
    assert validated.warnings()[0].endswith(
        "the grader repaired it: removed 'metadata' in a stream output (2 times); removed "
        "'outputs' in a markdown cell.")
    nbformat.validate(validated.notebook)
    assert caplog.records == []


def test_a_valid_4_5_notebook_needs_no_repair(tmp_path: Path) -> None:
    validated = validate(_write(tmp_path, _notebook(5, [_code("x = 1", id="only")])))
    assert validated.repairs == [] and validated.warnings() == []
    assert validated.notebook.cells[0].id == "only"


def test_ids_already_there_are_kept_and_new_ones_do_not_collide(tmp_path: Path) -> None:
    validated = validate(_write(tmp_path, _notebook(5, [_code("a", id="cell-1-0"), _code("b")])))
    assert [c.id for c in validated.notebook.cells][0] == "cell-1-0"
    assert len({c.id for c in validated.notebook.cells}) == 2


def test_what_no_repair_can_fix_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(GradingError, match="not a valid Jupyter notebook: .*Open it in Jupyter"):
        validate(_write(tmp_path, _notebook(5, [{"cell_type": "code", "id": "x",
                                                 "source": 3, "metadata": {}, "outputs": []}])))


def test_a_version_3_notebook_is_converted(tmp_path: Path) -> None:
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "x = 1", "language": "python", "outputs": [],
         "metadata": {}}]}]}
    validated = validate(_write(tmp_path, v3))
    assert validated.notebook.nbformat == 4 and validated.notebook.cells[0].source == "x = 1"


def test_sources_saved_as_lists_of_lines_are_joined(tmp_path: Path) -> None:
    cell = _code("", id="a") | {"source": ["import numpy as np\n", "x = 1"]}
    validated = validate(_write(tmp_path, _notebook(5, [cell])))
    assert validated.notebook.cells[0].source == "import numpy as np\nx = 1"
