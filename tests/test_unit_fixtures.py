"""The committed notebooks that tools/ generates are what the generators write today, byte for
byte: a hand edit to one of them, a generator that no longer produces it, or cell ids that are
not stable from one run to the next (the committed files were written by another process) fail
here."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT

TOOLS = ROOT / "tools"
GENERATORS = ("make_notebooks", "make_test_notebooks", "make_real_world")


def _generated() -> dict[str, tuple[str, nbformat.NotebookNode | dict]]:
    """path → (generator, notebook); a plain dict is an old-format notebook kept as JSON."""
    sys.path.insert(0, str(TOOLS))
    try:
        return {path: (name, notebook) for name in GENERATORS
                for path, notebook in importlib.import_module(name).notebooks().items()}
    finally:
        sys.path.remove(str(TOOLS))


GENERATED = _generated()


def test_the_generators_cover_the_exercise_the_reference_and_the_codelab_fixtures() -> None:
    assert {"exercises/flowers-cnn/flowers-cnn.ipynb", "reference/flowers-cnn.ipynb",
            "tests/notebooks/colab_tpu_old_style_60_epochs.ipynb"} <= set(GENERATED)


@pytest.mark.parametrize("path", sorted(GENERATED))
def test_the_committed_notebook_is_what_its_generator_writes(path: str, tmp_path: Path) -> None:
    generator, notebook = GENERATED[path]
    written = tmp_path / "written.ipynb"
    if isinstance(notebook, nbformat.NotebookNode):
        nbformat.write(notebook, str(written))
    else:  # as tools/make_real_world.py writes its 4.0 and 4.4 files, which nbformat would upgrade
        written.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    assert written.read_bytes() == (ROOT / path).read_bytes(), (
        f"{path} differs from its generator's output: change the notebook in tools/, then run "
        f"`.venv/bin/python tools/{generator}.py`")

