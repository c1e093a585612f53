"""How a grading ends on disk: result.json, and what reports/ renders from it (the files beside
each result.json, and a batch folder's dashboard and exports). `grade render OUT` rebuilds the
rendered files from the result.json files alone."""

from __future__ import annotations

import logging
from pathlib import Path

from grader import result as results
from grader.io import write_files
from grader.result import Result

log = logging.getLogger(__name__)


def finalize(result: Result, out_dir: Path, wall_seconds: float | None = None) -> Path:
    """How every grading ends on disk, one submission's or a batch student's: stamped, the
    reports rendered, and result.json written last, so its presence means the folder is whole.
    The total time is ``wall_seconds`` when the grading had its own (grade notebook); a batch's
    students share their work, so theirs is the sum of their parts."""
    timings = result.timings
    parts = sum(v for k, v in timings.items() if k != "total" and isinstance(v, (int, float)))
    timings["total"] = round(wall_seconds if wall_seconds is not None else parts, 2)
    result.finished_at = results.now()
    try:
        render_submission(result, out_dir)
    except Exception as exc:  # the result still counts; `grade render` can redo the reports
        log.error("could not render the report in %s: %r", out_dir, exc)
    return results.write(result, out_dir)


def render_submission(result: Result, folder: Path) -> None:
    """report.html, Gradescope's results.json and junit.xml beside one result.json."""
    from reports.render import submission_files

    write_files(folder, submission_files(result))


def render_batch(out_dir: Path, batch: list[tuple[str, Result]]) -> Path:
    """The class dashboard index.html, grades.csv and junit.xml; ``batch`` is (sub-folder name,
    result) per student. Returns the dashboard's path."""
    from reports.render import batch_files

    write_files(out_dir, batch_files(batch))
    return out_dir / "index.html"


def find_results(out_dir: Path) -> tuple[list[tuple[Path, Result]], list[str]]:
    """(folder, result) for OUT/result.json and OUT/*/result.json, sorted by folder; and, for
    each file that is not a result this grader reads, a line naming it and why."""
    found, skipped = [], []
    name = results.RESULT_NAME
    for path in sorted([out_dir / name, *out_dir.glob(f"*/{name}")]):
        if path.is_file():
            try:
                found.append((path.parent, results.read(path.parent)))
            except (OSError, ValueError) as exc:
                skipped.append(f"skipped {path}: {exc}")
    return found, skipped


def render_all(out_dir: Path) -> tuple[int, list[str]]:
    """Re-render everything under a grading output folder: the number of results rendered,
    and a line for each result.json that was skipped."""
    found, skipped = find_results(out_dir)
    for folder, result in found:
        render_submission(result, folder)
    batch = [(folder.name, result) for folder, result in found if folder != out_dir]
    if batch:
        render_batch(out_dir, batch)
    return len(found), skipped
