"""Validate a submission: is it a Jupyter notebook we can run?"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.errors import GradingError

MAX_NOTEBOOK_BYTES = 50_000_000  # notebooks with embedded plots are a few MB; 50 MB is generous


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate(path: Path) -> NotebookNode:
    """Read and validate a notebook file, or raise a GradingError saying what is wrong with it."""
    if not path.is_file():
        raise GradingError("validate", f"{path} does not exist or is not a file.")
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise GradingError("validate", f"{path.name} is {size / 1e6:.0f} MB; notebooks larger "
                           f"than {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB are refused. Clear the "
                           f"outputs (Edit → Clear all outputs) and submit again.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError:
        raise GradingError("validate", f"{path.name} is not a Jupyter notebook (it is not "
                           f"text). Submit the .ipynb file saved by Jupyter or Colab "
                           f"(File → Download → .ipynb).") from None
    except ValueError as exc:
        raise GradingError("validate", f"{path.name} is not valid notebook JSON ({exc}). The "
                           f"file may be truncated or edited by hand: download it again from "
                           f"Jupyter or Colab (File → Download → .ipynb).") from None
    return _as_notebook(document, path.name)


def _as_notebook(document: object, name: str) -> NotebookNode:
    if not isinstance(document, dict) or "cells" not in document:
        raise GradingError("validate", f"{name} is JSON but not a Jupyter notebook (it has no "
                           f"'cells'). Submit the .ipynb file itself.")
    try:
        notebook = nbformat.reads(json.dumps(document), as_version=4)
        nbformat.validate(notebook)
    except (nbformat.ValidationError, ValueError, KeyError, TypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GradingError("validate", f"{name} is not a valid Jupyter notebook: {message}. "
                           f"Open it in Jupyter, save it, and submit it again.") from None
    if not any(cell.cell_type == "code" for cell in notebook.cells):
        raise GradingError("validate", f"{name} has no code cells. Submit the notebook in "
                           f"which you built and trained your model.")
    return notebook
