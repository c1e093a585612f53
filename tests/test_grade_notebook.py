"""`grade notebook` end to end: broken submissions end in a result, never in a traceback; the
cost of a training is projected from its first steps, and --max-minutes stops it; an
instructor's private test set decides the verdict. The gradings that start a kernel run two at
a time (one module fixture), each with its own output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from markupsafe import escape

from conftest import (NOTEBOOKS, STUDENT_NOTEBOOK, Graded, grade_concurrently, grade_notebook,
                      write_notebook)
from grader.exercise import load_exercise

SEVERAL_MODELS = [
    "import keras",
    "a = keras.Sequential([keras.Input((192, 192, 3)), keras.layers.Conv2D(4, 3)])\n"
    "b = keras.Sequential([keras.Input((192, 192, 3)), keras.layers.Conv2D(8, 3)])",
]
PARAMETERS = [
    "GCS_PATTERN = 'gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec'\nEPOCHS = 60",
    "import glob, keras\nassert EPOCHS == 1, EPOCHS\nfiles = glob.glob(GCS_PATTERN)\n"
    "assert len(files) == 16, files",
    "model = keras.Sequential([keras.Input((192, 192, 3)),\n"
    "    keras.layers.Conv2D(16, 3, activation='relu'), keras.layers.MaxPooling2D(4),\n"
    "    keras.layers.Conv2D(32, 3, activation='relu'),\n"
    "    keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5, activation='softmax')])",
]


@pytest.fixture(scope="module")
def graded(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    """Every grading below that starts a kernel, two at a time."""
    work = tmp_path_factory.mktemp("grade-notebook")
    notebooks = {
        "raises": (NOTEBOOKS / "raises_in_cell.ipynb", ["--no-train"]),
        "no_model": (NOTEBOOKS / "never_defines_model.ipynb", ["--no-train"]),
        "several": (write_notebook(work / "several.ipynb", SEVERAL_MODELS), []),
        "parameters": (write_notebook(work / "parameters.ipynb", PARAMETERS, {0: ["parameters"]}),
                       ["--no-train"]),
        # 0.001 minutes: whatever this machine's speed, the projection is over the limit.
        "max_minutes": (STUDENT_NOTEBOOK, ["--profile", "smoke", "--max-minutes", "0.001"]),
        # the small shards also given as the instructor's private test set
        "test_data": (STUDENT_NOTEBOOK, ["--profile", "smoke", "--test-data", small_data]),
        # Colab's nbformat 4.0 file: nbformat would warn (cell ids) on the way
        "nbformat_4_0": (NOTEBOOKS / "real-world" / "colab_nbformat_4_0_no_cell_ids.ipynb",
                         ["--no-train"]),
    }
    return grade_concurrently({
        name: (work / name, ["notebook", notebook, "--data", small_data, "--out", work / name,
                             *extra]) for name, (notebook, extra) in notebooks.items()})


def _assert_error(graded, stage: str, *phrases: str, cell: int | None = None) -> None:
    assert graded.exit_code == 1, graded.stderr
    assert "Traceback" not in graded.stderr and "Traceback" not in graded.stdout
    result = graded.result
    assert result["status"] == "error" and result["passed"] is False
    assert result["error"]["stage"] == stage
    for phrase in phrases:
        assert phrase in result["error"]["message"]
    assert result["error"]["cell"] == cell
    assert result["error"]["message"] in graded.stdout  # the terminal says it too
    report = (graded.out / "report.html").read_text()
    assert str(escape(result["error"]["message"])) in report


def test_a_file_that_is_not_a_notebook(small_data: Path, tmp_path: Path) -> None:
    graded = grade_notebook(NOTEBOOKS / "not_a_notebook.ipynb", small_data, tmp_path)
    _assert_error(graded, "validate", "not valid notebook JSON", "File → Download → .ipynb")


def test_a_notebook_with_invalid_json(small_data: Path, tmp_path: Path) -> None:
    graded = grade_notebook(NOTEBOOKS / "invalid_json.ipynb", small_data, tmp_path)
    _assert_error(graded, "validate", "invalid_json.ipynb is not valid notebook JSON",
                  "download it again")


def test_a_missing_file(small_data: Path, tmp_path: Path) -> None:
    graded = grade_notebook(tmp_path / "nothing.ipynb", small_data, tmp_path / "out")
    _assert_error(graded, "validate", "does not exist")


def test_a_cell_that_raises_names_the_cell(graded) -> None:
    raised = graded["raises"]
    _assert_error(raised, "execute", "Cell 3 raised NameError: name 'model' is not defined",
                  "runs top to bottom", cell=3)
    assert "NameError" in raised.result["error"]["traceback"]
    # The executed notebook is kept, failure marked, like papermill's output notebook.
    assert "NameError" in (raised.out / "executed.ipynb").read_text()


def test_a_notebook_that_never_builds_a_model(graded) -> None:
    _assert_error(graded["no_model"], "extract", "never built a Keras model", "named `model`")


def test_several_models_and_none_named_model_is_reported(graded) -> None:
    several = graded["several"]
    model = several.result["model"]
    assert model["candidates"] == ["a", "b"] and model["variable"] == "b"
    assert model["ambiguous"] is True
    assert any("several Keras models (a, b)" in w for w in several.result["warnings"])
    failed = [c["id"] for c in several.result["checks"] if c["passed"] is False]
    assert failed == ["output_classes", "softmax_output", "min_params"]


def test_parameters_are_injected_after_the_tagged_cell(graded) -> None:
    injected = graded["parameters"]
    assert injected.result["error"] is None, injected.result["error"]
    assert injected.result["status"] == "checked" and injected.exit_code == 0
    assert injected.result["model"]["params"] == 448 + 4640 + 165
    assert injected.result["warnings"] == [
        "Trusted training was skipped (--no-train): the model passed every rule, and its "
        "accuracy was not measured."]


def test_test_data_decides_the_verdict(graded) -> None:
    result = graded["test_data"].result
    training = result["training"]
    assert training["test_accuracy"] is not None
    assert result["accuracy"] == training["test_accuracy"]
    assert sum(map(sum, training["test"]["confusion"])) == 160


def test_the_projection_is_printed_and_recorded_before_training(graded) -> None:
    graded = graded["test_data"]
    projection = graded.result["training"]["projection"]
    profile = load_exercise().profile("smoke")
    assert projection["images_per_second"] > 0 and projection["epochs"] == profile.epochs
    assert projection["timed_steps"] == profile.max_train_images // profile.batch_size - 1
    training = graded.result["training"]
    assert projection["host"] == f"{training['device']}, {training['precision']}"
    line = next(l for l in graded.stderr.splitlines() if l.startswith("trusted training:"))
    assert f"{projection['images_per_second']:.1f} images/s measured on" in line
    assert graded.result["status"] == "graded"


def test_max_minutes_stops_a_training_projected_to_take_longer(graded) -> None:
    stopped = graded["max_minutes"]
    result = stopped.result
    assert stopped.exit_code == 1 and "Traceback" not in stopped.stderr
    assert result["status"] == "error" and result["error"]["stage"] == "train"
    assert "more than the 0.001 minutes allowed (by --max-minutes" in result["error"]["message"]
    projection = result["training"]["projection"]
    assert f"{projection['images_per_second']:.1f} images/s" in result["error"]["message"]
    assert result["training"]["history"] == {}


def test_a_4_0_notebook_is_graded_without_a_library_log_line(graded) -> None:
    old = graded["nbformat_4_0"]
    assert old.exit_code == 0 and old.result["status"] == "checked", old.stderr[-3000:]
    assert old.stderr.splitlines() == [line for line in old.stderr.splitlines()
                                       if line.startswith("grading ")], old.stderr
    nbformat.validate(nbformat.read(old.out / "executed.ipynb", 4))
