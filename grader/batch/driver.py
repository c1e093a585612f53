"""Grade a class: ``grade batch``. Parallel, resumable, and every piece of work done once.

How a batch runs (docs/batch.md):

1. :mod:`grader.batch.submissions` finds the students. A student whose OUT/<id>/result.json was made
   by this same batch (same notebook content, exercise, data, profile and grader version) is
   done already and is not graded again: that is how a killed batch resumes.
2. Each distinct notebook content is inspected once (``inspect`` task: execute, extract,
   rebuild, rules), in its own process and kernel.
3. Each distinct architecture (a hash of the model config without its names, plus the training
   profile, data and precision) is trained once (``train`` task), on data decoded once into the
   batch's cache (``prepare`` task).
4. The driver (this module) writes each student's folder as soon as their parts are ready: the
   executed notebook, report.html, results.json (Gradescope), junit.xml, and result.json last.
   Then the dashboard index.html, grades.csv and junit.xml for the whole batch.

Intermediate answers are cached in ``CACHE`` (``OUT/.cache`` by default), each file written
atomically under its key, so a batch killed at any moment loses at most the tasks running then.
The tasks run on a local pool of processes (``--workers``) or on a Dask cluster
(``--scheduler``); this module only submits tasks and waits for the first one to finish.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter, defaultdict
from concurrent import futures as cf
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from grader import __version__, pipeline, result as results
from grader.batch.submissions import Submission, discover
from grader.batch.tasks import run_task
from grader.errors import GradingError
from grader.exercise import Exercise, Profile
from grader.kernel.notebook import sha256
from grader.model.rebuild import ModelInfo
from grader.training import datacache

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
class Summary:
    students: int = 0
    statuses: Counter = field(default_factory=Counter)
    passed: int = 0
    unchanged: int = 0                                   # results kept from an earlier run
    work: Counter = field(default_factory=Counter)       # tasks run and cached answers used
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dashboard: Path | None = None
    # Cost: every training's measured speed (images/s on its first steps) and duration, and
    # the class's projected remaining time after the latest one.
    speeds: list[float] = field(default_factory=list)
    training_seconds: list[float] = field(default_factory=list)
    projected_seconds: float | None = None
    host: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"students": self.students, "statuses": dict(self.statuses),
                "passed": self.passed, "unchanged": self.unchanged, "work": dict(self.work),
                "notes": self.notes, "seconds": round(self.seconds, 1),
                "dashboard": str(self.dashboard) if self.dashboard else None,
                "cost": {"host": self.host, "images_per_second": self.speeds,
                         "training_seconds": self.training_seconds,
                         "projected_seconds": self.projected_seconds}}


def _key(*parts: Any) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        return str(value)

    text = json.dumps(parts, sort_keys=True, default=plain)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class LocalEngine:
    """A pool of ``workers`` threads, each running one task process at a time."""

    def __init__(self, workers: int) -> None:
        self.parallel = max(1, workers)
        self.pool = cf.ThreadPoolExecutor(max_workers=self.parallel,
                                          thread_name_prefix="grade")

    def submit(self, kind: str, payload: Any, timeout: float):
        return self.pool.submit(run_task, kind, payload, timeout)

    def wait(self, pending: set) -> set:
        return cf.wait(pending, return_when=cf.FIRST_COMPLETED).done

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskEngine:
    """Tasks on a running Dask distributed cluster (its scheduler's address)."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        try:
            self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise GradingError("usage", f"No Dask scheduler answered at {address} ({exc}). "
                               f"Start one with `dask scheduler` and workers with `dask worker "
                               f"{address} --nthreads 1` (README, 'Grading on a cluster').") \
                from None
        self.parallel = max(1, sum(self.client.nthreads().values()))

    def submit(self, kind: str, payload: Any, timeout: float):
        return self.client.submit(run_task, kind, payload, timeout, pure=False)

    def wait(self, pending: set) -> set:
        from distributed import wait

        return set(wait(list(pending), return_when="FIRST_COMPLETED").done)

    def close(self) -> None:
        self.client.close()


def _answer(future) -> dict[str, Any]:
    """A task's answer; a task that could not run at all (a lost Dask worker) is a failure."""
    try:
        return future.result()
    except Exception as exc:
        return {"failed": f"the task could not run ({type(exc).__name__}: {exc})"}


class _Run:
    """The state of one batch run: what is cached, running, and waiting for what."""

    def __init__(self, batch: Batch, engine, report: Callable[[dict[str, Any], Summary], None],
                 announce: Callable[[str], None] = lambda line: None) -> None:
        self.batch, self.engine, self.report, self.announce = batch, engine, report, announce
        self.summary = Summary()
        self.exercise = batch.exercise
        self.cache = batch.cache_dir
        data_fp = datacache.fingerprint(batch.data_dir)
        test_fp = datacache.fingerprint(batch.test_data) if batch.test_data else None
        self.inspect_context = _key(__version__, asdict(self.exercise), data_fp,
                                    sorted((k, str(v)) for k, v in batch.mirror.items()))
        self.train_context = _key(__version__, self.exercise.classes, self.exercise.image_size,
                                  self.exercise.validation_split, asdict(batch.profile), data_fp,
                                  test_fp, batch.precision, batch.deterministic, batch.train)
        self.job = pipeline.TrainingJob(batch.data_dir.resolve(),
                                        batch.test_data.resolve() if batch.test_data else None,
                                        self.exercise, batch.profile, batch.precision, self.cache,
                                        batch.deterministic, batch.max_minutes)
        self.pending: dict[Any, tuple[str, str]] = {}          # future → (kind, key)
        self.inspections: dict[str, list[Submission]] = defaultdict(list)
        self.trainings: dict[str, list[tuple[Submission, dict[str, Any]]]] = defaultdict(list)
        self.queued: list[str] = []        # training keys waiting for the decoded data
        self.data_ready = False
        self.preparing = False
        self.digests: dict[str, str] = {}
        self.done: list[tuple[str, dict[str, Any]]] = []

    # ---------------------------------------------------------------- planning

    def result_key(self, submission: Submission) -> str:
        digest = self.digests.get(submission.student)
        return _key(self.inspect_context, self.train_context, submission.student,
                    submission.source, submission.others, submission.problem, digest)

    def start(self, submission: Submission) -> None:
        if submission.notebook is None:
            self.write(submission, self.problem_result(submission))
            return
        digest = sha256(submission.notebook)
        self.digests[submission.student] = digest
        existing = self.existing(submission)
        if existing is not None:
            self.summary.unchanged += 1
            self.record(submission, existing)
            return
        key = _key(self.inspect_context, digest)
        cached = self.read_cache("inspect", key)
        if cached is not None:
            self.summary.work["inspections reused"] += 1
            self.inspected(submission, cached, key)
            return
        waiting = key in self.inspections
        self.inspections[key].append(submission)
        if not waiting:
            request = pipeline.Request(submission.notebook.resolve(),
                                       self.batch.data_dir.resolve(), self.cache,
                                       self.exercise, self.batch.profile, self.batch.test_data,
                                       self.batch.precision, submission.student,
                                       self.batch.mirror)
            timeout = self.exercise.execution.notebook_timeout + INSPECT_MARGIN
            self.submit("inspect", request, timeout, key)
        else:
            self.summary.work["inspections shared"] += 1

    def existing(self, submission: Submission) -> dict[str, Any] | None:
        path = self.batch.out_dir / submission.student / results.RESULT_NAME
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        batch = found.get("batch") if isinstance(found, dict) else None
        return found if isinstance(batch, dict) and \
            batch.get("key") == self.result_key(submission) else None

    def submit(self, kind: str, payload: Any, timeout: float, key: str) -> None:
        self.pending[self.engine.submit(kind, payload, timeout)] = (kind, key)

    # ---------------------------------------------------------------- answers

    def loop(self) -> None:
        while self.pending:
            for future in self.engine.wait(set(self.pending)):
                kind, key = self.pending.pop(future)
                answer = _answer(future)
                {"inspect": self.on_inspect, "train": self.on_train,
                 "prepare": self.on_prepare}[kind](key, answer)

    def on_inspect(self, key: str, answer: dict[str, Any]) -> None:
        self.summary.work["inspections run"] += 1
        if "failed" not in answer:
            self.write_cache("inspect", key, answer)
        for submission in self.inspections.pop(key, []):
            self.inspected(submission, answer, key)

    def inspected(self, submission: Submission, answer: dict[str, Any], key: str) -> None:
        if "failed" in answer:
            self.write(submission, self.failed_result(submission, "execute", answer))
            return
        result = self.personal(submission, answer["result"])
        self.copy_executed(submission, key, answer)
        if answer.get("config") is None:  # rejected, or an error: nothing to train
            self.write(submission, result)
            return
        self.need_training(submission, result, answer)

    def need_training(self, submission: Submission, result: dict[str, Any],
                      answer: dict[str, Any]) -> None:
        if not self.batch.train:
            pipeline.checked(result, self.exercise)
            self.write(submission, result)
            return
        key = _key(self.train_context, result["model"]["architecture"])
        result["_info"], result["_config"] = answer.get("info"), answer["config"]
        cached = self.read_cache("train", key)
        if cached is not None:
            self.summary.work["trainings reused"] += 1
            self.trained(submission, result, cached)
            return
        waiting = key in self.trainings
        self.trainings[key].append((submission, result))
        if waiting:
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
        if all(datacache.cached(source, self.cache) for source in self.job.sources()):
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
            config = self.trainings[train_key][0][1]["_config"]
            self.submit("train", (config, self.job), TRAIN_TIMEOUT, train_key)
        self.queued = []

    def on_train(self, key: str, answer: dict[str, Any]) -> None:
        self.summary.work["trainings run"] += 1
        self.summary.work["data decodes"] += int(bool(answer.get("decoded")))
        if "failed" not in answer:
            self.write_cache("train", key, answer)
        for submission, result in self.trainings.pop(key, []):
            self.trained(submission, result, answer)
        if "failed" not in answer:
            self.project(answer)

    def project(self, answer: dict[str, Any]) -> None:
        """After each training: its measured speed, and the time the class still needs."""
        from grader.cost import duration

        summary, training = self.summary, answer.get("training") or {}
        projection = training.get("projection") or {}
        summary.host = projection.get("host") or summary.host
        if projection.get("images_per_second"):
            summary.speeds.append(projection["images_per_second"])
        summary.training_seconds.append(float(answer.get("seconds") or 0.0))
        mean = sum(summary.training_seconds) / len(summary.training_seconds)
        left = len(self.trainings) + len(self.inspections)  # each may still need a training
        parallel = getattr(self.engine, "parallel", 1)
        summary.projected_seconds = round(left * mean / parallel, 1)
        self.announce(f"class projection after {len(summary.training_seconds)} training(s) "
                      f"({duration(mean)} each on {summary.host or 'this machine'}): about "
                      f"{duration(summary.projected_seconds)} more for up to {left} "
                      f"training(s) left on {parallel} worker(s)")

    def trained(self, submission: Submission, result: dict[str, Any],
                answer: dict[str, Any]) -> None:
        info, _ = result.pop("_info", None), result.pop("_config", None)
        if "failed" in answer:
            self.write(submission, self.failed_result(submission, "train", answer, result))
            return
        pipeline.finish(result, ModelInfo.from_dict(info) if info else None, answer,
                        self.exercise)
        result["timings"]["train"] = answer.get("seconds")
        self.write(submission, result)

    # ---------------------------------------------------------------- results

    def personal(self, submission: Submission, inspected: dict[str, Any]) -> dict[str, Any]:
        """The inspection's result (maybe of an identical notebook) as this student's."""
        result = copy.deepcopy(inspected)
        result["student"] = submission.student
        result["submission"]["file"] = submission.notebook.name if submission.notebook \
            else submission.source
        result["warnings"] = submission.warnings + result["warnings"]
        return result

    def problem_result(self, submission: Submission) -> dict[str, Any]:
        result = results.skeleton(submission.student, Path(submission.source), None,
                                  self.exercise, self.batch.profile)
        result["error"] = GradingError("validate", submission.problem).as_dict()
        return result

    def failed_result(self, submission: Submission, stage: str, answer: dict[str, Any],
                      base: dict[str, Any] | None = None) -> dict[str, Any]:
        """A task that hung, crashed or was killed: an error result saying so."""
        result = base or results.skeleton(submission.student, submission.notebook,
                                          self.digests.get(submission.student), self.exercise,
                                          self.batch.profile)
        result.pop("_info", None)
        result.pop("_config", None)
        advice = ("Run the notebook top to bottom yourself (Restart & Run All): it must finish "
                  "without crashing the kernel, within the time limits."
                  if stage == "execute" else
                  "This is not your fault: your instructor will look into it.")
        result.update(status="error", passed=False, error=GradingError(
            stage, f"Grading stopped: {answer['failed']}. {advice}",
            traceback=(answer.get("log") or "")[-2000:] or None).as_dict())
        return result

    def write(self, submission: Submission, result: dict[str, Any]) -> None:
        """The student's folder, with the key a rerun compares (grader.result.finalize)."""
        folder = self.batch.out_dir / submission.student
        folder.mkdir(parents=True, exist_ok=True)
        result["batch"] = {"key": self.result_key(submission), "source": submission.source}
        results.finalize(result, folder)
        self.record(submission, result)

    def record(self, submission: Submission, result: dict[str, Any]) -> None:
        self.done.append((submission.student, result))
        self.summary.statuses[result.get("status", "error")] += 1
        self.summary.passed += bool(result.get("passed"))
        self.report(result, self.summary)

    def copy_executed(self, submission: Submission, key: str, answer: dict[str, Any]) -> None:
        source = self.cache / "inspect" / f"{key}.ipynb"
        folder = self.batch.out_dir / submission.student
        folder.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copyfile(source, folder / pipeline.EXECUTED_NAME)
        elif answer.get("executed"):
            from reports.render import write_text
            write_text(folder / pipeline.EXECUTED_NAME, answer["executed"])

    # ---------------------------------------------------------------- cache

    def read_cache(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.cache / kind / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_cache(self, kind: str, key: str, answer: dict[str, Any]) -> None:
        from reports.render import write_text

        stored = dict(answer)
        executed = stored.pop("executed", None)
        if executed:
            write_text(self.cache / kind / f"{key}.ipynb", executed)
        write_text(self.cache / kind / f"{key}.json",
                   json.dumps(stored, default=results._jsonable))


def run(batch: Batch, report: Callable[[dict[str, Any], Summary], None] = lambda r, s: None,
        announce: Callable[[int], None] = lambda n: None,
        note: Callable[[str], None] = lambda line: None) -> Summary:
    """Grade every submission of ``batch``; returns the summary (also written to batch.json).
    ``report`` hears each student's result, ``announce`` the class size, ``note`` the class's
    projected time after each training."""
    from reports.render import render_batch, write_text

    started = time.monotonic()
    out = batch.out_dir
    out.mkdir(parents=True, exist_ok=True)
    found = discover(batch.submissions, batch.cache_dir / "inputs", exclude=out,
                     notebook_name=batch.exercise.notebook.name)
    if not found.submissions:
        raise GradingError("usage", f"No submissions found in {batch.submissions}.")
    announce(len(found.submissions))
    engine = DaskEngine(batch.scheduler) if batch.scheduler else LocalEngine(batch.workers)
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
    write_text(out / BATCH_RECORD, json.dumps(state.summary.as_dict(), indent=2) + "\n")
    return state.summary


def default_workers() -> int:
    """Half the cores: each worker's TensorFlow uses two threads well on its own."""
    return max(1, (os.cpu_count() or 2) // 2)
