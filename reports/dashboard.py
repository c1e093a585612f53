"""Numbers for the class dashboard: counts, accuracy histogram, parameters-vs-accuracy scatter,
and the students who share a model architecture or a whole notebook."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from grader.result import Result

BINS = 10
W, H, PAD = 460, 220, 36


def _histogram(accuracies: list[float]) -> list[dict[str, float]]:
    counts = Counter(min(BINS - 1, int(a * BINS)) for a in accuracies)
    top = max(counts.values(), default=1)
    width = (W - 2 * PAD) / BINS
    bars = []
    for index in range(BINS):
        height = (H - 2 * PAD) * counts.get(index, 0) / top
        bars.append({"x": round(PAD + index * width + 1, 1), "y": round(H - PAD - height, 1),
                     "w": round(width - 2, 1), "h": round(height, 1),
                     "n": counts.get(index, 0), "label": f"{index * 10}–{index * 10 + 10}%"})
    return bars


def _x_of(params: int, low: float, high: float) -> float:
    span = max(high - low, 1e-9)
    return round(PAD + (W - 2 * PAD) * (math.log10(max(params, 1)) - low) / span, 1)


def _scatter(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[int, int]]:
    plotted = [r for r in rows if r["accuracy"] is not None and r["params"]]
    logs = [math.log10(r["params"]) for r in plotted] or [3.0, 6.0]
    low, high = math.floor(min(logs)), math.ceil(max(logs))
    high = max(high, low + 1)
    points = [{"x": _x_of(r["params"], low, high),
               "y": round(H - PAD - (H - 2 * PAD) * r["accuracy"], 1),
               "folder": r["folder"], "student": r["student"], "passed": r["passed"]}
              for r in plotted]
    return points, (10 ** low, 10 ** high)


def _digest(value: Any) -> str | None:
    """A hash from result.json, or None: older results lack the field or hold null."""
    return value if isinstance(value, str) and value else None


def _row(folder: str, result: Result) -> dict[str, Any]:
    return {"folder": folder, "student": result.student or folder,
            "status": result.status, "passed": result.passed,
            "score": result.score, "max_score": result.max_score,
            "accuracy": result.accuracy, "params": result.model.params,
            "seconds": result.timings.get("total"),
            "architecture": _digest(result.model.architecture),
            "sha256": _digest(result.submission.sha256), "group": None,
            "cause": result.error.cause if result.error else None, "why": _why(result),
            "borderline": result.borderline}


def _why(result: Result) -> str:
    """One line on why a submission did not pass: its error's cause and message, or the rules it
    broke ("" for a graded one)."""
    if result.error:
        message = result.error.message
        return f"{result.error.cause}: {message if len(message) <= 160 else message[:157] + '…'}"
    broken = [check.id for check in result.checks if check.passed is False]
    return f"broke {', '.join(broken)}" if broken else ""


def _causes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors grouped by cause, most frequent first, with the students of each."""
    groups: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["cause"]:
            groups[row["cause"]].append(row["student"])
    return [{"cause": cause, "count": len(students), "students": sorted(students)}
            for cause, students in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))]


def _groups(rows: list[dict[str, Any]], field: str, prefix: str) -> list[dict[str, Any]]:
    """Rows that share a ``field`` value, where two or more different students share it.

    Largest group first, then by student names; ids count up in that order ("A1", "A2").
    One student graded twice is a resubmission, not a group.
    """
    shared: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row[field]:
            shared[row[field]].append(row)
    groups = [{"key": key, "short": key[:8], "students": sorted({r["student"] for r in members})}
              for key, members in shared.items()]
    groups = [g for g in groups if len(g["students"]) > 1]
    groups.sort(key=lambda g: (-len(g["students"]), g["students"], g["key"]))
    for number, group in enumerate(groups, 1):
        group["id"] = f"{prefix}{number}"
    return groups


def _similarity(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Architecture groups (each member row gets the group's id for its badge) and groups of
    byte-identical notebooks."""
    architectures = _groups(rows, "architecture", "A")
    for group in architectures:
        members = [r for r in rows if r["architecture"] == group["key"]]
        for row in members:
            row["group"] = group["id"]
        group["params"] = next((r["params"] for r in members if r["params"] is not None), None)
    return {"architectures": architectures, "notebooks": _groups(rows, "sha256", "N")}


def context(entries: list[tuple[str, Result]]) -> dict[str, Any]:
    """Everything dashboard.html.j2 draws; student text stays plain strings (autoescaped)."""
    rows = sorted((_row(folder, result) for folder, result in entries),
                  key=lambda r: r["student"])
    target = entries[0][1].target.accuracy if entries else 0.75
    points, (low, high) = _scatter(rows)
    similarity = _similarity(rows)  # also sets each row's "group", the id on its badge
    return {
        "rows": rows,
        "similarity": similarity,
        "counts": sorted(Counter(r["status"] for r in rows).items()),
        "causes": _causes(rows),
        "passed": sum(r["passed"] for r in rows),
        "bars": _histogram([r["accuracy"] for r in rows if r["accuracy"] is not None]),
        "points": points, "params_range": (int(low), int(high)),
        "target": target, "target_x": round(PAD + (W - 2 * PAD) * target, 1),
        "target_y": round(H - PAD - (H - 2 * PAD) * target, 1),
        "svg": {"w": W, "h": H, "pad": PAD},
    }
