"""Files: what the grader writes for others to read, atomically (a reader sees the old file or
the new one, never half) and readable by others (results and reports are for sharing); and
their digests."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: Path, text: str) -> Path:
    """Write atomically, readable by others (the files are for sharing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_files(folder: Path, files: dict[str, str]) -> None:
    """Each of ``files`` (name → text) into ``folder``, atomically one by one."""
    for name, text in files.items():
        write_text(folder / name, text)


def jsonable(value: Any) -> Any:
    """What json.dumps cannot write itself: numpy scalars, paths."""
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_json(path: Path, document: Any, indent: int | None = None) -> Path:
    """``document`` as JSON (numpy scalars and paths included), atomically."""
    return write_text(path, json.dumps(document, indent=indent, default=jsonable) + "\n")
