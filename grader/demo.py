"""`grade demo`: synthetic flowers, then the reference and the untouched student notebook."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader.exercise import load_exercise

DEMO_PROFILE = "quick"
DEMO_SEED = 1


def run_demo(out: Path, exercise_name: str, echo: Callable[[str], None] = print) -> int:
    """Grade both notebooks on fresh synthetic data. Exit code 0 when the reference passes and
    the untouched student notebook (rightly) does not."""
    from grader.data import synthesize
    from grader.pipeline import Request, grade

    exercise = load_exercise(exercise_name)
    profile = exercise.profile(DEMO_PROFILE)
    data_dir = out / "data"
    echo(f"making synthetic flowers in {data_dir} ...")
    synthesize(data_dir, exercise.classes, 1280, exercise.image_size, DEMO_SEED)
    outcomes = {}
    for name, notebook in (("reference", exercise.reference), ("student", exercise.notebook)):
        echo(f"grading the {name} notebook (profile {profile.name}) ...")
        result = grade(Request(notebook, data_dir, out / name, exercise, profile,
                               student=name))
        outcomes[name] = result
        accuracy = result["accuracy"]
        echo(f"  {name}: {result['status']}, passed {result['passed']}, accuracy "
             f"{'—' if accuracy is None else f'{accuracy:.1%}'}, score {result['score']}")
        echo(f"  report: {out / name / 'report.html'}")
    expected = outcomes["reference"]["passed"] and not outcomes["student"]["passed"]
    echo("demo finished as expected" if expected else "demo: UNEXPECTED outcome, see reports")
    return 0 if expected else 1
