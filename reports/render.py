"""Render results into reports and exports, as text: nothing here touches a file (the grader
writes them: grader/reporting.py). Never imports TensorFlow, never re-runs anything, and gives
the same text for the same results each time (no clocks, sorted order).

Per submission: report.html, results.json (Gradescope), junit.xml.
Per batch (results in sub-folders): index.html (dashboard), grades.csv, junit.xml.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader.result import Result
from reports import exports

STATUS_TEXT = {"graded": "Graded", "rejected": "Rejected", "error": "Could not be graded",
               "checked": "Rules passed (not trained)"}


def environment() -> Environment:
    """Jinja with autoescape on for every template: student text is never trusted markup."""
    env = Environment(loader=PackageLoader("reports", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: "—" if v is None else f"{int(v):,}"
    return env


def render_report(result: Result) -> str:
    """The HTML of one submission's report."""
    from reports.charts import HEIGHT, PAD, WIDTH, curves

    template = environment().get_template("report.html.j2")
    return template.render(r=result, status_text=STATUS_TEXT.get(result.status, "?"),
                           charts=curves(result.training.history),
                           chart={"w": WIDTH, "h": HEIGHT, "pad": PAD})


def submission_files(result: Result) -> dict[str, str]:
    """The files beside one result.json, by name: report.html, Gradescope's results.json,
    junit.xml."""
    return {"report.html": render_report(result),
            "results.json": exports.dumps(exports.gradescope(result)),
            "junit.xml": exports.junit([result])}


def render_dashboard(entries: list[tuple[str, Result]]) -> str:
    """The class dashboard; ``entries`` are (sub-folder name, result)."""
    from reports.dashboard import context

    return environment().get_template("dashboard.html.j2").render(**context(entries))


def batch_files(batch: list[tuple[str, Result]]) -> dict[str, str]:
    """The files of a batch folder, by name: the class dashboard index.html, grades.csv and
    junit.xml; ``batch`` is (sub-folder name, result) per student."""
    results = [result for _, result in batch]
    return {"grades.csv": exports.grades_csv(results), "junit.xml": exports.junit(results),
            "index.html": render_dashboard(batch)}
