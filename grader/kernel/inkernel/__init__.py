"""Code that runs inside the student's kernel. The grader never imports these modules: it sends
their source text as cells, so they must be self-contained and leave no names behind."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def source(name: str) -> str:
    """The text of ``grader/kernel/inkernel/<name>.py``."""
    return (HERE / f"{name}.py").read_text(encoding="utf-8")
