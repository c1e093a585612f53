"""What a submitted notebook says without running it: its shell escapes and magics, and the
accuracy its saved outputs claim (and how far that is from the one the grader measured). Read
from the notebook as submitted (outputs included)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbformat import NotebookNode

SHELL_CALL = re.compile(r"get_ipython\(\)\.(system|getoutput)\((.*)\)")
MAGIC_CALL = re.compile(r"get_ipython\(\)\.run_(line|cell)_magic\(\s*'([^']+)'")
# Keras progress lines, the codelab's "[val_loss, val_acc]" print, and "final accuracy" prints.
KERAS_VAL = re.compile(r"val_acc(?:uracy)?\s*[:=]\s*([0-9]*\.?[0-9]+)")
LOSS_ACC_LIST = re.compile(r"\[\s*val_loss\s*,\s*val_acc(?:uracy)?\s*\]\s*:?\s*\[\s*"
                           r"[-0-9.e]+\s*,\s*([0-9]*\.?[0-9]+)")
FINAL = re.compile(r"final[ _]*(?:validation[ _]*)?acc(?:uracy)?\s*[:=]?\s*"
                   r"([0-9]*\.?[0-9]+)\s*(%?)", re.IGNORECASE)
CLAIM_GAP = 0.10  # claimed vs verified accuracy gap that gets flagged


@dataclass(frozen=True)
class Escape:
    cell: int       # 1-based cell number in the submitted notebook
    kind: str       # "shell", "line magic" or "cell magic"
    text: str       # the source line as written
    name: str       # the magic's name, or the command


def escapes(notebook: NotebookNode) -> list[Escape]:
    """Every shell escape and magic in the notebook's code cells, found as IPython sees them."""
    from IPython.core.inputtransformer2 import TransformerManager

    manager = TransformerManager()
    found: list[Escape] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        try:
            code = manager.transform_cell(cell.source)
        except Exception:  # source IPython cannot even transform: the kernel will say why
            continue
        lines = cell.source.splitlines()
        for line_number, line in enumerate(code.splitlines()):
            written = _written(lines, line_number, line)
            if SHELL_CALL.search(line):
                found.append(Escape(number, "shell", written, written.lstrip("! ")))
            elif magic := MAGIC_CALL.search(line):
                found.append(Escape(number, f"{magic.group(1)} magic", written,
                                    magic.group(2)))
    return found


def _written(lines: list[str], index: int, transformed: str) -> str:
    text = lines[index].strip() if index < len(lines) else transformed.strip()
    return text if len(text) <= 120 else text[:117] + "..."


def escape_warnings(notebook: NotebookNode, allowed_magics: tuple[str, ...]) -> list[str]:
    """One warning per shell escape or magic: what the grader did with it."""
    warnings = []
    for escape in escapes(notebook):
        ran = escape.kind != "shell" and escape.name in allowed_magics
        verb = "ran as usual" if ran else "was skipped: shell commands, installs and " \
                                          "Colab-only magics do not run while grading"
        warnings.append(f"Cell {escape.cell}: `{escape.text}` {verb}.")
    return warnings


def _output_text(cell: NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join("".join(p) if isinstance(p, list) else p for p in parts)


def claimed_accuracy(notebook: NotebookNode) -> float | None:
    """The last validation accuracy the notebook's saved outputs claim, as a fraction."""
    claim = None
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        text = _output_text(cell)
        matches = [(m.start(), float(m.group(1))) for m in KERAS_VAL.finditer(text)]
        matches += [(m.start(), float(m.group(1))) for m in LOSS_ACC_LIST.finditer(text)]
        matches += [(m.start(), float(m.group(1)) / (100 if m.group(2) else 1))
                    for m in FINAL.finditer(text)]
        if matches:
            value = max(matches)[1]
            claim = value / 100 if value > 1 else value
    return claim


def claim_warning(claimed: float | None, verified: float | None) -> str | None:
    """The warning for a notebook whose saved outputs claim far more (or less) than the grader
    measured; None when they agree (or either is unknown)."""
    if claimed is None or verified is None or abs(claimed - verified) <= CLAIM_GAP:
        return None
    return (f"The notebook's outputs claim {claimed:.1%} validation accuracy; the grader "
            f"measured {verified:.1%}. Only the grader's number counts.")
