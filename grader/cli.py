"""The `grade` command: parse arguments, call one library function, map errors to exit codes.

Exit codes: 0 passed; 1 graded and not passed, rejected, or not gradable (the reason is in
result.json); 2 usage error.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from grader.cli_data import data
from grader.cli_course import autograder, check
from grader.cli_options import (DIR, EXISTING_DIR, EXIT_NOT_PASSED, EXIT_PASSED, EXIT_USAGE,
                                execution_options, exercise_option, load)
from grader.errors import GradingError
from grader.exercise import DEFAULT_PROFILE, PRECISIONS
from grader.lazy import quiet_libraries
from grader.result import Result

def _summary(result: Result, out_dir: Path) -> int:
    """Print the verdict and where to read more; return the exit code."""
    accuracy = result.accuracy
    shown = "—" if accuracy is None else f"{accuracy:.1%}"
    verdict = "every rule passed, not trained" if result.status == "checked" else \
        "passed" if result.passed else "not passed"
    click.echo(f"{result.student}: {result.status}, {verdict}, accuracy {shown}, "
               f"score {result.score}/{result.max_score}")
    if result.error:
        click.echo(f"  {result.error.message}")
    click.echo(f"  report: {out_dir / 'report.html'}")
    click.echo(f"  result: {out_dir / 'result.json'}")
    # --no-train asked for the rules only: passing them all is all there was to pass.
    return EXIT_PASSED if result.passed or result.status == "checked" else EXIT_NOT_PASSED


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log every grading step.")
def cli(verbose: bool) -> None:
    """Grade 'convolutional flower classifier from scratch' notebooks."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()


def _mirror(pairs: tuple[str, ...]) -> dict[str, Path]:
    """--mirror gs://PREFIX=DIR options, checked."""
    mirror = {}
    for pair in pairs:
        prefix, _, folder = pair.partition("=")
        if not prefix.startswith("gs://") or not folder:
            raise click.BadParameter(f"'{pair}' is not PREFIX=DIR with a gs:// prefix.",
                                     param_hint="--mirror")
        if not Path(folder).is_dir():
            raise click.BadParameter(f"'{folder}' is not a folder.", param_hint="--mirror")
        mirror[prefix.rstrip("/")] = Path(folder)
    return mirror


def _grade(notebook: Path, data: Path, out: Path, exercise: str, profile: str,
           test_data: Path | None, precision: str, mirror: tuple[str, ...] = (),
           deterministic: bool | None = None, cache: Path | None = None,
           no_train: bool = False, max_minutes: float | None = None, backend: str = "auto",
           **execution: Any) -> int:
    from grader.pipeline import Request, grade
    from grader.training.backend import choose

    loaded, chosen = load(exercise, profile, **execution)
    request = Request(notebook, data, out, loaded, chosen, test_data, precision,
                      choose(backend) if not no_train else "tensorflow",
                      mirror=_mirror(mirror), deterministic=deterministic, cache=cache,
                      train=not no_train, max_minutes=max_minutes)
    what = "rules only, --no-train" if no_train else f"profile {chosen.name}"
    click.echo(f"grading {notebook} ({what}) ...", err=True)
    return _summary(grade(request, lambda line: click.echo(line, err=True)), out)


_profile_option = click.option("--profile", default=DEFAULT_PROFILE, show_default=True,
                               help="Training profile from the exercise file.")
_precision_option = click.option(
    "--precision", default="auto", show_default=True,
    type=click.Choice(PRECISIONS),
    help="Trusted training precision; auto: the profile's when it names one (the demo: "
         "float32), else bf16 where the hardware has it.")
_backend_option = click.option(
    "--backend", default="auto", show_default=True, type=click.Choice(["auto", "tensorflow", "jax"]),
    help="Keras backend of trusted training; auto: JAX where JAX sees a GPU or TPU, else "
         "TensorFlow (docs/accelerators.md).")
_deterministic_option = click.option(
    "--deterministic/--no-deterministic", default=None,
    help="Seed everything and turn on TensorFlow's op determinism, so the same submission gets "
         "the same score every time [default: on for CPUs, off on GPUs and TPUs].")
_training_options = [
    click.option("--no-train", is_flag=True,
                 help="Stop after the rules: run the notebook and check the model, train nothing."),
    click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), metavar="N",
                 help="Stop a trusted training whose projected time (measured on its first "
                      "steps) is over N minutes; the result says so."),
]
_mirror_option = click.option(
    "--mirror", multiple=True, metavar="PREFIX=DIR",
    help="Serve the notebook's reads under a gs:// PREFIX from local DIR (repeatable).")


def _grading_options(command):
    """The options `notebook` and `reference` share, in the order --help lists them."""
    command = execution_options(command)
    for option in reversed([
        click.option("--data", required=True, type=EXISTING_DIR,
                     help="Folder of flower shards."),
        click.option("--out", required=True, type=DIR,
                     help="Folder for result.json and report.html."),
        exercise_option, _profile_option,
        click.option("--test-data", type=EXISTING_DIR,
                     help="Private test shards for the verdict."),
        _precision_option, _backend_option, _deterministic_option, _mirror_option,
        click.option("--cache", type=DIR, help="Keep the decoded data in this folder and "
                     "reuse it next time [default: decode in memory]."),
        *_training_options]):
        command = option(command)
    return command


@cli.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@_grading_options
def notebook(notebook: Path, data: Path, out: Path, exercise: str, profile: str,
             test_data: Path | None, precision: str, mirror: tuple[str, ...],
             **execution: Any) -> None:
    """Grade one submitted NOTEBOOK."""
    sys.exit(_grade(notebook, data, out, exercise, profile, test_data, precision, mirror,
                    **execution))


@cli.command()
@_grading_options
def reference(data: Path, out: Path, exercise: str, profile: str, test_data: Path | None,
              precision: str, mirror: tuple[str, ...], **execution: Any) -> None:
    """Grade the exercise's reference solution (CI: it must pass)."""
    loaded, _ = load(exercise, profile)
    sys.exit(_grade(loaded.reference_notebook(), data, out, exercise, profile, test_data,
                    precision, mirror, **execution))


@cli.command()
@click.argument("submissions", type=click.Path(exists=True, path_type=Path))
@click.option("--data", required=True, type=EXISTING_DIR, help="Folder of flower shards.")
@click.option("--out", required=True, type=DIR,
              help="Folder for one folder per student, index.html, grades.csv, junit.xml.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Submissions graded at once on this machine [default: half the cores].")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on a Dask cluster, e.g. tcp://HOST:8786, instead of local workers.")
@exercise_option
@_profile_option
@click.option("--test-data", type=EXISTING_DIR, help="Private test shards for the verdict.")
@_precision_option
@_backend_option
@_deterministic_option
@_mirror_option
@click.option("--cache", type=DIR, help="Decoded data and task answers [default: OUT/.cache]. "
              "On a cluster, a folder every worker sees at the same path.")
@_training_options[0]
@_training_options[1]
@execution_options
def batch(submissions: Path, data: Path, out: Path, workers: int | None, scheduler: str | None,
          exercise: str, profile: str, test_data: Path | None, precision: str, backend: str,
          deterministic: bool | None, mirror: tuple[str, ...], cache: Path | None,
          no_train: bool, max_minutes: float | None, **execution: Any) -> None:
    """Grade a class: SUBMISSIONS is a folder of notebooks, a folder of per-student folders,
    or an LMS export .zip. Rerunning the same command resumes where it stopped."""
    from grader.batch import driver as batches
    from grader.batch.progress import Progress
    from grader.training.backend import choose

    loaded, chosen = load(exercise, profile, **execution)
    # chosen once, here: every student of the class is trained on the same backend
    job = batches.Batch(submissions, data, out, loaded, chosen, test_data, precision,
                        choose(backend) if not no_train else "tensorflow", _mirror(mirror),
                        workers or batches.default_workers(), scheduler, cache, deterministic,
                        train=not no_train, max_minutes=max_minutes)
    where = f"Dask at {scheduler}" if scheduler else f"{job.workers} local worker(s)"
    what = "rules only, --no-train" if no_train else f"profile {chosen.name}"
    click.echo(f"grading {submissions} on {where} ({what}) ...", err=True)
    with Progress() as progress:
        summary = batches.run(job, progress.update, progress.start, progress.note)
    progress.summary(summary)
    sys.exit(EXIT_PASSED)


@cli.command()
@click.option("--out", default=Path("demo-output"), show_default=True, type=DIR,
              help="Folder for the synthetic data and both reports.")
@exercise_option
def demo(out: Path, exercise: str) -> None:
    """Make synthetic flowers, grade the reference and the untouched student notebook."""
    from grader.demo import run_demo

    sys.exit(run_demo(out, exercise, echo=click.echo))


@cli.command()
@click.argument("out_dir", type=EXISTING_DIR)
def render(out_dir: Path) -> None:
    """Re-render reports, dashboard and exports from the result.json files in OUT_DIR.

    Trains nothing and needs no TensorFlow."""
    from grader.reporting import render_all

    count, skipped = render_all(out_dir)
    for line in skipped:
        click.echo(line, err=True)
    if not count:
        raise click.UsageError(f"No result.json in {out_dir} or its sub-folders.")
    click.echo(f"rendered {count} result(s) in {out_dir}")


@cli.command("runtime")
def runtime_command() -> None:
    """List what a notebook may import while grading (the student runtime), with the versions
    installed here, and what is not provided and why."""
    from grader.kernel.packages import RUNTIME_FILE, runtime

    current = runtime()
    versions = current.versions()
    click.echo("provided (import name: package version):")
    for module, requirement in sorted(current.provided.items(), key=lambda i: i[0].lower()):
        version = versions[requirement] or "NOT INSTALLED: reinstall the grader (make install)"
        click.echo(f"  {module}: {requirement} {version}")
    click.echo("not provided:")
    for module, why in sorted(current.not_provided.items()):
        click.echo(f"  {module}: {why}")
    click.echo(f"the list: {RUNTIME_FILE}")


cli.add_command(data)
cli.add_command(check)
cli.add_command(autograder)


def main() -> None:
    """Entry point: a GradingError is a message and an exit code, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_NOT_PASSED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except GradingError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE if exc.stage == "usage" else EXIT_NOT_PASSED)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_NOT_PASSED)
