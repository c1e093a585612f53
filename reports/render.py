"""Render result.json files into reports and exports. Never imports TensorFlow, never re-runs
anything: `grade render OUT` rebuilds every file below from the result.json files alone, and
gives the same bytes each time (no clocks, sorted order).

Per submission folder: report.html, results.json (Gradescope), junit.xml.
Per batch folder (results in sub-folders): index.html (dashboard), grades.csv, junit.xml.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reports import exports

STATUS_TEXT = {"graded": "Graded", "rejected": "Rejected", "error": "Could not be graded",
               "checked": "Rules passed (not trained)"}
RESULT_NAME = "result.json"


def environment() -> Environment:
    """Jinja with autoescape on for every template: student text is never trusted markup."""
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: "—" if v is None else f"{int(v):,}"
    return env


def render_report(result: dict[str, Any]) -> str:
    """The HTML of one submission's report."""
    from reports.charts import HEIGHT, PAD, WIDTH, curves

    template = environment().get_template("report.html.j2")
    history = (result.get("training") or {}).get("history") or {}
    return template.render(r=result, status_text=STATUS_TEXT.get(result.get("status"), "?"),
                           charts=curves(history), chart={"w": WIDTH, "h": HEIGHT, "pad": PAD})


def write_text(path: Path, text: str) -> Path:
    """Write atomically, readable by others (the files are for sharing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_report(result: dict[str, Any], path: Path) -> Path:
    return write_text(path, render_report(result))


def render_submission(result: dict[str, Any], folder: Path) -> None:
    """report.html, Gradescope results.json and junit.xml beside one result.json."""
    write_report(result, folder / "report.html")
    write_text(folder / "results.json", exports.dumps(exports.gradescope(result)))
    write_text(folder / "junit.xml", exports.junit([result]))


def find_results(out_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, result) for OUT/result.json and OUT/*/result.json, sorted by folder."""
    found = []
    for path in sorted([out_dir / RESULT_NAME, *out_dir.glob(f"*/{RESULT_NAME}")]):
        if path.is_file():
            try:
                found.append((path.parent, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                continue  # a half-written or foreign file: the batch reports it, not us
    return found


def render_dashboard(entries: list[tuple[str, dict[str, Any]]]) -> str:
    """The class dashboard; ``entries`` are (sub-folder name, result)."""
    from reports.dashboard import context

    return environment().get_template("dashboard.html.j2").render(**context(entries))


def render_all(out_dir: Path) -> int:
    """Re-render everything under a grading output folder; returns the number of results."""
    found = find_results(out_dir)
    for folder, result in found:
        render_submission(result, folder)
    batch = [(folder.name, result) for folder, result in found if folder != out_dir]
    if batch:
        render_batch(out_dir, batch)
    return len(found)


def render_batch(out_dir: Path, batch: list[tuple[str, dict[str, Any]]]) -> Path:
    """The class dashboard index.html, grades.csv and junit.xml; ``batch`` is (sub-folder name,
    result) per student. Returns the dashboard's path."""
    results = [result for _, result in batch]
    write_text(out_dir / "grades.csv", exports.grades_csv(results))
    write_text(out_dir / "junit.xml", exports.junit(results))
    return write_text(out_dir / "index.html", render_dashboard(batch))
