"""The commands for courses and students: `grade check` (a student's check before submitting)
and `grade autograder` (Gradescope's autograder zip). docs/gradescope.md describes both."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from grader.cli_options import (DIR, EXISTING_DIR, EXIT_NOT_PASSED, EXIT_PASSED,
                                execution_options, exercise_option, load)
from grader.autograder import VISIBILITY, Settings, build
from grader.exercise import DEFAULT_PROFILE


@click.command()
@click.argument("notebooks", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--data", type=EXISTING_DIR,
              help="The flower shards, to run the cells that read them as the grader will "
                   "(without them, those cells are listed as not run).")
@click.option("--out", type=DIR, help="Also write result.json and report.html here (a "
              "sub-folder per notebook when there are several).")
@exercise_option
@execution_options
def check(notebooks: tuple[Path, ...], data: Path | None, out: Path | None, exercise: str,
          **execution: Any) -> None:
    """Check NOTEBOOK before you submit it: run it as the grader will, check every rule,
    train nothing, and say whether it will be graded and what to fix."""
    from grader import check as checking

    loaded, _ = load(exercise, DEFAULT_PROFILE, **execution)
    ready = True
    for notebook in notebooks:
        click.echo(f"checking {notebook} ...", err=True)
        folder = out / notebook.stem if out and len(notebooks) > 1 else out
        result = checking.run(notebook, data, loaded, folder)
        verdict = checking.verdict(result, loaded, data is not None,
                                   checking.stamp_of(notebook))
        click.echo(f"{notebook}:")
        for line in verdict.lines:
            click.echo(f"  {line}")
        ready = ready and verdict.ready
    sys.exit(EXIT_PASSED if ready else EXIT_NOT_PASSED)


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The zip to write, e.g. autograder.zip.")
@click.option("--data", required=True, type=EXISTING_DIR,
              help="Shards the notebooks read and the training uses (put in the zip).")
@exercise_option
@click.option("--profile", default="short", show_default=True,
              help="Training profile for the instant feedback; it must fit --timeout-minutes.")
@click.option("--no-train", is_flag=True,
              help="Rules only: run the notebook and check the model, train nothing.")
@click.option("--timeout-minutes", type=click.FloatRange(min=5, max=40), default=40,
              show_default=True, help="The assignment's autograder timeout on Gradescope.")
@click.option("--memory-gb", type=click.FloatRange(min=0.5), default=6.0, show_default=True,
              help="The container memory chosen on Gradescope (half goes to the kernel).")
@click.option("--visibility", type=click.Choice(VISIBILITY), default="visible",
              show_default=True,
              help="When students see the score and the tests.")
@click.option("--wheel", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The grader's wheel [default: built from this checkout].")
def autograder(out: Path, data: Path, exercise: str, profile: str, no_train: bool,
               timeout_minutes: float, memory_gb: float, visibility: str,
               wheel: Path | None) -> None:
    """Write a Gradescope autograder zip (setup.sh, run_autograder, the grader, the exercise
    and the shards) giving instant feedback on submit (docs/gradescope.md)."""
    from grader import __version__

    loaded, chosen = load(exercise, profile)
    settings = Settings(loaded.id, None if no_train else chosen.name, timeout_minutes,
                        memory_gb, visibility, __version__)
    path = build(out, loaded.folder, data, settings, wheel)
    what = "rules only" if no_train else f"profile {chosen.name}"
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {what}, "
               f"{timeout_minutes:g} min, {memory_gb:g} GB): upload it as the assignment's "
               f"autograder (Configure Autograder → Zip file upload).")
