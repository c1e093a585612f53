"""Each student's folder of a batch: their result made from an inspection (maybe of an identical
notebook), the error result of a problem or of a task that failed, the executed notebook, and
the finished folder (grader.reporting.finalize, with the key a rerun compares)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import pipeline, reporting, result as results
from grader.batch.answers import AnswerCache
from grader.batch.keys import Keys
from grader.batch.submissions import Submission
from grader.errors import GradingError
from grader.io import write_text
from grader.result import Result

if TYPE_CHECKING:
    from grader.batch.driver import Batch


class Folders:
    """The students' folders under the batch's OUT."""

    def __init__(self, batch: Batch, keys: Keys, answers: AnswerCache) -> None:
        self.batch, self.keys, self.answers = batch, keys, answers
        self.digests: dict[str, str] = {}   # student → their notebook's SHA-256

    def personal(self, submission: Submission, inspected: dict[str, Any]) -> Result:
        """The inspection's result (maybe of an identical notebook) as this student's."""
        result = Result.from_json(inspected)
        result.student = submission.student
        result.submission.file = submission.notebook.name if submission.notebook \
            else submission.source
        result.warnings = submission.warnings + result.warnings
        return result

    def problem_result(self, submission: Submission) -> Result:
        """A student with no notebook to grade (discover says why)."""
        result = self._blank(submission, Path(submission.source).name, None)
        result.fail(GradingError("validate", submission.problem, cause="no_notebook").info())
        return result

    def _blank(self, submission: Submission, file: str, digest: str | None) -> Result:
        return results.blank(submission.student, file, digest, self.batch.exercise,
                             self.batch.profile)

    def failed_result(self, submission: Submission, stage: str, answer: dict[str, Any],
                      base: Result | None = None) -> Result:
        """A task that hung, crashed or was killed: an error result saying so."""
        result = base or self._blank(submission, submission.notebook.name,
                                     self.digests.get(submission.student))
        advice = ("Run the notebook top to bottom yourself (Restart & Run All): it must finish "
                  "without crashing the kernel, within the time limits."
                  if stage == "execute" else
                  "This is not your fault: your instructor will look into it.")
        result.fail(GradingError(stage, f"Grading stopped: {answer['failed']}. {advice}",
                                 traceback=(answer.get("log") or "")[-2000:] or None,
                                 cause=answer.get("cause")).info())
        if answer.get("seconds") is not None:  # the time the task took before it failed
            result.timings[stage] = answer["seconds"]
        return result

    def result_key(self, submission: Submission) -> str:
        return self.keys.result(submission, self.digests.get(submission.student))

    def existing(self, submission: Submission) -> Result | None:
        """The student's result.json, when this same batch wrote it (a rerun keeps it)."""
        try:
            found = results.read(self.batch.out_dir / submission.student)
        except (OSError, ValueError):
            return None
        batch = found.batch if isinstance(found.batch, dict) else {}
        return found if batch.get("key") == self.result_key(submission) else None

    def copy_executed(self, submission: Submission, key: str, answer: dict[str, Any]) -> None:
        source = self.answers.executed("inspect", key)
        folder = self.batch.out_dir / submission.student
        folder.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copyfile(source, folder / pipeline.EXECUTED_NAME)
        elif answer.get("executed"):
            write_text(folder / pipeline.EXECUTED_NAME, answer["executed"])

    def write(self, submission: Submission, result: Result) -> None:
        """The student's folder, with the key a rerun compares (grader.reporting.finalize)."""
        folder = self.batch.out_dir / submission.student
        folder.mkdir(parents=True, exist_ok=True)
        result.batch = {"key": self.result_key(submission), "source": submission.source}
        reporting.finalize(result, folder)
