"""Render one result.json into a self-contained report.html (inline CSS, no external assets)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

STATUS_TEXT = {"graded": "Graded", "rejected": "Rejected", "error": "Could not be graded"}


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


def write_report(result: dict[str, Any], path: Path) -> Path:
    """Render and write atomically."""
    html = render_report(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(html)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    return path


def render_file(result_path: Path) -> Path:
    """Re-render the report beside a result.json."""
    result = json.loads(result_path.read_text(encoding="utf-8"))
    return write_report(result, result_path.parent / "report.html")
