"""How a notebook's run failed, in words a student can act on: what nbclient raised (a cell's
error, a timeout, a dead kernel), and, for a run that went on past errors (grade check), each
student cell that failed, as grading would have stopped with it."""

from __future__ import annotations

import re
import time

from nbformat import NotebookNode

from grader.errors import GradingError
from grader.kernel import causes, crash
from grader.kernel.sandbox import Limits
from grader.kernel.static import escapes

TRACEBACK_LINES = 12                 # lines of a student traceback kept in the result
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def execution_error(exc: Exception, numbers: list[int | None], index: int,
                     deadline: float, kernel_log: str = "", km=None, limits: Limits | None = None,
                     notebook: NotebookNode | None = None) -> GradingError:
    """Turn what nbclient raised into a message naming the student's cell and what to do."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    number = numbers[index] if 0 <= index < len(numbers) else None
    where = f"Cell {number}" if number else "A cell the grader added"
    if isinstance(exc, CellTimeoutError):
        limit = "whole-notebook" if time.monotonic() >= deadline - 1 else "per-cell"
        return GradingError("execute", f"{where} did not finish in time (the {limit} time limit "
                            f"was reached). Make sure no cell waits for input or loops forever, "
                            f"and keep your own training short.", cell=number, cause="timeout")
    if isinstance(exc, DeadKernelError):
        ending = crash.ended_by(km)
        how = f" ({ending.describe(limits)})" if ending else ""
        return GradingError("execute", f"The kernel died while running {where.lower()}{how}. "
                            f"Run the notebook top to bottom yourself and fix that cell; if it "
                            f"runs on Colab, show this message to your instructor.", cell=number,
                            traceback=kernel_log or None, cause="kernel_died",
                            signal=ending.signal if ending else None)
    if isinstance(exc, CellExecutionError):
        trace = "\n".join(ANSI.sub("", exc.traceback).strip().splitlines()[-TRACEBACK_LINES:])
        value = ANSI.sub("", str(exc.evalue)).strip()
        cause, advice = causes.for_cell(exc.ename, value, escapes(notebook) if notebook else [])
        return GradingError("execute", f"{where} raised {exc.ename}: {value} — {advice}",
                            cell=number, traceback=trace, cause=cause)
    return GradingError("execute", f"The notebook could not be run ({type(exc).__name__}: "
                        f"{exc}) while at {where.lower()}.", cell=number, cause="internal")


def failed_cells(prepared: NotebookNode, numbers: list[int | None], deadline: float,
                  notebook: NotebookNode) -> list[GradingError]:
    """The student cells that raised when the notebook ran on past errors, each as the
    error grading would have stopped with."""
    from nbclient.exceptions import CellExecutionError

    failed = []
    for index, cell in enumerate(prepared.cells):
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"),
                     None)
        if error is None or numbers[index] is None:
            continue
        exc = CellExecutionError("\n".join(error.get("traceback", [])), error.get("ename", ""),
                                 error.get("evalue", ""))
        failed.append(execution_error(exc, numbers, index, deadline, notebook=notebook))
    return failed
