"""The batch's cache of task answers (``CACHE``, ``OUT/.cache`` by default): one JSON file per
answer under its key (grader.batch.keys), the executed notebook of an inspection beside it, each
written atomically, so a batch killed at any moment loses at most the tasks running then."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.io import write_json, write_text


class AnswerCache:
    """Answers by kind ("inspect", "train") and key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / kind / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write(self, kind: str, key: str, answer: dict[str, Any]) -> None:
        """The answer, its executed notebook (if any) kept in a file of its own."""
        stored = dict(answer)
        executed = stored.pop("executed", None)
        if executed:
            write_text(self.executed(kind, key), executed)
        write_json(self.folder / kind / f"{key}.json", stored)

    def executed(self, kind: str, key: str) -> Path:
        return self.folder / kind / f"{key}.ipynb"
