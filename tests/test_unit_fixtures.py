"""The committed notebooks that tools/ generates are what the generators write today, byte for
byte: a hand edit to one of them, a generator that no longer produces it, or cell ids that are
not stable from one run to the next (the committed files were written by another process) fail
here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

TOOLS = ROOT / "tools"
GENERATORS = ("make_notebooks", "make_test_notebooks")


def _generated() -> dict[str, nbformat.NotebookNode]:
    sys.path.insert(0, str(TOOLS))
    try:
        return {path: notebook for name in GENERATORS
                for path, notebook in importlib.import_module(name).notebooks().items()}
    finally:
        sys.path.remove(str(TOOLS))


GENERATED = _generated()


def test_the_generators_cover_the_exercise_the_reference_and_the_codelab_fixtures() -> None:
    assert {"exercises/flowers-cnn/flowers-cnn.ipynb", "reference/flowers-cnn.ipynb",
            "tests/notebooks/colab_tpu_old_style_60_epochs.ipynb"} <= set(GENERATED)


@pytest.mark.parametrize("path", sorted(GENERATED))
def test_the_committed_notebook_is_what_its_generator_writes(path: str, tmp_path: Path) -> None:
    written = tmp_path / "written.ipynb"
    nbformat.write(GENERATED[path], str(written))
    generator = "make_test_notebooks" if path.startswith("tests/") else "make_notebooks"
    assert written.read_bytes() == (ROOT / path).read_bytes(), (
        f"{path} differs from its generator's output: change the notebook in tools/, then run "
        f"`.venv/bin/python tools/{generator}.py`")

