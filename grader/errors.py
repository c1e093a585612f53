"""The one exception family of the grader.

"Could not grade" is a :class:`GradingError`; "graded and failed" is data (a failed check).
Every message says what happened and what to do about it, because students and instructors
read it in their report and terminal.
"""

from __future__ import annotations

from grader.result import ErrorInfo


class GradingError(Exception):
    """A submission (or an instructor's input) that cannot be graded.

    Args:
        stage: what stopped: a grading stage (validate, sandbox, execute, extract, rebuild,
            train), the grader itself (internal), or an instructor's input (usage, data).
        message: what happened, and what to do about it, in one or two sentences.
        cell: 1-based position of the notebook cell involved, when there is one.
        traceback: the last lines of a traceback from the student's kernel, or of a dead
            kernel's own stderr, when there is one.
        signal: the signal that ended the kernel (``SIGKILL``, ``SIGABRT``...), when one did.
        cause: a short code saying why (grader.result.CAUSES); None takes the stage's.
    """

    def __init__(self, stage: str, message: str, cell: int | None = None,
                 traceback: str | None = None, signal: str | None = None,
                 cause: str | None = None) -> None:
        super().__init__(stage, message, cell, traceback, signal, cause)
        self.stage = stage
        self.message = message
        self.cell = cell
        self.traceback = traceback
        self.signal = signal
        self.cause = cause

    def __str__(self) -> str:
        return self.message

    def info(self) -> ErrorInfo:
        """The result's ``error``."""
        return ErrorInfo(self.stage, self.message, self.cell, self.traceback,
                         self.signal or None, self.cause)


class DataError(GradingError):
    """Bad input to the data commands (synth, import): an instructor's error, not a student's."""

    def __init__(self, message: str) -> None:
        super().__init__("data", message)

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.message,))
