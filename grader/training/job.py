"""Trusted training of one checked architecture, as a job: what it depends on besides the
architecture (TrainingJob), and what it gives the result (Trained). grade notebook runs it in
its own process (in a process of its own when the job's backend is JAX); grade batch runs it as a
task and passes Trained between processes as JSON."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import cost
from grader.errors import GradingError
from grader.exercise import Exercise, Profile
from grader.result import Sample, TrainingSummary
from grader.training import datacache
from grader.training.samples import samples

if TYPE_CHECKING:
    from grader.training.train import Training


@dataclass(frozen=True)
class TrainingJob:
    """Everything trusted training depends on besides the architecture."""
    data_dir: Path
    test_data: Path | None
    exercise: Exercise
    profile: Profile
    precision: str
    cache: Path | None = None    # decoded-data cache (grade batch); None decodes in memory
    deterministic: bool | None = None  # None: on for CPUs (train.train)
    max_minutes: float | None = None   # stop a training projected to take longer (grader.cost)
    backend: str = "tensorflow"  # Keras's backend for the training (grader.training.backend)

    def chosen_precision(self) -> str:
        """--precision when it names one, else the profile's, else "auto" (the hardware's)."""
        return self.profile.precision if self.precision == "auto" else self.precision

    def sources(self) -> list[datacache.Source]:
        """The decoded data training reads: the shards (split), then the test data (whole)."""
        size = self.exercise.image_size
        found = [datacache.Source(self.data_dir, size, self.exercise.validation_split)]
        if self.test_data:
            found.append(datacache.Source(self.test_data, size, None))
        return found


@dataclass
class Trained:
    """What trusted training gives the result: the details, the accuracy that decides (test
    data when given, else validation), the sample predictions. A batch's train task passes it
    between processes as JSON (its answer, also cached)."""
    training: TrainingSummary
    accuracy: float
    samples: list[Sample]
    decoded: int = 0            # images decoded for it (0: all came from the cache)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trained:
        return cls(TrainingSummary(**data["training"]), data["accuracy"],
                   [Sample(**sample) for sample in data["samples"]], data.get("decoded", 0))


def trusted_training(config: dict[str, Any], job: TrainingJob,
                     on_projection: cost.OnProjection | None = None) -> Trained:
    """Train the checked architecture on the grader's data. ``on_projection`` hears the
    measured speed and projected duration (a :class:`grader.cost.Projection`) after the first
    steps. A training on a backend this process does not run goes to a process of its own
    (:func:`in_own_process`); its projection is heard when it has finished.

    A profile with ``seeds = k`` trains k times, from seeds seed, seed + 1, ...: the accuracy
    is their mean and the summary lists each run (near the target, one seed can decide the
    verdict). The first run's projection is announced for all k, and --max-minutes is shared
    among them."""
    from grader.lazy import backend

    if job.backend != backend():
        trained = in_own_process(config, job)
        if on_projection and trained.training.projection:
            on_projection(cost.Projection(**trained.training.projection))
        return trained
    if job.backend == "tensorflow":
        from grader.training.train import train
    else:
        from grader.training.portable import train

    exercise, profile = job.exercise, job.profile
    splits, *test = [datacache.load(source, job.cache) for source in job.sources()]
    train_split = datacache.capped(splits.splits["train"], profile.max_train_images)
    val_split = datacache.capped(splits.splits["val"], profile.max_val_images)
    test_split = test[0].splits["all"] if test else None
    count = max(1, profile.seeds)
    limit = job.max_minutes / count if job.max_minutes else None

    def announce(projection: cost.Projection) -> None:
        if on_projection and not runs:   # the first run's, for all of them
            on_projection(replace(projection, runs=count,
                                  projected_seconds=projection.projected_seconds * count))

    runs: list[Training] = []
    for index in range(count):
        runs.append(train(config, train_split, val_split, test_split, len(exercise.classes),
                          replace(profile, seed=profile.seed + index), job.chosen_precision(),
                          job.deterministic, announce, limit))
    first = runs[0]
    deciding = [(run.test or run.validation).accuracy for run in runs]
    summary = TrainingSummary(
        **first.as_dict(), val_accuracy=first.validation.accuracy,
        test_accuracy=first.test.accuracy if first.test else None,
        runs=[{"seed": run.seed, "accuracy": accuracy, "val_accuracy": run.validation.accuracy,
               "test_accuracy": run.test.accuracy if run.test else None,
               "seconds": run.seconds} for run, accuracy in zip(runs, deciding)]
        if count > 1 else [])
    return Trained(summary, float(sum(deciding) / count),
                   samples(val_split, first.validation.predictions, exercise.classes),
                   splits.decoded)


# ---------------------------------------------------------------- in a process of its own

TIMEOUT = 6 * 3600   # one trusted training, whatever the profile (as grade batch's)
LOG_TAIL = 3000      # bytes of a failed training's output kept for the message


def in_own_process(config: dict[str, Any], job: TrainingJob) -> Trained:
    """The training in ``python -m grader.training.job SPEC`` (grader.proc: its own session,
    killed with the grader) with the job's backend: ``grade notebook`` keeps TensorFlow for the
    student's kernel and the rebuild, and a JAX training imports none
    (grader.training.backend). Its failures are GradingErrors, as they would be here."""
    from grader.proc import run_answering
    from grader.training.backend import process_env

    found, finished = run_answering("grader.training.job", (config, job), TIMEOUT,
                                    env=process_env(job.backend, job.deterministic),
                                    tail=LOG_TAIL)
    if found is None:
        last = finished.output.strip()[-LOG_TAIL:]
        raise GradingError("train", f"Trusted training on {job.backend}: "
                           f"{finished.failure('the training', TIMEOUT)}. Its last output: "
                           f"{last or '(none)'}", cause="training_failed")
    if "failed" in found:
        raise GradingError("train", found["failed"], cause=found.get("cause"))
    return Trained.from_json(found)


def _answer(payload: tuple[dict[str, Any], TrainingJob]) -> dict[str, Any]:
    try:
        return trusted_training(*payload).to_json()
    except GradingError as exc:  # --max-minutes, a model the backend cannot build, ...
        return {"failed": exc.message, "cause": exc.info().cause}


if __name__ == "__main__":
    from grader.lazy import quiet_libraries
    from grader.proc import answer

    quiet_libraries()
    answer(sys.argv[1], _answer)
