"""Validate a submission: is it a Jupyter notebook we can run?"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.errors import GradingError

MAX_NOTEBOOK_BYTES = 50_000_000  # notebooks with embedded plots are a few MB; 50 MB is generous


@dataclass(frozen=True)
class Validated:
    """A notebook that validates as nbformat 4.5, and what was repaired to make it so."""
    notebook: NotebookNode
    repairs: list[str]

    def warnings(self) -> list[str]:
        return [("The notebook did not quite follow Jupyter's format, which Jupyter tolerates; "
                 "the grader repaired it: " + "; ".join(self.repairs) + ".")] \
            if self.repairs else []


def validate(path: Path) -> Validated:
    """Read a notebook file as Jupyter would, repair what Jupyter tolerates (keys the schema does
    not allow, cells without ids), or raise a GradingError saying what is wrong with it."""
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


def _as_notebook(document: object, name: str) -> Validated:
    if not isinstance(document, dict) or not {"cells", "worksheets"} & set(document):
        raise GradingError("validate", f"{name} is JSON but not a Jupyter notebook (it has no "
                           f"'cells'). Submit the .ipynb file itself.")
    try:
        # nbformat.reads would log "Notebook JSON is invalid" for what repair() fixes below;
        # its reader alone joins the sources' lines and validates nothing.
        notebook = nbformat.reader.reads(json.dumps(document))
        if notebook.nbformat != 4:
            notebook = nbformat.converter.convert(notebook, 4)
        repairs = repair(notebook)
        nbformat.validate(notebook)
    except (nbformat.ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GradingError("validate", f"{name} is not a valid Jupyter notebook: {message}. "
                           f"Open it in Jupyter, save it, and submit it again.") from None
    if not any(cell.cell_type == "code" for cell in notebook.cells):
        raise GradingError("validate", f"{name} has no code cells. Submit the notebook in "
                           f"which you built and trained your model.")
    return Validated(notebook, repairs)


def repair(notebook: NotebookNode) -> list[str]:
    """Make a notebook Jupyter opens valid nbformat 4.5, in place: drop the keys the schema does
    not allow in cells and outputs (Jupyter ignores them), and give cells ids (4.0 to 4.4 have
    none; the grader adds cells, which need them). Returns what it did, in words."""
    dropped: Counter[str] = Counter()
    for cell in notebook.cells:
        allowed = CELL_KEYS.get(cell.get("cell_type"))
        if allowed is None:
            continue  # an unknown cell type: validation says so
        for key in sorted(set(cell) - allowed):
            dropped[f"'{key}' in a {cell.cell_type} cell"] += 1
            del cell[key]
        for output in cell.get("outputs") or []:
            known = OUTPUT_KEYS.get(output.get("output_type"))
            for key in sorted(set(output) - known) if known else ():
                dropped[f"'{key}' in a {output.output_type} output"] += 1
                del output[key]
    repairs = [f"removed {what}" + (f" ({count} times)" if count > 1 else "")
               for what, count in sorted(dropped.items())]
    if (notebook.nbformat, notebook.nbformat_minor) < (4, 5):
        repairs.append(f"upgraded nbformat {notebook.nbformat}.{notebook.nbformat_minor} to "
                       f"4.5, which gives each cell an id")
        notebook.nbformat_minor = 5
    used = {cell.get("id") for cell in notebook.cells}
    for index, cell in enumerate(notebook.cells):
        if not cell.get("id"):
            cell["id"] = next(f"cell-{index}-{n}" for n in range(len(used) + 1)
                              if f"cell-{index}-{n}" not in used)
            used.add(cell["id"])
    return repairs


# What nbformat 4.5's schema allows; Jupyter itself ignores anything else.
CELL_KEYS = {"code": {"id", "cell_type", "metadata", "execution_count", "source", "outputs"},
             "markdown": {"id", "cell_type", "metadata", "attachments", "source"},
             "raw": {"id", "cell_type", "metadata", "attachments", "source"}}
OUTPUT_KEYS = {"stream": {"output_type", "name", "text"},
               "display_data": {"output_type", "data", "metadata"},
               "execute_result": {"output_type", "execution_count", "data", "metadata"},
               "error": {"output_type", "ename", "evalue", "traceback"}}
