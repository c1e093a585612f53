"""Shared fixtures: notebooks built from cells, synthetic shard sets, and the `grade` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
SHARED_PHOTOS = ROOT.parent / "shared" / "flowers-photos"
STUDENT_NOTEBOOK = ROOT / "exercises" / "flowers-cnn" / "flowers-cnn.ipynb"
REFERENCE_NOTEBOOK = ROOT / "reference" / "flowers-cnn.ipynb"


class Graded:
    """What one `grade` run left behind."""

    def __init__(self, process: subprocess.CompletedProcess, out: Path) -> None:
        self.exit_code = process.returncode
        self.stdout = process.stdout
        self.stderr = process.stderr
        self.out = out
        path = out / "result.json"
        self.result = json.loads(path.read_text()) if path.exists() else None


def run_grade(*args: str | Path, timeout: int = 3600) -> subprocess.CompletedProcess:
    """Run the real `grade` command in a subprocess, as an instructor would."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "grader", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def grade_notebook(notebook: Path, data: Path, out: Path, *extra: str) -> Graded:
    return Graded(run_grade("notebook", notebook, "--data", data, "--out", out, *extra), out)


@pytest.fixture
def make_notebook(tmp_path: Path) -> Callable[..., Path]:
    """Write a notebook made of the given code cells; returns its path."""

    def make(cells: list[str], name: str = "submission.ipynb",
             tags: dict[int, list[str]] | None = None) -> Path:
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        for index, cell_tags in (tags or {}).items():
            notebook.cells[index].metadata["tags"] = cell_tags
        path = tmp_path / name
        nbformat.write(notebook, str(path))
        return path

    return make


def _synth(folder: Path, images: int, seed: int) -> Path:
    process = run_grade("data", "synth", "--out", folder, "--images", images, "--seed", seed)
    assert process.returncode == 0, process.stderr
    folder.chmod(0o755)  # pytest makes it 0700; the sandboxed kernel's user must read it
    return folder


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic shard set for tests that only need the path to run (smoke profile)."""
    return _synth(tmp_path_factory.mktemp("small-data"), 160, 7)


@pytest.fixture(scope="session")
def quick_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acceptance data: `grade data synth --seed 1`, default size, for the quick profile."""
    return _synth(tmp_path_factory.mktemp("quick-data"), 1280, 1)


def _running_grader_processes() -> list[str]:
    """Kernels, sandboxes and task processes still running, and any process of a kernel's
    user (uids from 200000, grader/sandbox.py); zombies excluded."""
    alive = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            status = (proc / "status").read_text()
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "State:\tZ" in status:
            continue
        uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")),
                   "")
        if uid.isdigit() and int(uid) >= 200_000 or any(k in command for k in
                                 ("ipykernel_launcher", "bwrap", "grader.tasks")):
            alive.append(f"{proc.name} uid={uid}: {command[:100]}")
    return alive


def leftover_processes(seconds: float = 30) -> list[str]:
    """What is still running after waiting up to ``seconds`` for it to end."""
    deadline = time.monotonic() + seconds
    while _running_grader_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    return _running_grader_processes()
