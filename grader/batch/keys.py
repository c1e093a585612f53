"""The keys a batch files its work under: what makes two inspections, two trainings or two
results the same. A key changes whenever anything the answer depends on changes (the grader's
version, the exercise, the data, the profile, the precision), so a cache is never read stale."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.kernel.packages import runtime
from grader.training import datacache

if TYPE_CHECKING:
    from grader.batch.driver import Batch
    from grader.batch.submissions import Submission


def key(*parts: Any) -> str:
    """A short digest of ``parts`` (sets in sorted order, anything else by its text)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        return str(value)

    text = json.dumps(parts, sort_keys=True, default=plain)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Keys:
    """The keys of one batch command."""

    def __init__(self, batch: Batch) -> None:
        exercise = batch.exercise
        data = datacache.fingerprint(batch.data_dir)
        test = datacache.fingerprint(batch.test_data) if batch.test_data else None
        self.inspect_context = key(__version__, asdict(exercise), data,
                                   sorted((k, str(v)) for k, v in batch.mirror.items()),
                                   runtime().fingerprint())
        self.train_context = key(__version__, exercise.classes, exercise.image_size,
                                 exercise.validation_split, asdict(batch.profile), data, test,
                                 datacache.DECODER,
                                 batch.precision, batch.deterministic, batch.train,
                                 batch.backend)

    def inspection(self, digest: str) -> str:
        """A notebook's content, executed and checked under this batch's exercise and data."""
        return key(self.inspect_context, digest)

    def training(self, architecture: str) -> str:
        """An architecture, trained with this batch's profile, data, precision and backend."""
        return key(self.train_context, architecture)

    def result(self, submission: Submission, digest: str | None) -> str:
        """A student's whole result: a rerun keeps a result.json that carries this key."""
        return key(self.inspect_context, self.train_context, submission.student,
                   submission.source, submission.others, submission.problem, digest)
