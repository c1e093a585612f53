"""`grade demo`: synthetic flowers, then the reference and the untouched student notebook.

Sized for a newcomer's first five minutes on the slowest host of the machine kind (two
AVX2-only cores): 800 synthetic flowers without the clutter, the `demo` profile
(docs/calibration.md has the margins it was tuned to).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader.exercise import load_exercise

DEMO_PROFILE = "demo"
DEMO_SEED = 1
DEMO_IMAGES = 800
DEMO_CLUTTER = 0.0


def run_demo(out: Path, exercise_name: str, echo: Callable[[str], None] = print) -> int:
    """Grade both notebooks on fresh synthetic data. Exit code 0 when the reference passes and
    the untouched student notebook (rightly) does not."""
    from grader.pipeline import Request, grade
    from grader.training.data import synthesize

    exercise = load_exercise(exercise_name)
    reference = exercise.reference_notebook()
    profile = exercise.profile(DEMO_PROFILE)
    data_dir = out / "data"
    echo(f"making synthetic flowers in {data_dir} ...")
    synthesize(data_dir, exercise.classes, DEMO_IMAGES, exercise.image_size, DEMO_SEED,
               clutter=DEMO_CLUTTER)
    outcomes = {}
    for name, notebook in (("reference", reference), ("student", exercise.notebook)):
        echo(f"grading the {name} notebook (profile {profile.name}) ...")
        result = grade(Request(notebook, data_dir, out / name, exercise, profile,
                               student=name), lambda line: echo(f"  {line}"))
        outcomes[name] = result
        accuracy = result.accuracy
        echo(f"  {name}: {result.status}, passed {result.passed}, accuracy "
             f"{'—' if accuracy is None else f'{accuracy:.1%}'}, score {result.score}")
        echo(f"  report: {out / name / 'report.html'}")
    expected = outcomes["reference"].passed and not outcomes["student"].passed
    echo("demo finished as expected" if expected else "demo: UNEXPECTED outcome, see reports")
    return 0 if expected else 1
