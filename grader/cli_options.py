"""Command-line options and helpers shared by the `grade` commands (grader/cli.py, cli_data.py,
cli_course.py)."""

from __future__ import annotations

from pathlib import Path

import click

from grader.exercise import DEFAULT_EXERCISE

DIR = click.Path(file_okay=False, path_type=Path)
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
exercise_option = click.option("--exercise", default=DEFAULT_EXERCISE, show_default=True,
                               help="Exercise name (a folder of exercises/) or folder path.")

EXIT_PASSED, EXIT_NOT_PASSED, EXIT_USAGE = 0, 1, 2


def load(exercise: str, profile: str, cell_timeout: int | None = None,
         notebook_timeout: int | None = None, require_sandbox: bool = False):
    """The exercise and profile, with the command line's time limits and sandbox policy."""
    from dataclasses import replace

    from grader.exercise import load_exercise
    loaded = load_exercise(exercise)
    execution = loaded.execution
    loaded = replace(loaded, execution=replace(
        execution, cell_timeout=cell_timeout or execution.cell_timeout,
        notebook_timeout=notebook_timeout or execution.notebook_timeout))
    if require_sandbox:
        loaded = replace(loaded, sandbox=replace(loaded.sandbox, require=True))
    return loaded, loaded.profile(profile)


def execution_options(command):
    """Time limits and the sandbox policy: every command that runs a student's kernel."""
    for option in reversed([
        click.option("--cell-timeout", type=click.IntRange(min=1), metavar="SECONDS",
                     help="Per-cell time limit in the kernel [default: exercise file]."),
        click.option("--notebook-timeout", type=click.IntRange(min=1), metavar="SECONDS",
                     help="Whole-notebook time limit [default: exercise file]."),
        click.option("--require-sandbox", is_flag=True,
                     help="Fail instead of grading when bubblewrap cannot box the kernel.")]):
        command = option(command)
    return command
