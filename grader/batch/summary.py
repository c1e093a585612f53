"""What a batch did: counts by status, the work run and reused, notes, and its cost (each
training's measured speed and duration, and the class's projected remaining time). Written to
batch.json and printed at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Summary:
    students: int = 0
    statuses: Counter = field(default_factory=Counter)
    passed: int = 0
    unchanged: int = 0                                   # results kept from an earlier run
    work: Counter = field(default_factory=Counter)       # tasks run and cached answers used
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dashboard: Path | None = None
    # Cost: every training's measured speed (images/s on its first steps) and duration, and
    # the class's projected remaining time after the latest one.
    speeds: list[float] = field(default_factory=list)
    training_seconds: list[float] = field(default_factory=list)
    projected_seconds: float | None = None
    host: str | None = None

    def after_training(self, answer: dict[str, Any], left: int, parallel: int) -> str:
        """Record a training's speed and duration; the class's projected remaining time."""
        from grader.cost import duration

        projection = (answer.get("training") or {}).get("projection") or {}
        self.host = projection.get("host") or self.host
        if projection.get("images_per_second"):
            self.speeds.append(projection["images_per_second"])
        self.training_seconds.append(float(answer.get("seconds") or 0.0))
        mean = sum(self.training_seconds) / len(self.training_seconds)
        self.projected_seconds = round(left * mean / parallel, 1)
        return (f"class projection after {len(self.training_seconds)} training(s) "
                f"({duration(mean)} each on {self.host or 'this machine'}): about "
                f"{duration(self.projected_seconds)} more for up to {left} training(s) left on "
                f"{parallel} worker(s)")

    def as_dict(self) -> dict[str, Any]:
        return {"students": self.students, "statuses": dict(self.statuses),
                "passed": self.passed, "unchanged": self.unchanged, "work": dict(self.work),
                "notes": self.notes, "seconds": round(self.seconds, 1),
                "dashboard": str(self.dashboard) if self.dashboard else None,
                "cost": {"host": self.host, "images_per_second": self.speeds,
                         "training_seconds": self.training_seconds,
                         "projected_seconds": self.projected_seconds}}
