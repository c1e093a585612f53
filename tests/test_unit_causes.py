"""Why a cell failed, as the cause code an instructor filters on and advice they can act on:
a package the runtime does not provide, a helper module never submitted, an install that was
skipped, a data path or a network access the grading machine does not have."""

from __future__ import annotations

import nbformat
import pytest

from grader.kernel.causes import for_cell, pip_installed
from grader.kernel.static import escapes
from grader.result import CAUSES, STAGE_CAUSES, ErrorInfo


def _escapes(*sources: str):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    return escapes(notebook)


def test_a_package_the_runtime_does_not_provide_says_so_and_what_it_has() -> None:
    cause, advice = for_cell("ModuleNotFoundError", "No module named 'torch'", [])
    assert cause == "missing_package"
    assert "`torch` is not provided on this grading machine (PyTorch is gigabytes" in advice
    assert "sklearn" in advice and "cv2" in advice


def test_an_unknown_module_is_a_helper_file_never_submitted() -> None:
    cause, advice = for_cell("ModuleNotFoundError", "No module named 'flower_utils'", [])
    assert cause == "missing_module"
    assert "paste its code into the notebook" in advice
    assert "grader/kernel/runtime.toml" in advice  # how an instructor adds a package


@pytest.mark.parametrize("line, module", [
    ("!pip install -q timm", "timm"),
    ("%pip install --upgrade timm==0.9.2", "timm"),
    ("!python -m pip install scikit-learn", "sklearn"),
])
def test_a_skipped_install_is_named_in_the_message(line: str, module: str) -> None:
    found = _escapes("import numpy", line)
    cause, advice = for_cell("ModuleNotFoundError", f"No module named '{module}'", found)
    assert advice.startswith(f"Cell 2 installs it (`{line}`), and installs do not run while "
                             f"grading.")
    assert cause == "missing_package"  # pip installs packages, not helper files
    assert "paste its code" not in advice


def test_pip_lines_map_requirements_to_their_import_names() -> None:
    found = pip_installed(_escapes("!pip install opencv-python-headless tensorflow_hub>=0.16"))
    assert {"cv2", "opencv-python-headless", "tensorflow_hub"} <= set(found)


@pytest.mark.parametrize("ename, value", [
    ("Exception", "URL fetch failure on https://storage.googleapis.com/download.tensorflow.org/"
                  "example_images/flower_photos.tgz: None -- [Errno -3] Temporary failure in "
                  "name resolution"),
    ("URLError", "<urlopen error [Errno -2] Name or service not known>"),
    ("ConnectionError", "HTTPSConnectionPool(host='tfhub.dev', port=443): Max retries exceeded"),
])
def test_a_download_is_a_network_cause(ename: str, value: str) -> None:
    cause, advice = for_cell(ename, value, [])
    assert cause == "network" and "no network" in advice


@pytest.mark.parametrize("ename, value, drive", [
    ("FileNotFoundError", "[Errno 2] No such file or directory: '/content/drive/MyDrive/"
                          "flowers/train.csv'", True),
    ("NotFoundError", "/home/me/flowers/*.tfrec; No such file or directory", False),
    ("InvalidArgumentError", "Expected 'tf.Tensor(False, shape=(), dtype=bool)' to be true. "
                             "Summarized data: b'No files matched pattern: data/*.tfrec'", False),
])
def test_a_path_that_is_not_here_is_a_data_path_cause(ename: str, value: str,
                                                        drive: bool) -> None:
    cause, advice = for_cell(ename, value, [])
    assert cause == "data_path" and "--mirror PREFIX=DIR" in advice
    assert ("Google Drive is not mounted" in advice) == drive


def test_anything_else_is_the_students_own_error() -> None:
    assert for_cell("ValueError", "Input 0 of layer dense is incompatible", []) == \
        ("cell_error", "fix it so the notebook runs top to bottom (Restart & Run All) before "
                       "submitting.")


def test_every_stage_has_a_cause_and_an_old_error_gets_its_stages() -> None:
    assert set(STAGE_CAUSES.values()) <= set(CAUSES)
    assert ErrorInfo("extract", "no model").cause == "no_model"
    assert ErrorInfo("execute", "m", cause="network").cause == "network"
