"""Grade a class: ``grade batch``. Parallel, resumable, and every piece of work done once.

How a batch runs (docs/batch.md):

1. :mod:`grader.batch.submissions` finds the students. A student whose OUT/<id>/result.json
   was made by this same batch (same notebook content, exercise, data, profile and grader
   version) is done already and is not graded again: that is how a killed batch resumes.
2. Each distinct notebook content is inspected once (``inspect`` task: execute, extract,
   rebuild, rules), in a task process with a kernel of its own.
3. Each distinct architecture (a hash of the model config without its names, plus the training
   profile, data and precision) is trained once (``train`` task), on data decoded once into the
   batch's cache (``prepare`` task).
4. The driver (this module) writes each student's folder as soon as their parts are ready: the
   executed notebook, report.html, results.json (Gradescope), junit.xml, and result.json last.
   Then the dashboard index.html, grades.csv and junit.xml for the whole batch.

The parts: the keys work is filed under (grader.batch.keys), the cache of answers
(grader.batch.answers), the students' folders (grader.batch.folders), and where tasks run, a
local pool (``--workers``) or a Dask cluster (``--scheduler``; grader.batch.engines). This module
plans the tasks and takes their answers.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from grader import pipeline
from grader.batch import engines
from grader.batch.answers import AnswerCache
from grader.batch.folders import Folders
from grader.batch.keys import Keys
from grader.batch.submissions import Submission, discover
from grader.batch.summary import Summary
from grader.errors import GradingError
from grader.exercise import Exercise, Profile
from grader.io import sha256
from grader.model.rebuild import ModelInfo
from grader.result import Result
from grader.training import datacache
from grader.training.job import Trained, TrainingJob

log = logging.getLogger(__name__)
INSPECT_MARGIN = 240        # seconds beyond the notebook timeout: kernel start, rebuild
TRAIN_TIMEOUT = 6 * 3600    # one trusted training, whatever the profile
PREPARE_TIMEOUT = 3600      # decoding the data once
BATCH_RECORD = "batch.json"


@dataclass(frozen=True)
class Batch:
    """One ``grade batch`` command."""
    submissions: Path
    data_dir: Path
    out_dir: Path
    exercise: Exercise
    profile: Profile
    test_data: Path | None = None
    precision: str = "auto"
    backend: str = "tensorflow"     # Keras's backend for trusted training (chosen, not auto)
    mirror: dict[str, Path] = field(default_factory=dict)
    workers: int = 1
    scheduler: str | None = None
    cache: Path | None = None       # default OUT/.cache
    deterministic: bool | None = None  # op determinism in trusted training; None: on for CPUs
    train: bool = True              # False: stop every submission after the rules
    max_minutes: float | None = None  # stop a training projected to take longer than this

    @property
    def cache_dir(self) -> Path:
        return (self.cache or self.out_dir / ".cache").resolve()


@dataclass
class Waiting:
    """A student whose rules passed, waiting for their architecture's training."""
    submission: Submission
    result: Result
    info: ModelInfo | None     # the rebuilt model, for the hints
    config: dict[str, Any]     # the checked config to train


class _Run:
    """The state of one batch run: what is running, and which students wait for what. It plans
    the tasks and takes their answers; keys, the answer cache, the students' folders and where
    tasks run are each a part of their own."""

    def __init__(self, batch: Batch, engine, report: Callable[[Result, Summary], None],
                 announce: Callable[[str], None] = lambda line: None) -> None:
        self.batch, self.engine, self.report, self.announce = batch, engine, report, announce
        self.summary = Summary()
        self.exercise = batch.exercise
        self.keys = Keys(batch)
        self.answers = AnswerCache(batch.cache_dir)
        self.folders = Folders(batch, self.keys, self.answers)
        self.job = TrainingJob(batch.data_dir.resolve(),
                                        batch.test_data.resolve() if batch.test_data else None,
                                        self.exercise, batch.profile, batch.precision,
                                        batch.cache_dir, batch.deterministic, batch.max_minutes,
                                        batch.backend)
        self.pending: dict[Any, tuple[str, str]] = {}          # future → (kind, key)
        self.inspections: dict[str, list[Submission]] = defaultdict(list)
        self.trainings: dict[str, list[Waiting]] = defaultdict(list)
        self.queued: list[str] = []        # training keys waiting for the decoded data
        self.data_ready = False
        self.preparing = False
        self.done: list[tuple[str, Result]] = []

    # ---------------------------------------------------------------- planning

    def start(self, submission: Submission) -> None:
        if submission.notebook is None:
            self.write(submission, self.folders.problem_result(submission))
            return
        digest = sha256(submission.notebook)
        self.folders.digests[submission.student] = digest
        existing = self.folders.existing(submission)
        if existing is not None:
            self.summary.unchanged += 1
            self.record(submission, existing)
            return
        key = self.keys.inspection(digest)
        cached = self.answers.read("inspect", key)
        if cached is not None:
            self.summary.work["inspections reused"] += 1
            self.inspected(submission, cached, key)
            return
        waiting = key in self.inspections
        self.inspections[key].append(submission)
        if not waiting:
            request = pipeline.Request(submission.notebook.resolve(),
                                       self.batch.data_dir.resolve(), self.batch.cache_dir,
                                       self.exercise, self.batch.profile, self.batch.test_data,
                                       self.batch.precision, student=submission.student,
                                       mirror=self.batch.mirror)
            timeout = self.exercise.execution.notebook_timeout + INSPECT_MARGIN
            self.submit("inspect", request, timeout, key)
        else:
            self.summary.work["inspections shared"] += 1

    def submit(self, kind: str, payload: Any, timeout: float, key: str) -> None:
        self.pending[self.engine.submit(kind, payload, timeout)] = (kind, key)

    # ---------------------------------------------------------------- answers

    def loop(self) -> None:
        while self.pending:
            for future in self.engine.wait(set(self.pending)):
                kind, key = self.pending.pop(future)
                {"inspect": self.on_inspect, "train": self.on_train,
                 "prepare": self.on_prepare}[kind](key, engines.answer(future))

    def on_inspect(self, key: str, answer: dict[str, Any]) -> None:
        self.summary.work["inspections run"] += 1
        if "failed" not in answer:
            self.answers.write("inspect", key, answer)
        for submission in self.inspections.pop(key, []):
            self.inspected(submission, answer, key)

    def inspected(self, submission: Submission, answer: dict[str, Any], key: str) -> None:
        if "failed" in answer:
            self.write(submission, self.folders.failed_result(submission, "execute", answer))
            return
        result = self.folders.personal(submission, answer["result"])
        self.folders.copy_executed(submission, key, answer)
        if answer.get("config") is None:  # rejected, or an error: nothing to train
            self.write(submission, result)
            return
        self.need_training(submission, result, answer)

    def need_training(self, submission: Submission, result: Result,
                      answer: dict[str, Any]) -> None:
        if not self.batch.train:
            pipeline.checked(result, self.exercise)
            self.write(submission, result)
            return
        key = self.keys.training(result.model.architecture)
        info = ModelInfo.from_dict(answer["info"]) if answer.get("info") else None
        waiting = Waiting(submission, result, info, answer["config"])
        cached = self.answers.read("train", key)
        if cached is not None:
            self.summary.work["trainings reused"] += 1
            self.trained(waiting, cached)
            return
        shared = key in self.trainings
        self.trainings[key].append(waiting)
        if shared:
            self.summary.work["trainings shared"] += 1
        elif self.data_ready:
            self.submit("train", (answer["config"], self.job), TRAIN_TIMEOUT, key)
        else:
            self.queued.append(key)
            self.prepare()

    def prepare(self) -> None:
        """Decode the data once, before the first training (unless the cache has it)."""
        if self.preparing or self.data_ready:
            return
        if all(datacache.cached(source, self.batch.cache_dir)
               for source in self.job.sources()):
            self.on_prepare("data", {"decoded": 0})
            return
        self.preparing = True
        self.submit("prepare", self.job, PREPARE_TIMEOUT, "data")

    def on_prepare(self, key: str, answer: dict[str, Any]) -> None:
        self.preparing, self.data_ready = False, True
        self.summary.work["data decodes"] += int(answer.get("decoded") or 0)
        if "failed" in answer:  # each training then reports the data problem itself
            self.summary.notes.append(f"Preparing the data failed: {answer['failed']}")
        for train_key in self.queued:
            config = self.trainings[train_key][0].config
            self.submit("train", (config, self.job), TRAIN_TIMEOUT, train_key)
        self.queued = []

    def on_train(self, key: str, answer: dict[str, Any]) -> None:
        self.summary.work["trainings run"] += 1
        self.summary.work["data decodes"] += int(bool(answer.get("decoded")))
        if "failed" not in answer:
            self.answers.write("train", key, answer)
        for waiting in self.trainings.pop(key, []):
            self.trained(waiting, answer)
        if "failed" not in answer:
            self.project(answer)

    def project(self, answer: dict[str, Any]) -> None:
        """After each training: its measured speed, and the time the class still needs."""
        left = len(self.trainings) + len(self.inspections)  # each may still need a training
        self.announce(self.summary.after_training(answer, left,
                                                  getattr(self.engine, "parallel", 1)))

    def trained(self, waiting: Waiting, answer: dict[str, Any]) -> None:
        submission, result = waiting.submission, waiting.result
        if "failed" in answer:
            self.write(submission,
                       self.folders.failed_result(submission, "train", answer, result))
            return
        pipeline.finish(result, waiting.info, Trained.from_json(answer), self.exercise)
        result.timings["train"] = answer.get("seconds")
        self.write(submission, result)

    # ---------------------------------------------------------------- results

    def write(self, submission: Submission, result: Result) -> None:
        self.folders.write(submission, result)
        self.record(submission, result)

    def record(self, submission: Submission, result: Result) -> None:
        self.done.append((submission.student, result))
        self.summary.statuses[result.status] += 1
        self.summary.passed += result.passed
        self.report(result, self.summary)


def run(batch: Batch, report: Callable[[Result, Summary], None] = lambda r, s: None,
        announce: Callable[[int], None] = lambda n: None,
        note: Callable[[str], None] = lambda line: None) -> Summary:
    """Grade every submission of ``batch``; returns the summary (also written to batch.json).
    ``report`` hears each student's result, ``announce`` the class size, ``note`` the class's
    projected time after each training."""
    from grader.io import write_json
    from grader.reporting import render_batch

    started = time.monotonic()
    out = batch.out_dir
    out.mkdir(parents=True, exist_ok=True)
    found = discover(batch.submissions, batch.cache_dir / "inputs", exclude=out,
                     notebook_name=batch.exercise.notebook.name)
    if not found.submissions:
        raise GradingError("usage", f"No submissions found in {batch.submissions}.")
    announce(len(found.submissions))
    engine = engines.DaskEngine(batch.scheduler) if batch.scheduler \
        else engines.LocalEngine(batch.workers)
    state = _Run(batch, engine, report, note)
    state.summary.students = len(found.submissions)
    state.summary.notes += found.notes
    try:
        for submission in found.submissions:
            state.start(submission)
        state.loop()
    finally:
        engine.close()
    order = {s.student: i for i, s in enumerate(found.submissions)}
    state.done.sort(key=lambda entry: order[entry[0]])
    state.summary.dashboard = render_batch(out, state.done)
    state.summary.seconds = time.monotonic() - started
    write_json(out / BATCH_RECORD, state.summary.as_dict(), indent=2)
    return state.summary


def default_workers() -> int:
    """Half the cores: each worker's TensorFlow uses two threads well on its own."""
    return max(1, (os.cpu_count() or 2) // 2)
