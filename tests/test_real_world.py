"""The real-world corpus (tests/notebooks/real-world/): notebooks written the way learners write
them on Colab, each graded by one `grade batch --no-train` in the sandbox, and each ending as its
README said before the grader ran: rules passed (`checked`), `rejected` by the rules it names, or
an `error` with the cause it names.

The data folder holds what an instructor's does: shards, the photo archive `grade data fetch`
keeps (a small one here, served to `get_file`), and TFDS's tf_flowers prepared from it.

The same notebooks, with the exercise's own student notebook (the codelab's style), go through
`grade check` (what students run before submitting), without bubblewrap: its verdict must be
grading's (status, failed rules, cause), and the sandbox must change nothing a notebook does (the
model, and outputs in the same cells up to where grading stopped), printing no library log line
(nbformat's, on the 4.0 file, or TensorFlow's).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import NOTEBOOKS, run_grade, start_grade
from grader.exercise import load_exercise

CORPUS = NOTEBOOKS / "real-world"


def expectations() -> dict[str, tuple[str, list[str]]]:
    """notebook name → (expected status, expected causes or failed rules), from the README."""
    found = {}
    for line in (CORPUS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`") and cells[0].endswith(".ipynb`"):
            found[cells[0].strip("`")] = (cells[4].strip("`"), re.findall(r"`([a-z_]+)`",
                                                                           cells[5]))
    return found


@pytest.fixture(scope="module")
def work(real_world_data: Path) -> Path:
    """The data folder (conftest's real_world_data) and the corpus (without its README, with
    the student notebook)."""
    notebooks = real_world_data / "notebooks"
    notebooks.mkdir()
    for notebook in [*CORPUS.glob("*.ipynb"), load_exercise().notebook]:
        shutil.copy(notebook, notebooks)
    return real_world_data


def _batch(work: Path, out: str, *options: str, folder: str = "notebooks") -> Path:
    process = run_grade("batch", work / folder, "--data", work / "data", "--out",
                        work / out, "--no-train", "--workers", "2", *options)
    assert process.returncode == 0, process.stderr[-3000:]
    return work / out


@pytest.fixture(scope="module")
def graded(work: Path) -> Path:
    return _batch(work, "out", "--require-sandbox")


@pytest.fixture(scope="module")
def checked(work: Path) -> Path:
    """`grade check --data` on every notebook, as on a student's machine: without bubblewrap.
    Two processes share the notebooks (two cores)."""
    out = work / "checked"
    names = sorted(p.name for p in (work / "notebooks").glob("*.ipynb"))
    halves = [names[0::2], names[1::2]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWERS_GRADER_BWRAP", "none")   # as on a machine without bubblewrap
        running = [start_grade("check", *[work / "notebooks" / n for n in half], "--data",
                               work / "data", "--out", out) for half in halves]
        for process in running:
            stdout, stderr = process.communicate(timeout=1200)
            assert process.returncode in (0, 1) and "Traceback" not in stdout + stderr, \
                stderr[-3000:]
            assert stdout.count("VERDICT: ") == len(halves[running.index(process)]), stdout
            # a library's log line (nbformat's on the 4.0 file, TensorFlow's) is not for users
            assert all(line.startswith("checking ") for line in stderr.splitlines()), stderr
    return out


def _result(out: Path, notebook: str) -> dict:
    return json.loads((out / Path(notebook).stem / "result.json").read_text())


def test_the_readme_decides_every_notebook_of_the_corpus() -> None:
    assert sorted(expectations()) == sorted(p.name for p in CORPUS.glob("*.ipynb"))
    assert len(expectations()) >= 15


@pytest.mark.parametrize("notebook", sorted(expectations()))
def test_each_notebook_ends_as_its_readme_says(graded: Path, notebook: str) -> None:
    status, named = expectations()[notebook]
    result = _result(graded, notebook)
    error = result["error"] or {}
    assert result["status"] == status, (error.get("message"), error.get("traceback"))
    if status == "error":
        assert [error["cause"]] == named, error["message"]
    elif status == "rejected":
        failed = {c["id"] for c in result["checks"] if c["passed"] is False}
        assert set(named) <= failed


def test_what_was_emulated_or_repaired_is_said(graded: Path) -> None:
    warnings = {name: " ".join(_result(graded, name)["warnings"]) for name in expectations()}
    assert "the TPU was emulated" in warnings["colab_tpu_sample_cluster_resolver.ipynb"]
    assert "upgraded nbformat 4.4 to 4.5" in warnings["jupyter_nbformat_4_4_no_cell_ids.ipynb"]
    assert "removed 'metadata' in a stream output" in \
        warnings["saved_outputs_stream_metadata_key.ipynb"]


def test_a_skipped_install_is_named_where_the_import_fails(graded: Path) -> None:
    message = _result(graded, "pip_install_timm.ipynb")["error"]["message"]
    assert "installs it (`!pip install -q timm`)" in message


def test_the_executed_notebooks_are_valid(graded: Path) -> None:
    import nbformat

    for name in ("colab_nbformat_4_0_no_cell_ids.ipynb", "saved_outputs_stream_metadata_key.ipynb"):
        nbformat.validate(nbformat.read(graded / Path(name).stem / "executed.ipynb", 4))


def _verdict(out: Path, name: str) -> dict:
    """The rules verdict: the status, the rules that failed, and an error's cause."""
    result = _result(out, name)
    return {"status": result["status"], "cause": (result["error"] or {}).get("cause"),
            "failed": sorted(c["id"] for c in result["checks"] if c["passed"] is False)}


def _outputs(out: Path, name: str) -> list[int]:
    """The executed notebook's cells with output other than standard error: TensorFlow's
    native threads write to it when they get to it (its CUDA probe's line landed in cell 4 in
    one run and cell 6 in the next, boxed or not)."""
    executed = out / Path(name).stem / "executed.ipynb"
    cells = json.loads(executed.read_text())["cells"] if executed.is_file() else []
    return [index for index, cell in enumerate(cells) if any(
        output.get("name") != "stderr" for output in cell.get("outputs", []))]


def _model(out: Path, name: str) -> dict:
    model = _result(out, name)["model"]
    return {key: model.get(key) for key in ("variable", "params", "architecture")}


def test_grade_check_gives_grading_verdict_on_every_notebook(graded: Path,
                                                              checked: Path) -> None:
    names = sorted(p.name for p in (graded.parent / "notebooks").glob("*.ipynb"))
    assert len(names) == len(expectations()) + 1
    assert {n: _verdict(checked, n) for n in names} == {n: _verdict(graded, n) for n in names}
    assert _verdict(checked, load_exercise().notebook.name)["status"] == "checked"


def test_the_sandbox_changes_nothing_a_notebook_does(graded: Path, checked: Path) -> None:
    """Boxed (the batch) and not (the check): the same model, and output in the same cells up
    to the one where grading stopped (the check runs on past it)."""
    names = sorted(p.name for p in (graded.parent / "notebooks").glob("*.ipynb"))
    for name in names:
        assert _result(graded, name)["isolation"] == "bubblewrap"
        assert _result(checked, name)["isolation"] == "limits-only"
        boxed = _outputs(graded, name)
        end = max(boxed, default=-1) if _result(graded, name)["status"] == "error" else None
        unboxed = [i for i in _outputs(checked, name) if end is None or i <= end]
        assert unboxed == boxed, name
        if _result(graded, name)["status"] != "error":
            assert _model(checked, name) == _model(graded, name), name
