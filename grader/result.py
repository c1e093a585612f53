"""result.json: the one seam between grading and reporting.

A grading builds a :class:`Result`; ``to_json`` is what result.json holds and ``from_json`` reads
it back, checking the schema version. ``reports/`` renders Result objects and imports nothing else
from the grader. The nested pieces that only the report draws (layer rows, training history,
confusion matrices, the projection, the notebook's fit calls) stay plain JSON data.

Schema versions: a change that only adds fields with defaults keeps ``SCHEMA``; renaming,
removing or retyping a field raises it, and ``from_json`` then converts the older versions it
accepts (a test renders a committed version-1 file).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.io import write_json

if TYPE_CHECKING:
    from grader.exercise import Exercise, Profile

RESULT_NAME = "result.json"
SCHEMA = 1
STATUSES = ("graded", "rejected", "checked", "error")
# Why a submission could not be graded (ErrorInfo.cause): each stage's own, and the finer causes
# of a failed cell (grader.kernel.causes) and of a failed task.
STAGE_CAUSES = {"validate": "invalid_notebook", "sandbox": "sandbox_unavailable",
                "execute": "cell_error", "extract": "no_model", "rebuild": "unreadable_model",
                "train": "training_failed", "internal": "internal", "usage": "usage",
                "data": "data"}
CAUSES = ("invalid_notebook", "no_notebook", "sandbox_unavailable", "missing_package",
          "missing_module", "data_path", "network", "kernel_died", "timeout", "cell_error",
          "no_model", "unreadable_model", "training_failed", "too_slow", "internal", "usage",
          "data")


class SchemaError(ValueError):
    """A file that is not a result.json this grader can read."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _build(cls, data: Any, where: str):
    """``cls`` from a JSON object: missing fields take their defaults, unknown ones are refused
    (a field this version does not know means the file is not of this schema)."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected an object, found {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise SchemaError(f"{where}: {exc}") from None


@dataclass
class ErrorInfo:
    """Why a submission could not be graded: the stage, the message (with what to do), the
    notebook cell, and the tail of a traceback or of a dead kernel's output."""
    stage: str
    message: str
    cell: int | None = None
    traceback: str | None = None
    signal: str | None = None   # the signal that ended the kernel, when one did
    cause: str | None = None    # one of CAUSES; None takes the stage's (files before causes)

    def __post_init__(self) -> None:
        self.cause = self.cause or STAGE_CAUSES.get(self.stage, self.stage)

    def to_json(self) -> dict[str, Any]:
        found = asdict(self)
        if self.signal is None:
            del found["signal"]
        return found


@dataclass
class Check:
    """One rule's outcome, in the order the report lists the rules."""
    id: str
    passed: bool | None   # None: not checked (the model could not be rebuilt)
    rule: str = ""        # the rule, as the exercise states it
    message: str = ""     # what the grader found
    todo: str = ""        # what to do about it ("" unless it failed)


@dataclass
class Hint:
    id: str
    message: str


@dataclass
class Sample:
    """One validation photo of the report's grid (a small JPEG data URI) and its prediction."""
    image: str
    true: str
    predicted: str
    correct: bool


@dataclass
class Submission:
    file: str
    sha256: str | None = None


@dataclass
class ModelSummary:
    """The model the grader took from the notebook: how it was chosen (extract) and what the
    rebuilt model is (rebuild; None where it was never rebuilt)."""
    params: int | None = None
    variable: str | None = None       # the notebook variable that held it
    candidates: list[str] = field(default_factory=list)   # every Keras model the kernel held
    reason: str | None = None         # why this one was chosen
    ambiguous: bool = False
    architecture: str | None = None   # hash of the config without its names (grader.model)
    layers: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None
    class_name: str | None = None
    trainable_params: int | None = None
    input_shapes: list[list[Any]] | None = None
    output_shapes: list[list[Any]] | None = None
    output_activation: str | None = None
    activation_size: int | None = None
    nested_classes: list[str] | None = None


@dataclass
class TrainingSummary:
    """The trusted training: where and how it ran, the history and evaluations, and the
    projection made after its first steps (present alone when --max-minutes stopped it)."""
    history: dict[str, list[float]] = field(default_factory=dict)
    validation: dict[str, Any] | None = None   # accuracy, loss, confusion, per-class accuracy
    test: dict[str, Any] | None = None         # the same on private test data, when given
    device: str | None = None
    device_kind: str | None = None
    precision: str | None = None
    backend: str | None = None                 # Keras's: "tensorflow" or "jax"
    seed: int | None = None
    deterministic: bool | None = None
    epochs: int | None = None
    train_images: int | None = None
    val_images: int | None = None
    seconds: float | None = None
    images_per_second: float | None = None
    validation_seconds: float | None = None
    projection: dict[str, Any] | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    # a profile with seeds = k > 1: each training's seed, accuracy (the deciding one), val. and
    # test accuracy and seconds; the fields above are the first training's, result.accuracy the
    # mean of the runs' accuracies
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Target:
    accuracy: float
    stretch: float


@dataclass
class Rubric:
    rule_points: float
    accuracy_points: float
    stretch_bonus: float
    chance: float


@dataclass
class Result:
    """One submission's grading. Fields are in result.json's order."""
    exercise: str
    profile: str
    student: str
    submission: Submission
    target: Target
    rubric: Rubric
    max_score: float
    classes: list[str] = field(default_factory=list)
    schema: int = SCHEMA
    grader_version: str = __version__
    status: str = "error"     # one of STATUSES; an error until the stages say otherwise
    passed: bool = False
    score: float = 0.0
    accuracy: float | None = None          # the accuracy that decides (test data, else val)
    claimed_accuracy: float | None = None  # what the notebook's saved outputs claim
    claim_flagged: bool = False
    checks: list[Check] = field(default_factory=list)
    hints: list[Hint] = field(default_factory=list)
    model: ModelSummary = field(default_factory=ModelSummary)
    student_training: list[dict[str, Any]] = field(default_factory=list)  # the fit calls seen
    training: TrainingSummary = field(default_factory=TrainingSummary)
    samples: list[Sample] = field(default_factory=list)
    isolation: str | None = None   # how the kernel was boxed: "bubblewrap" or "limits-only"
    error: ErrorInfo | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    started_at: str = field(default_factory=now)
    finished_at: str | None = None
    batch: dict[str, str] | None = None   # grade batch: the key a rerun compares, the source
    runtime: dict[str, str | None] = field(default_factory=dict)  # the kernel's packages

    def to_json(self) -> dict[str, Any]:
        """What result.json holds, in the order it has always been written."""
        found = asdict(self)
        out = {name: found[name] for name in ORDER}
        out["error"] = self.error.to_json() if self.error else None
        if out["training"].get("backend") is None:  # written before trainings had a backend
            del out["training"]["backend"]
        if not out["training"].get("runs"):           # one training: nothing to add
            out["training"].pop("runs", None)
        if self.batch is not None:
            out["batch"] = found["batch"]
        if self.runtime:
            out["runtime"] = found["runtime"]
        return out

    @classmethod
    def from_json(cls, data: Any) -> Result:
        """A Result from result.json's object; SchemaError names what does not fit."""
        if not isinstance(data, dict) or "schema" not in data:
            raise SchemaError("not a flowers-grader result (no schema version)")
        version = data["schema"]
        if not isinstance(version, int) or version < 1:
            raise SchemaError(f"schema version {version!r} is not one this grader knows")
        if version > SCHEMA:
            raise SchemaError(f"written by a newer grader (schema {version}; this grader "
                              f"reads up to {SCHEMA}): upgrade flowers-grader to render it")
        values = dict(data)
        nested = {"submission": Submission, "target": Target, "rubric": Rubric,
                  "model": ModelSummary, "training": TrainingSummary}
        for name, kind in nested.items():
            if name in values:
                values[name] = _build(kind, values[name], name)
        for name, kind in (("checks", Check), ("hints", Hint), ("samples", Sample)):
            values[name] = [_build(kind, item, name) for item in values.get(name) or []]
        if values.get("error") is not None:
            values["error"] = _build(ErrorInfo, values["error"], "error")
        return _build(cls, values, "result")

    @property
    def borderline(self) -> bool:
        """Trained with several seeds whose accuracies straddle the target: the seed, not the
        architecture, decided the verdict."""
        accuracies = [run["accuracy"] for run in self.training.runs]
        return len(accuracies) > 1 and min(accuracies) < self.target.accuracy <= max(accuracies)

    def fail(self, error: ErrorInfo) -> None:
        """Make this an error result: nothing passes."""
        self.status, self.passed, self.error = "error", False, error


ORDER = ("schema", "grader_version", "exercise", "profile", "student", "submission", "status",
         "passed", "score", "max_score", "accuracy", "claimed_accuracy", "claim_flagged",
         "checks", "hints", "model", "student_training", "training", "target", "classes",
         "rubric", "samples", "isolation", "error", "warnings", "timings", "started_at",
         "finished_at")


def blank(student: str, file: str, digest: str | None, exercise: Exercise,
          profile: Profile) -> Result:
    """An error result for a submission, to be filled in by the stages."""
    rubric = exercise.rubric
    return Result(exercise=exercise.id, profile=profile.name, student=student,
                  submission=Submission(file, digest),
                  target=Target(exercise.target.accuracy, exercise.target.stretch),
                  rubric=Rubric(rubric.rule_points, rubric.accuracy_points,
                                rubric.stretch_bonus, rubric.chance),
                  max_score=rubric.max_score, classes=list(exercise.classes))


def write(result: Result, out_dir: Path) -> Path:
    """Write result.json atomically: a reader sees the old file or the new one, never half."""
    return write_json(out_dir / RESULT_NAME, result.to_json(), indent=2)


def read(out_dir: Path) -> Result:
    """The result.json in ``out_dir`` (OSError when it is missing, ValueError, SchemaError
    included, when it is not a result this grader reads)."""
    return Result.from_json(json.loads((out_dir / RESULT_NAME).read_text(encoding="utf-8")))
