"""Preparing a notebook for the kernel, and turning nbclient's failures into messages, without
starting a kernel (papermill's test_parameterize style: in-memory notebooks)."""

from __future__ import annotations

import ast
import copy
import time
from pathlib import Path

import pytest
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.kernel.crash import crashed_thread, log_tail
from grader.kernel.execute import GRADER_TAG, kernel_env, prepare
from grader.kernel.failures import TRACEBACK_LINES, execution_error as _execution_error
from grader.kernel.inkernel import source

PARAMETERS = {"GCS_PATTERN": "/data/shards/*.tfrec", "EPOCHS": 1}
RUNTIME = {"mirror": {"gs://flowers-public/tfrecords-jpeg-192x192-2": "/data/shards"},
           "allowed_magics": ["time"]}


def make_notebook(*cells: NotebookNode) -> NotebookNode:
    notebook = new_notebook()
    notebook.cells = list(cells)
    return notebook


def tagged(text: str, *tags: str) -> NotebookNode:
    cell = new_code_cell(text)
    cell.metadata["tags"] = list(tags)
    return cell


def roles(notebook: NotebookNode) -> list[str]:
    """Each cell's grader role, or its source for the student's cells."""
    return [cell.metadata["tags"][1] if GRADER_TAG in cell.metadata.get("tags", [])
            else cell.source for cell in notebook.cells]


@pytest.fixture
def codelab() -> NotebookNode:
    """Markdown, the parameters cell, code: the shape of the codelab's notebook."""
    return make_notebook(new_markdown_cell("# Flowers"),
                         tagged("GCS_PATTERN = 'gs://flowers-public/*.tfrec'\nEPOCHS = 60",
                                "parameters"),
                         new_code_cell("import keras"), new_markdown_cell("## Model"),
                         new_code_cell("model = keras.Sequential()"))


def test_grader_cells_surround_the_students_with_parameters_after_the_tagged_cell(
        codelab: NotebookNode) -> None:
    prepared, _, warnings = prepare(codelab, PARAMETERS, RUNTIME)
    assert roles(prepared) == ["prelude", "# Flowers", codelab.cells[1].source,
                               "injected-parameters", "import keras", "## Model",
                               "model = keras.Sequential()", "extract"]
    assert warnings == []


def test_the_injected_cell_assigns_each_parameter(codelab: NotebookNode) -> None:
    prepared, _, _ = prepare(codelab, PARAMETERS, RUNTIME)
    assert prepared.cells[3].source == "GCS_PATTERN = '/data/shards/*.tfrec'\nEPOCHS = 1"


def test_parameter_values_are_written_as_literals_that_cannot_break_out() -> None:
    hostile = {"GCS_PATTERN": "x'\nimport os; os.system('id') #\"", "EPOCHS": 3}
    prepared, _, _ = prepare(make_notebook(tagged("", "parameters")), hostile, RUNTIME)
    module = ast.parse(prepared.cells[2].source)
    assert len(module.body) == 2 and all(isinstance(s, ast.Assign) for s in module.body)
    assert {s.targets[0].id: ast.literal_eval(s.value) for s in module.body} == hostile


def test_the_prelude_carries_the_runtime_configuration_and_the_emulation() -> None:
    prepared, _, _ = prepare(make_notebook(new_code_cell("x = 1")), PARAMETERS, RUNTIME)
    prelude = prepared.cells[0]
    assert prelude.cell_type == "code" and prelude.metadata["tags"] == [GRADER_TAG, "prelude"]
    assert f"__flowers_grader_config = {RUNTIME!r}" in prelude.source
    assert source("prelude") in prelude.source


def test_the_extraction_cell_comes_last() -> None:
    prepared, _, _ = prepare(make_notebook(new_code_cell("x = 1")), PARAMETERS, RUNTIME)
    assert prepared.cells[-1].source == source("extract")
    assert prepared.cells[-1].metadata["tags"] == [GRADER_TAG, "extract"]


def test_without_a_tagged_cell_the_parameters_go_on_top_with_a_warning() -> None:
    notebook = make_notebook(new_code_cell("EPOCHS = 60"), new_code_cell("train()"))
    prepared, numbers, warnings = prepare(notebook, PARAMETERS, RUNTIME)
    assert roles(prepared) == ["prelude", "injected-parameters", "EPOCHS = 60", "train()",
                               "extract"]
    assert numbers == [None, None, 1, 2, None]
    assert len(warnings) == 1 and "No cell is tagged 'parameters'" in warnings[0]


def test_only_the_first_tagged_cell_is_followed_by_the_parameters() -> None:
    notebook = make_notebook(tagged("A = 1", "parameters"), tagged("B = 2", "parameters"))
    prepared, _, _ = prepare(notebook, PARAMETERS, RUNTIME)
    assert roles(prepared) == ["prelude", "A = 1", "injected-parameters", "B = 2", "extract"]


def test_a_cell_with_other_tags_is_not_the_parameters_cell() -> None:
    notebook = make_notebook(tagged("A = 1", "hide-input", "parameter"))
    prepared, _, warnings = prepare(notebook, PARAMETERS, RUNTIME)
    assert roles(prepared)[1] == "injected-parameters" and warnings


def test_cell_numbers_are_the_students_one_based_counting_markdown(
        codelab: NotebookNode) -> None:
    prepared, numbers, _ = prepare(codelab, PARAMETERS, RUNTIME)
    assert numbers == [None, 1, 2, None, 3, 4, 5, None]
    assert len(numbers) == len(prepared.cells)
    assert all(codelab.cells[n - 1].source == prepared.cells[i].source
               for i, n in enumerate(numbers) if n is not None)


def test_the_students_notebook_is_left_unmodified(codelab: NotebookNode) -> None:
    before = copy.deepcopy(codelab)
    prepared, _, _ = prepare(codelab, PARAMETERS, RUNTIME)
    prepared.cells[1].source = "changed"
    prepared.cells[1].metadata["tags"] = ["changed"]
    assert codelab == before and len(codelab.cells) == 5


# nbclient's failures, as the student reads them


NUMBERS: list[int | None] = [None, None, 1, 2, 3, None]  # prelude, parameters, 3 cells, extract
LATER = time.monotonic() + 3600


def _cell_error(ename: str, evalue: str, frames: int = 3) -> CellExecutionError:
    traceback = [f"\x1b[0;31m  File \x1b[0m<cell>, line {n}" for n in range(frames)]
    traceback.append(f"\x1b[0;31m{ename}\x1b[0m: {evalue}")
    return CellExecutionError.from_cell_and_msg(
        new_code_cell("model.fit(training_dataset)"),
        {"ename": ename, "evalue": f"\x1b[1m{evalue}\x1b[0m", "traceback": traceback})


def test_an_exception_in_a_cell_names_the_students_cell_and_the_error() -> None:
    error = _execution_error(_cell_error("NameError", "name 'training_dataset' is not defined"),
                             NUMBERS, 3, LATER)
    assert error.stage == "execute" and error.cell == 2
    assert error.message.startswith("Cell 2 raised NameError: name 'training_dataset' is not "
                                    "defined — ")
    assert "Restart & Run All" in error.message
    assert "\x1b" not in error.message and "\x1b" not in error.traceback
    assert error.traceback.endswith("NameError: name 'training_dataset' is not defined")


def test_a_long_traceback_keeps_its_last_lines() -> None:
    error = _execution_error(_cell_error("ValueError", "bad shape", frames=40), NUMBERS, 2,
                             LATER)
    lines = error.traceback.splitlines()
    assert len(lines) == TRACEBACK_LINES and lines[-1] == "ValueError: bad shape"


def test_an_exception_in_a_grader_cell_does_not_blame_a_student_cell() -> None:
    error = _execution_error(_cell_error("RuntimeError", "extraction failed"), NUMBERS, 5,
                             LATER)
    assert error.cell is None
    assert error.message.startswith("A cell the grader added raised RuntimeError")


@pytest.mark.parametrize("deadline, limit", [(LATER, "per-cell"), (0.0, "whole-notebook")])
def test_a_timeout_names_the_cell_and_which_limit_was_reached(deadline: float,
                                                              limit: str) -> None:
    error = _execution_error(CellTimeoutError("Cell execution timed out"), NUMBERS, 4,
                             deadline)
    assert error.cell == 3 and error.message.startswith("Cell 3 did not finish in time")
    assert f"the {limit} time limit was reached" in error.message


def test_a_dead_kernel_names_the_cell_and_keeps_the_kernels_last_words() -> None:
    error = _execution_error(DeadKernelError("Kernel died"), NUMBERS, 2, LATER,
                             "Fatal Python error: Segmentation fault")
    assert error.cell == 1 and "The kernel died while running cell 1." in error.message
    assert error.traceback == "Fatal Python error: Segmentation fault"


def test_a_dead_kernel_without_a_log_has_no_traceback() -> None:
    assert _execution_error(DeadKernelError("Kernel died"), NUMBERS, 2, LATER).traceback is None


@pytest.mark.parametrize("index", [-1, len(NUMBERS)])
def test_another_failure_outside_the_cells_names_no_cell(index: int) -> None:
    error = _execution_error(RuntimeError("zmq socket closed"), NUMBERS, index, LATER)
    assert error.cell is None and error.stage == "execute"
    assert error.message == ("The notebook could not be run (RuntimeError: zmq socket closed) "
                             "while at a cell the grader added.")


# The kernel's own stderr


LIBRARY_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795774413.268783    5540 cudart_stub.cc:31] Could not find cuda drivers",
    "W0000 00:00:1795774414.603991    5540 gpu_device.cc:2342] Cannot dlopen some GPU libraries",
    "2026-01-05 10:11:12.345678: I tensorflow/core/util/port.cc:153] oneDNN custom operations",
]
BANNER = ("NOTE: When using the `ipython kernel` entry point, Ctrl-C will not work.\n\n"
          "To exit, you will have to explicitly quit this process, by either sending\n"
          "\"quit\" from a client, or using Ctrl-\\ in UNIX-like environments.\n\n"
          "To read more about this, see https://github.com/ipython/ipython/issues/2049\n\n\n"
          "To connect another client to this kernel, use:\n"
          "    --existing /tmp/flowers-grader-spec-x/run/kernel.json")


def _log(tmp_path: Path, text: str):
    handle = open(tmp_path / "kernel.log", "w+b")
    handle.write(text.encode())
    return handle


def test_the_tail_drops_library_log_lines_and_keeps_the_crash(tmp_path: Path) -> None:
    text = "\n".join([*LIBRARY_LINES, "Fatal Python error: Aborted", *LIBRARY_LINES[1:2]])
    with _log(tmp_path, text) as handle:
        assert log_tail(handle) == "Fatal Python error: Aborted"


def test_the_tail_drops_the_kernels_start_up_banner(tmp_path: Path) -> None:
    with _log(tmp_path, BANNER + "\nMemoryError\n") as handle:
        assert log_tail(handle) == "MemoryError"


def test_the_tail_keeps_the_last_characters_without_a_partial_first_line(
        tmp_path: Path) -> None:
    text = "\n".join(f"line {n:05d}" for n in range(5_000))
    with _log(tmp_path, text) as handle:
        tail = log_tail(handle, limit=100)
    assert len(tail) == 100 and tail.endswith("line 04999")
    with _log(tmp_path, "x" * 10_000 + "\nend") as handle:  # longer than the window read
        assert log_tail(handle, limit=100) == "end"


def test_an_empty_log_has_an_empty_tail(tmp_path: Path) -> None:
    with _log(tmp_path, "") as handle:
        assert log_tail(handle) == ""


FAULT_REPORT = """terminate called after throwing an instance of 'std::bad_alloc'
Fatal Python error: Aborted

Thread 0x0000000000000002 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 327 in wait

Thread 0x0000000000000001 (most recent call first):
  File "/tmp/work/ipykernel_2/123.py", line 6 in <module>
  File "/venv/site-packages/ipykernel_launcher.py", line 18 in <module>

Extension modules: numpy (total: 1)"""


def test_a_crash_report_keeps_the_native_words_and_the_cell_running() -> None:
    kept = crashed_thread(FAULT_REPORT)
    assert kept.startswith("terminate called after throwing an instance of 'std::bad_alloc'")
    assert "Fatal Python error: Aborted" in kept
    assert "ipykernel_2/123.py\", line 6" in kept
    assert "threading.py" not in kept and "Extension modules" not in kept


def test_a_crash_in_python_code_keeps_the_current_thread() -> None:
    report = FAULT_REPORT.replace("Thread 0x0000000000000002", "Current thread 0x02")
    kept = crashed_thread(report)
    assert "threading.py" in kept and "ipykernel_2" not in kept
    assert crashed_thread("a plain traceback") is None


def test_the_kernel_sees_no_accelerator_and_nothing_of_the_graders_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    env = kernel_env(tmp_path)
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["JAX_PLATFORMS"] == "cpu"
    assert "KERAS_BACKEND" not in env and env["HOME"] == str(tmp_path)
