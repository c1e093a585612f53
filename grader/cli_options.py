"""Command-line options shared by the `grade` commands (grader/cli.py, grader/cli_data.py)."""

from __future__ import annotations

from pathlib import Path

import click

from grader.exercise import DEFAULT_EXERCISE

DIR = click.Path(file_okay=False, path_type=Path)
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
exercise_option = click.option("--exercise", default=DEFAULT_EXERCISE, show_default=True,
                               help="Exercise name (a folder of exercises/) or folder path.")
