"""`grade check`: what a student runs before submitting. The notebook runs the way the grader
runs it (the same runtime emulation, data mirror and extraction, and the sandbox where this
machine has one), on past a failing cell so that the model is still checked; every rule is
checked, nothing is trained, and the verdict says in plain words whether the submission will be
graded and what to fix. Without the shards (no --data) the cells that read them fail, and the
verdict says it cannot tell yet instead of guessing.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader import __version__
from grader.exercise import DEFAULT_PROFILE, Exercise
from grader.result import Result

STAMP = "flowers_grader"   # the notebook metadata the course's notebook carries (make_notebooks)


@dataclass(frozen=True)
class Verdict:
    ready: bool          # will be graded, and every rule passes
    lines: list[str]     # what to print, in order


def run(notebook: Path, data: Path | None, exercise: Exercise, out: Path | None) -> Result:
    """Run and check ``notebook``; the result is what `grade notebook --no-train` would say,
    with the cells that failed listed (result.json and report.html go to ``out``)."""
    from grader.pipeline import Request, grade

    with tempfile.TemporaryDirectory(prefix="flowers-grader-check-") as scratch:
        shards = data if data is not None else Path(scratch) / "no-data"
        shards.mkdir(exist_ok=True)
        shards.chmod(0o755)   # the sandboxed kernel's user lists it
        request = Request(notebook, shards, out or Path(scratch) / "out", exercise,
                          exercise.profile(DEFAULT_PROFILE), train=False,
                          keep_going=True)
        return grade(request, lambda line: None)


def verdict(result: Result, exercise: Exercise, has_data: bool,
            stamp: dict | None) -> Verdict:
    """The plain-words verdict on a checked notebook."""
    lines = _versions(exercise, stamp)
    model = result.model
    if model and model.params is not None:
        lines.append(f"model: `{model.variable}` ({model.class_name}), {model.params:,} "
                     f"parameters (the exercise allows {exercise.rules.min_params:,} to "
                     f"{exercise.rules.max_params:,})")
    failed = [c for c in result.checks if c.passed is False]
    if result.checks:
        passed = sum(c.passed is True for c in result.checks)
        lines.append(f"rules: {passed} of {len(result.checks)} passed")
        lines += [f"  FAILED {c.rule or c.id}: {c.message} {c.todo}".rstrip() for c in failed]
    lines += [f"note: {w}" for w in result.warnings]
    error = result.error
    if error is not None and error.stage == "execute" and not has_data:
        return Verdict(False, lines + [
            f"could not run: {error.message}",
            "VERDICT: NOT KNOWN YET. Without the flower shards the cells that read them cannot "
            "run here, so the check cannot tell whether the grader will run your notebook to "
            "the end. Run it again with --data DIR (`grade data fetch --out DIR` downloads "
            "the photos and makes the shards)."
            + (" The model above was checked all the same." if result.checks else "")])
    if error is not None:
        where = f" (cell {error.cell})" if error.cell else ""
        return Verdict(False, lines + [
            f"VERDICT: WILL NOT BE GRADED{where}. {error.message}"])
    if failed:
        points = result.score
        return Verdict(False, lines + [
            f"VERDICT: WILL BE GRADED, BUT REJECTED by {len(failed)} rule(s): the model would "
            f"not be trained, and would earn {points:g} of the {exercise.rubric.rule_points:g} "
            f"rule points and none of the {exercise.rubric.accuracy_points:g} accuracy points. "
            f"Fix what is listed above."])
    return Verdict(True, lines + [
        f"VERDICT: WILL BE GRADED. Every rule passed; the grader will retrain your model from "
        f"scratch to measure its accuracy (the target is "
        f"{exercise.target.accuracy:.0%})."])


def stamp_of(notebook: Path) -> dict | None:
    """The course's stamp in the notebook's metadata, if the file is a notebook that has one."""
    try:
        metadata = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return None
    stamp = metadata.get(STAMP) if isinstance(metadata, dict) else None
    return stamp if isinstance(stamp, dict) else None


def _versions(exercise: Exercise, stamp: dict | None) -> list[str]:
    """Warnings where this grader or exercise file is not the one the course published."""
    lines = [f"grader {__version__}, exercise {exercise.id} version {exercise.version}"]
    if stamp is None:
        return lines
    published = {"grader": stamp.get("grader_version"), "exercise": stamp.get("exercise_version")}
    here = {"grader": __version__, "exercise": exercise.version}
    for what in ("grader", "exercise"):
        if published[what] and published[what] != here[what]:
            lines.append(f"WARNING: the course published this notebook for {what} version "
                         f"{published[what]}, and this check uses {here[what]}: its verdict "
                         f"may differ from the course's. Install the course's grader (see the "
                         f"notebook's last cell).")
    return lines
