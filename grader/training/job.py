"""Trusted training of one checked architecture, as a job: what it depends on besides the
architecture (TrainingJob), and what it gives the result (Trained). grade notebook runs it in
its own process; grade batch runs it as a task and passes Trained between processes as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader import cost
from grader.exercise import Exercise, Profile
from grader.result import Sample, TrainingSummary
from grader.training import datacache
from grader.training.samples import samples


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
    steps."""
    from grader.training.train import train

    exercise, profile = job.exercise, job.profile
    splits, *test = [datacache.load(source, job.cache) for source in job.sources()]
    train_split = datacache.capped(splits.splits["train"], profile.max_train_images)
    val_split = datacache.capped(splits.splits["val"], profile.max_val_images)
    test_split = test[0].splits["all"] if test else None
    training = train(config, train_split, val_split, test_split, len(exercise.classes), profile,
                     job.precision, job.deterministic, on_projection, job.max_minutes)
    summary = TrainingSummary(**training.as_dict(), val_accuracy=training.validation.accuracy,
                              test_accuracy=training.test.accuracy if training.test else None)
    accuracy = summary.test_accuracy if training.test else summary.val_accuracy
    return Trained(summary, accuracy,
                   samples(val_split, training.validation.predictions, exercise.classes),
                   splits.decoded)
