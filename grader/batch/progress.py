"""What ``grade batch`` shows while it runs, and the summary at the end.

On a terminal: a rich progress bar (done/total, failures, elapsed, time left). Elsewhere (CI
logs, a pipe): one line per finished student with the same numbers, so a log reads well.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from grader.result import Result


def _verdict(result: Result) -> str:
    accuracy = result.accuracy
    shown = "" if accuracy is None else f", accuracy {accuracy:.1%}"
    verdict = "passed" if result.passed else result.status
    return f"{verdict}{shown}, score {result.score}/{result.max_score}"


class Progress:
    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()
        self.bar = None
        self.task = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        if not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Bar(TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(),
                       TextColumn("left"), TimeRemainingColumn(),
                       console=Console(stderr=True), transient=False)
        self.task = self.bar.add_task("grading", total=total, failed=0)
        self.bar.start()

    def update(self, result: Result, summary: Any) -> None:
        self.done += 1
        self.failed += result.status == "error"
        line = f"{result.student}: {_verdict(result)}"
        if self.bar is not None:
            self.bar.console.print(line)
            self.bar.update(self.task, completed=self.done, failed=self.failed)
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        click.echo(f"[{self.done}/{self.total}] {line} ({self.failed} failed, "
                   f"{_duration(elapsed)} elapsed, ~{_duration(left)} left)", err=True)

    def note(self, line: str) -> None:
        """A line between the students' lines (the class's projected time)."""
        if self.bar is not None:
            self.bar.console.print(line)
        else:
            click.echo(line, err=True)

    def summary(self, summary: Any) -> None:
        """Counts by status, the work done and reused, and where the dashboard is."""
        statuses = ", ".join(f"{count} {status}" for status, count
                             in sorted(summary.statuses.items()))
        click.echo(f"{summary.students} submission(s) in {_duration(summary.seconds)}: "
                   f"{statuses}; {summary.passed} passed"
                   + (f"; {summary.unchanged} unchanged since the last run"
                      if summary.unchanged else ""))
        work = ", ".join(f"{name} {count}" for name, count in sorted(summary.work.items()))
        if work:
            click.echo(f"work: {work}")
        for note in summary.notes:
            click.echo(f"note: {note}")
        dashboard: Path | None = summary.dashboard
        click.echo(f"dashboard: {dashboard}")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
