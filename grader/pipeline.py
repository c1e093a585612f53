"""Grade one notebook: validate → execute → extract → rebuild → rules → train → result.

Reads top to bottom like the grading path in docs/grading.md. Whatever happens, a result.json is
written (and a report rendered) before this returns.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from grader import lazy, reporting, result as results
from grader.errors import GradingError
from grader.exercise import Exercise, Profile
from grader.kernel import extract, packages, sandbox, static
from grader.kernel.execute import Execution, Plan, execute
from grader.io import sha256
from grader.kernel.notebook import validate
from grader.model import hints, rules
from grader.model.architecture import architecture
from grader.model.rebuild import ConfigRejected, ModelInfo, build, describe, parse_config, scan
from grader.result import ErrorInfo, ModelSummary, Result
from grader.training import offline
from grader.training.job import Trained, TrainingJob, trusted_training

log = logging.getLogger(__name__)
EXECUTED_NAME = "executed.ipynb"
# What the kernel says for a gs:// path with no local copy ({path} is filled in there).
UNMAPPED = ("{path} has no local copy on this grading machine. Instructors: serve it with "
            "`--mirror {prefix}=DIR` (the exercise file lists the known prefixes: ")


@dataclass(frozen=True)
class Request:
    """One grading job."""
    notebook: Path            # the submission
    data_dir: Path            # shards the kernel reads and the trusted training uses
    out_dir: Path             # receives result.json, report.html, executed.ipynb
    exercise: Exercise
    profile: Profile
    test_data: Path | None = None   # a private test set; the verdict then uses its accuracy
    precision: str = "auto"         # Keras dtype policy for trusted training, or auto
    backend: str = "tensorflow"     # Keras's backend for trusted training (chosen, not auto)
    student: str | None = None      # the student id; defaults to the notebook's file stem
    mirror: dict[str, Path] = field(default_factory=dict)  # extra gs:// prefix → local folder
    deterministic: bool | None = None  # op determinism in trusted training; None: on for CPUs
    cache: Path | None = None       # decoded-data cache folder; None decodes in memory
    train: bool = True              # False: stop after the rules (status "checked")
    max_minutes: float | None = None  # stop a training projected to take longer than this
    deadline: float | None = None   # time.monotonic() by which the training must end
    keep_going: bool = False        # grade check: run past errors, offline even unboxed


Announce = Callable[[str], None]


class _Clock:
    """Named wall-time measurements for result.json's ``timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(now - since, 2)
        return now


@dataclass(frozen=True)
class Inspection:
    """What the inspection stages found: the checked config to train (None when the submission
    was rejected) and the rebuilt model's description."""
    config: dict[str, Any] | None
    info: ModelInfo | None


def grade(request: Request, announce: Announce = log.info) -> Result:
    """Grade one submission and write its result.json and report.html. Never raises for a
    problem with the submission: that becomes the result's ``error``. ``announce`` hears
    progress worth a line on the terminal: the training's measured speed and projection."""
    result, clock = start(request)

    def stages() -> None:
        inspection = inspect(request, result, clock)
        if inspection.config is not None and not request.train:
            checked(result, request.exercise, skipped_note=not request.keep_going)
        elif inspection.config is not None:
            _train(request, inspection, result, clock, announce)

    guarded(result, stages, request.exercise)
    close(result, clock, request.out_dir)
    return result


def _train(request: Request, inspection: Inspection, result: Result, clock: _Clock,
           announce: Announce) -> None:
    """Trusted training, its projection announced and recorded before the bulk of it runs."""
    mark = time.perf_counter()
    limit = request.max_minutes
    if request.deadline is not None:  # what is left of it, whatever the inspection took
        left = max(0.01, (request.deadline - time.monotonic()) / 60)
        limit = left if limit is None else min(limit, left)
    job = TrainingJob(request.data_dir, request.test_data, request.exercise, request.profile,
                      request.precision, request.cache, request.deterministic, limit,
                      request.backend)

    def projected(projection) -> None:  # recorded even when --max-minutes then stops it
        result.training.projection = projection.as_dict()
        announce(projection.line())

    trained = trusted_training(inspection.config, job, projected)
    clock.lap("train", mark)
    finish(result, inspection.info, trained, request.exercise)


def start(request: Request) -> tuple[Result, _Clock]:
    """An error result for the submission, to be filled in by the stages."""
    path = request.notebook
    digest = sha256(path) if path.is_file() else None
    result = results.blank(request.student or path.stem, path.name, digest, request.exercise,
                           request.profile)
    result.runtime = packages.runtime().versions()
    return result, _Clock()


def guarded(result: Result, stages: Callable[[], None], exercise: Exercise) -> None:
    """Run ``stages``; whatever they raise ends in the result, never in a traceback."""
    try:
        stages()
    except ConfigRejected as exc:
        _reject(result, exc, exercise)
    except GradingError as exc:
        result.fail(exc.info())
    except Exception as exc:  # a grader bug must still end in a result
        log.error("internal error while grading %s: %r (traceback in result.json)",
                  result.submission.file, exc)
        result.fail(internal_error(exc))


def internal_error(exc: BaseException) -> ErrorInfo:
    return GradingError("internal", f"The grader failed unexpectedly ({type(exc).__name__}: "
                        f"{exc}). This is not your fault: tell your instructor.",
                        traceback=traceback.format_exc(limit=8)).info()


def close(result: Result, clock: _Clock, out_dir: Path) -> None:
    """The grading's timings, then the reports and result.json (grader.reporting.finalize)."""
    result.timings = clock.timings
    reporting.finalize(result, out_dir, time.perf_counter() - clock.started)


def inspect(request: Request, result: Result, clock: _Clock) -> Inspection:
    """Every stage before trusted training: validate, execute, extract, rebuild, rules.

    Each stage returns what it found and this puts it into ``result``, as far as the stages get;
    a rejected submission is finished here (status and score), and its Inspection has no
    config to train.
    """
    exercise = request.exercise
    mark = clock.started
    validated = validate(request.notebook)
    notebook = validated.notebook
    result.warnings += validated.warnings()
    result.warnings += static.escape_warnings(notebook, exercise.execution.allowed_magics)
    result.claimed_accuracy = static.claimed_accuracy(notebook)
    mark = clock.lap("validate", mark)
    result.isolation = sandbox.isolation(exercise.sandbox)  # raises if bubblewrap is required
    readable = _readable(request)
    result.warnings += sandbox.warning(result.isolation, list(readable))
    lazy.warm_up()   # the rebuild's Keras, imported while the kernel runs
    try:
        execution = _execute(notebook, request, readable)
    finally:  # a notebook that failed still took this long: the dashboard shows it
        mark = clock.lap("execute", mark)
    result.warnings += execution.warnings
    info = None
    try:
        config, info = _model(execution, result, exercise)
    except (GradingError, ConfigRejected):
        if not execution.failed:
            raise
    finally:
        clock.lap("rebuild", mark)
    if execution.failed:  # grade check: grading would have stopped at the first of them
        result.warnings += [f"Also failed, after it: {e.message}" for e in execution.failed[1:]]
        result.fail(execution.failed[0].info())
        return Inspection(None, info)
    if not all(c.passed for c in result.checks):
        result.status = "rejected"
        result.score = rules.score(result.checks, None, exercise)
        result.hints = hints.hints(info, None, exercise)
        return Inspection(None, info)
    return Inspection(config, info)


def _model(execution: Execution, result: Result, exercise: Exercise
           ) -> tuple[dict[str, Any], ModelInfo | None]:
    """Extract, rebuild and check the model the kernel reported: (config, rebuilt info)."""
    result.student_training = execution.payload.get("fit_calls") or []
    chosen, warnings = extract.choice(execution.payload)
    result.model, result.warnings = ModelSummary(**chosen), result.warnings + warnings
    config = parse_config(extract.config_text(execution.payload))
    findings = scan(config, exercise.rules)
    info = None if rules.unsafe(findings) else describe(build(config))
    if info is not None:
        result.model = replace(result.model, **info.as_dict(), architecture=architecture(config))
    result.checks = rules.check(info, findings, exercise, extract.records(execution.payload))
    return config, info


def checked(result: Result, exercise: Exercise, skipped_note: bool = True) -> None:
    """Every rule passed and training was not asked for (--no-train): the rule points only."""
    result.status, result.score = "checked", rules.score(result.checks, None, exercise)
    if skipped_note:
        result.warnings.append("Trusted training was skipped (--no-train): the model passed "
                               "every rule, and its accuracy was not measured.")


def finish(result: Result, info: ModelInfo | None, trained: Trained,
           exercise: Exercise) -> None:
    """Put the trusted training's outcome in: accuracy, verdict, score, hints, claim check."""
    result.training, result.accuracy = trained.training, trained.accuracy
    result.samples = trained.samples
    result.hints = hints.hints(info, result.training, exercise)
    result.status, result.passed = "graded", trained.accuracy >= exercise.target.accuracy
    result.score = rules.score(result.checks, trained.accuracy, exercise)
    claim = static.claim_warning(result.claimed_accuracy, trained.accuracy)
    result.claim_flagged = claim is not None
    result.warnings += [claim] if claim else []


def _readable(request: Request) -> tuple[Path, ...]:
    """The folders the kernel may read: the data and every mirrored gs:// prefix."""
    mirror = request.exercise.mirror_for(request.data_dir, request.mirror)
    return tuple(sorted({Path(p).resolve() for p in mirror.values()}
                        | {request.data_dir.resolve()}))


def _execute(notebook, request: Request, readable: tuple[Path, ...]) -> Execution:
    settings = request.exercise.execution
    parameters = {settings.data_variable: str(request.data_dir.resolve() / "*.tfrec"),
                  settings.epochs_variable: settings.student_epochs}
    runtime = {"mirror": request.exercise.mirror_for(request.data_dir, request.mirror),
               "allowed_magics": list(settings.allowed_magics),
               "downloads": request.exercise.downloads_for(request.data_dir),
               "tfds_data_dir": str(offline.tfds_dir(request.data_dir) or ""),
               "unmapped_message": UNMAPPED + ", ".join(request.exercise.mirror) + ")."}
    work = Path(tempfile.mkdtemp(prefix="flowers-grader-work-"))
    record = request.out_dir / EXECUTED_NAME
    try:
        plan = Plan(work, parameters, runtime, settings.cell_timeout,
                    settings.notebook_timeout, record, request.exercise.sandbox, readable,
                    keep_going=request.keep_going, offline=request.keep_going)
        return execute(notebook, plan)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reject(result: Result, exc: ConfigRejected, exercise: Exercise) -> None:
    result.status, result.checks = "rejected", rules.too_large(exc.rule, exc.message)
    result.score = rules.score(result.checks, None, exercise)
