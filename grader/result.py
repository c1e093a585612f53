"""result.json: the one seam between grading and reporting. Built here, written atomically."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader import __version__
from grader.io import write_json
from grader.exercise import Exercise, Profile
from grader.model.rules import Check

RESULT_NAME = "result.json"
SCHEMA = 1


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def skeleton(name: str, path: Path, digest: str | None, exercise: Exercise,
             profile: Profile) -> dict[str, Any]:
    """A result with every key present: an error result until the pipeline fills it in."""
    return {
        "schema": SCHEMA,
        "grader_version": __version__,
        "exercise": exercise.id,
        "profile": profile.name,
        "student": name,
        "submission": {"file": path.name, "sha256": digest},
        "status": "error",
        "passed": False,
        "score": 0.0,
        "max_score": exercise.rubric.max_score,
        "accuracy": None,
        "claimed_accuracy": None,
        "claim_flagged": False,
        "checks": [],
        "hints": [],
        "model": {"params": None, "variable": None, "candidates": [], "reason": None,
                  "ambiguous": False, "architecture": None, "layers": []},
        "student_training": [],
        "training": {"val_accuracy": None, "test_accuracy": None, "history": {},
                     "device": None, "precision": None},
        "target": {"accuracy": exercise.target.accuracy, "stretch": exercise.target.stretch},
        "classes": list(exercise.classes),
        "rubric": {"rule_points": exercise.rubric.rule_points,
                   "accuracy_points": exercise.rubric.accuracy_points,
                   "stretch_bonus": exercise.rubric.stretch_bonus,
                   "chance": exercise.rubric.chance},
        "samples": [],
        "isolation": None,   # how the kernel was boxed: "bubblewrap" or "limits-only"
        "error": None,
        "warnings": [],
        "timings": {},
        "started_at": now(),
        "finished_at": None,
    }


def score(checks: list[Check], accuracy: float | None, exercise: Exercise) -> float:
    """Rule points shared equally by the checks, plus accuracy points and the stretch bonus.

    Accuracy points rise linearly from chance to the target; the bonus from the target to the
    stretch. A model that was not trained (accuracy None) gets its rule points only.
    """
    rubric, target = exercise.rubric, exercise.target
    points = rubric.rule_points * sum(c.passed is True for c in checks) / len(checks) \
        if checks else 0.0
    if accuracy is not None:
        points += rubric.accuracy_points * _ramp(accuracy, rubric.chance, target.accuracy)
        points += rubric.stretch_bonus * _ramp(accuracy, target.accuracy, target.stretch)
    return round(points, 2)


def _ramp(value: float, low: float, high: float) -> float:
    return min(1.0, max(0.0, (value - low) / (high - low))) if high > low else float(value >= high)


def write(result: dict[str, Any], out_dir: Path) -> Path:
    """Write result.json atomically: a reader sees the old file or the new one, never half."""
    return write_json(out_dir / RESULT_NAME, result, indent=2)


def read(out_dir: Path) -> dict[str, Any]:
    """The result.json in ``out_dir`` (OSError or ValueError when it is missing or unreadable)."""
    return json.loads((out_dir / RESULT_NAME).read_text(encoding="utf-8"))
