"""Gradescope's autograder ("zip file upload"): `grade autograder` writes the zip, and
``python -m grader.autograder`` is what its run_autograder runs for every submission.

The zip holds setup.sh, run_autograder, the grader's wheel, the exercise folder (without the
reference solution), the shards and autograder.json (this module's settings). Gradescope unpacks
it into /autograder/source, runs setup.sh once as root when it builds the image, then for each
submission runs /autograder/run_autograder with the student's files in /autograder/submission and
reads /autograder/results/results.json. That file is written whatever happens: without it the
student only sees that the autograder failed. docs/gradescope.md says what runs where.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from grader import __version__
from grader.errors import GradingError

log = logging.getLogger(__name__)

SETTINGS = "autograder.json"
SCRIPTS = Path(__file__).with_name("gradescope")      # setup.sh and run_autograder
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
# Gradescope stops run_autograder at its timeout and then shows no result at all: the grading
# keeps this much of the timeout for writing the reports and results.json.
MARGIN_SECONDS = 90
# The student's kernel may use this share of the container's memory; the rest is the grader's
# (its own TensorFlow for the trusted training) and the system's.
KERNEL_MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Settings:
    """What `grade autograder` fixed for every run of the zip (autograder.json)."""
    exercise: str                 # the exercise's id
    profile: str | None           # trusted-training profile; None: rules only (no training)
    timeout_minutes: float        # the assignment's autograder timeout on Gradescope
    memory_gb: float              # the container's memory on Gradescope
    visibility: str               # of the score and the tests, for students
    grader_version: str           # the version that built the zip (the wheel's)


# ------------------------------------------------------------------------- building the zip

def build(out: Path, exercise_dir: Path, data: Path, settings: Settings,
          wheel: Path | None = None) -> Path:
    """Write the autograder zip to ``out``; return its path. ``wheel`` defaults to one built
    here from the checkout the grader runs from."""
    shards = sorted(data.glob("*.tfrec"))
    if not shards:
        raise GradingError("usage", f"{data} holds no .tfrec shards: the zip needs the data the "
                           f"notebooks read and the trusted training uses (`grade data`).")
    with tempfile.TemporaryDirectory(prefix="flowers-grader-autograder-") as scratch:
        wheel = wheel or _build_wheel(Path(scratch))
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise GradingError("usage", f"{wheel} is not a wheel (.whl).")
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for script in ("setup.sh", "run_autograder"):
                _add(archive, SCRIPTS / script, script, executable=True)
            _add(archive, wheel, wheel.name)
            for path in sorted(exercise_dir.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    _add(archive, path, f"exercise/{path.name}")
            for shard in shards:
                # shards are JPEG bytes already: deflating them gains nothing
                archive.write(shard, f"data/{shard.name}", zipfile.ZIP_STORED)
            archive.writestr(SETTINGS, json.dumps(asdict(settings), indent=2) + "\n")
        partial.replace(out)
    return out


def _add(archive: zipfile.ZipFile, path: Path, name: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo.from_file(path, name)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes())


def _build_wheel(folder: Path) -> Path:
    """The grader's wheel, built from the checkout this code runs from."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise GradingError("usage", "This grader was installed from a wheel, so it cannot build "
                           "one: pass that wheel with --wheel FILE.")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder),
               str(root)]
    process = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("flowers_grader-*.whl"))
    if process.returncode != 0 or not wheels:
        raise GradingError("usage", f"Building the grader's wheel failed: "
                           f"{process.stderr.strip()[-1500:]}")
    return wheels[0]


# ----------------------------------------------------------------- grading one submission

def run(root: Path) -> Path:
    """Grade the submission in ``root``/submission and write ``root``/results/results.json,
    whatever happens. Returns the path of results.json."""
    started = time.monotonic()
    target = root / "results" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        payload = _grade(root, started)
    except BaseException as exc:  # noqa: BLE001 - Gradescope must get a results.json anyway
        log.error("the autograder failed: %r", exc, exc_info=True)
        payload = _failed(exc)
    payload["execution_time"] = round(time.monotonic() - started)
    partial = target.with_name("results.json.partial")
    partial.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    partial.replace(target)
    return target


def _grade(root: Path, started: float) -> dict[str, Any]:
    from grader.batch.submissions import choose, walk
    from grader.exercise import load_exercise
    from grader.pipeline import Request, grade
    from grader.result import blank
    from grader.reporting import finalize
    from reports.exports import gradescope

    source = root / "source"
    settings = Settings(**json.loads((source / SETTINGS).read_text()))
    exercise = load_exercise(source / "exercise")
    budget = settings.timeout_minutes * 60 - MARGIN_SECONDS
    memory = int(settings.memory_gb * KERNEL_MEMORY_SHARE * (1 << 30))
    execution = replace(exercise.execution, notebook_timeout=max(
        60, min(exercise.execution.notebook_timeout, int(budget / 2))))
    exercise = replace(exercise, execution=execution, sandbox=replace(
        exercise.sandbox, memory_bytes=min(exercise.sandbox.memory_bytes, memory)))
    profile = exercise.profile(settings.profile or "smoke")
    out = root / "grading"
    submission = choose("submission", [(p, p.relative_to(root / "submission").as_posix())
                                       for p in walk(root / "submission")],
                        exercise.notebook.name, "submission")
    if submission.notebook is None:
        result = blank("submission", submission.source, None, exercise, profile)
        result.fail(GradingError("validate", submission.problem, cause="no_notebook").info())
        finalize(result, out, time.monotonic() - started)
    else:
        request = Request(submission.notebook, source / "data", out, exercise, profile,
                          student="submission", train=settings.profile is not None,
                          deadline=started + budget)
        result = grade(request)
        result.warnings = submission.warnings + result.warnings
    payload = gradescope(result)
    notes = "".join(f"\nNote: {warning}" for warning in result.warnings)
    payload["output"] = f"{_preface(settings, exercise.id)}\n\n{payload['output']}{notes}"
    payload["visibility"] = settings.visibility
    for test in payload["tests"]:
        test["visibility"] = settings.visibility
    return payload


def _preface(settings: Settings, exercise: str) -> str:
    if settings.profile is None:
        return (f"Instant feedback for {exercise}: your notebook was run and its model checked "
                f"against every rule. The grader did not retrain it here: your accuracy comes "
                f"from the course's final grading.")
    return (f"Instant feedback for {exercise}: your notebook was run, its model checked against "
            f"every rule, and retrained with the grader's '{settings.profile}' profile, which "
            f"fits Gradescope's time limit. The course's final grading retrains it in full, so "
            f"your final accuracy can differ.")


def _failed(exc: BaseException) -> dict[str, Any]:
    return {"score": 0.0, "visibility": "visible", "stdout_visibility": "hidden",
            "output": (f"The autograder could not grade this submission "
                       f"({type(exc).__name__}: {exc}). This is not your fault: tell your "
                       f"instructor, who can read the autograder's log on Gradescope."),
            "tests": []}


def main(argv: list[str] | None = None) -> int:
    """run_autograder's entry point: ``python -m grader.autograder [--root /autograder]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grader.autograder")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(
        "AUTOGRADER_ROOT", "/autograder")))
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from grader.lazy import quiet_libraries
    quiet_libraries()
    path = run(arguments.root)
    print(f"flowers-grader {__version__}: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
