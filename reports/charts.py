"""Numbers → coordinates for the report's inline SVG charts. Only numbers go in; the templates
draw the SVG elements themselves, so nothing here is ever marked safe."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 420, 200, 30


@dataclass(frozen=True)
class Series:
    label: str
    points: str    # "x,y x,y ..." for <polyline points=...>
    css: str       # the class that colours the line
    markers: list[tuple[str, str]]  # (x, y) of each epoch, drawn as dots


@dataclass(frozen=True)
class Chart:
    title: str
    series: list[Series]
    y_max: float
    epochs: int


def _points(values: list[float], y_max: float) -> str:
    span = max(1, len(values) - 1)
    return " ".join(
        f"{PAD + (WIDTH - 2 * PAD) * i / span:.1f},"
        f"{HEIGHT - PAD - (HEIGHT - 2 * PAD) * min(v, y_max) / y_max:.1f}"
        for i, v in enumerate(values))


def _series(label: str, values: list[float], y_max: float, css: str) -> Series:
    points = _points(values, y_max)
    markers = [tuple(pair.split(",")) for pair in points.split()]
    return Series(label, points, css, markers)


def curves(history: dict[str, list[float]]) -> list[Chart]:
    """Accuracy and loss, training and validation, per epoch."""
    charts = []
    for metric, title in (("accuracy", "Accuracy"), ("loss", "Loss")):
        train, val = history.get(metric) or [], history.get(f"val_{metric}") or []
        if not train and not val:
            continue
        y_max = 1.0 if metric == "accuracy" else max([*train, *val, 0.1]) * 1.1
        charts.append(Chart(title, [_series("training", train, y_max, "train"),
                                    _series("validation", val, y_max, "val")],
                            round(y_max, 2), max(len(train), len(val))))
    return charts
