"""What a trusted training will cost on this machine, known before most of it runs.

Hosts of one kind differ several times over in speed (the reference architecture trains at about
68 images/s on two cores with AVX-512 BF16 and 11 on two AVX2-only cores), so no table of
constants can say how long a grading takes. Trusted training measures it instead: the first
steps of every training are timed (the very first, which traces and compiles, is left out), and
the rest of the run is projected from them. The projection is printed before the bulk of the
training runs and recorded in result.json (``training.projection``); with a time limit
(``--max-minutes``) a training whose projection exceeds it stops there, and the result says why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

WARMUP_STEPS = 1   # the first step traces and compiles the training function: not timed
TIMED_STEPS = 5    # steps timed after it (fewer when a profile's training is shorter)
# A forward pass (validation, BatchNormalization statistics) costs about a third of a training
# step per image: no gradients, no optimizer.
FORWARD_SHARE = 1 / 3
# CPU flags that decide the speed and the precision of training here.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
# A file to which every trusted training appends one JSON line (the test suite's account of
# what it trained: tests/conftest.py sets it and prints the totals).
LEDGER_VARIABLE = "FLOWERS_GRADER_LEDGER"


@dataclass(frozen=True)
class Projection:
    """Measured speed and projected time of one trusted training."""
    images_per_second: float   # training images per second over the timed steps
    timed_steps: int
    epochs: int
    steps_per_epoch: int
    batch_size: int
    forward_images: int        # per epoch: validation and BatchNormalization statistics
    setup_seconds: float       # from the start of fit to the first timed step (tracing)
    projected_seconds: float   # the whole training, validation included
    host: str                  # the processor (or accelerator) and the precision
    runs: int = 1              # trainings projected (a profile's seeds), each of this size

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        """One line for the terminal: the speed, the host, and the projected duration."""
        images = self.epochs * self.steps_per_epoch * self.batch_size
        times = f"{self.runs} trainings (seeds) of " if self.runs > 1 else ""
        return (f"trusted training: {self.images_per_second:.1f} images/s measured on "
                f"{self.host}; {times}{self.epochs} epochs, {images:,} training images: about "
                f"{duration(self.projected_seconds)} in all")


# Hears a training's projection once its first steps are timed (printing it, recording it).
OnProjection = Callable[[Projection], None]


def project(images_per_second: float, timed_steps: int, epochs: int, steps_per_epoch: int,
            batch_size: int, forward_images: int, setup_seconds: float,
            host: str) -> Projection:
    """The whole training's duration from the speed of its first steps."""
    per_epoch = (steps_per_epoch * batch_size
                 + forward_images * FORWARD_SHARE) / max(images_per_second, 1e-9)
    return Projection(round(images_per_second, 2), timed_steps, epochs, steps_per_epoch,
                      batch_size, forward_images, round(setup_seconds, 2),
                      round(setup_seconds + epochs * per_epoch, 1), host)


def exceeds(projection: Projection, max_minutes: float | None) -> bool:
    return max_minutes is not None and projection.projected_seconds > max_minutes * 60


def too_slow_message(projection: Projection, max_minutes: float) -> str:
    return (f"Trusted training would take about {duration(projection.projected_seconds)} on "
            f"this machine ({projection.images_per_second:.1f} images/s measured on "
            f"{projection.host}), more than the {max_minutes:.3g} minutes allowed (by "
            f"--max-minutes, or by what is left of an autograder's time limit). Grade on a "
            f"faster machine (a GPU, or a CPU with AVX-512 BF16), with a shorter profile, or "
            f"with more time.")


def duration(seconds: float) -> str:
    """45 s, 3 min 20 s, 1 h 05 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def cpuinfo_field(key: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first CPU's ``key`` line of /proc/cpuinfo ("model name", "flags"), or None where it
    is missing or the file is unreadable. The one reader of that file."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.split(":", 1)[0].strip() == key:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name, or "unknown CPU"."""
    return cpuinfo_field("model name", cpuinfo) or "unknown CPU"


def usable_cores() -> int:
    """The cores this process may run on (all of them where the OS cannot say, as on macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cpu_description(flags: set[str], cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """"AMD EPYC, 2 cores, avx2" — the model, the cores this process may use, the flags that
    matter for training speed."""
    cores = usable_cores()
    shown = [flag for flag in SPEED_FLAGS if flag in flags] or ["no AVX2"]
    return f"{cpu_model(cpuinfo)}, {cores} cores, {' '.join(shown)}"


def record(entry: dict[str, object]) -> None:
    """Append ``entry`` as one line to the ledger file, when FLOWERS_GRADER_LEDGER names one.
    One short ``write`` in append mode, so processes training side by side do not interleave."""
    path = os.environ.get(LEDGER_VARIABLE)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(json.dumps(entry, sort_keys=True) + "\n")
