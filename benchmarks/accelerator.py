"""``python -m benchmarks --accelerator --data SHARDS [--profile full] [--seeds 3]
[--together 1,2] [--architectures FILE ...] [--json FILE] [--work DIR]``

Trusted training on Keras 3 + JAX, as a GPU or TPU grades: the reference architecture
(benchmarks/configs/reference.json) once per seed, then a class of eight architectures
(benchmarks/architectures.py) one at a time and N at a time on the same device. Every training
is a fresh process (grader.training.job, KERAS_BACKEND=jax), so its wall time includes the
process start, JAX's start, the compilation and the evaluation; the data is decoded once
beforehand (grader.training.records: no TensorFlow anywhere in this benchmark). The student's
kernel is not part of it: it needs TensorFlow, and runs on the CPU anyway.

It runs from a checkout, with JAX, NumPy, Pillow and Keras (and Keras's namex and optree)
installed: docs/accelerators.md says how to carry them to a machine without network. The
targets (issue: grading in seconds) apply to a GPU or TPU with the `full` profile; on a CPU,
with a small profile, the run checks that every part works.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

TARGETS = {"reference_wall": ("≤ 15 s", lambda v: v <= 15),
           "images_per_second": ("≥ 5,000", lambda v: v >= 5000),
           "class_wall": ("≤ 120 s", lambda v: v <= 120)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --accelerator",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("--data", type=Path, required=True, metavar="DIR",
                        help="flower shards (e.g. from `grade data import`)")
    parser.add_argument("--profile", default="full", help="training profile [default: full]")
    parser.add_argument("--seeds", type=int, default=3, metavar="K",
                        help="trainings of the reference, seeds 42, 43, ... [default: 3]")
    parser.add_argument("--together", default="1,2", metavar="N,M",
                        help="trainings at once on the device for the class [default: 1,2]")
    parser.add_argument("--architectures", type=Path, nargs="*", metavar="FILE",
                        help="Keras JSON configs for the class instead of the reference and "
                             "the seven of benchmarks/architectures.py")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers here")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="keep the decoded data here [default: a temporary folder]")
    args = parser.parse_args(argv)
    if not any(args.data.glob("*.tfrec")):
        parser.error(f"--data {args.data}: no .tfrec shards there")
    together = [int(n) for n in args.together.split(",") if n]
    if args.seeds < 1 or not together or min(together) < 1:
        parser.error("--seeds and --together take positive numbers")

    os.environ["KERAS_BACKEND"] = "jax"   # this process decodes and plans; each training runs
    work = args.work or Path(tempfile.mkdtemp(prefix="flowers-accelerator-"))
    try:
        record = run(args, together, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(table(record))
    return 1 if record["errors"] else 0


def run(args: argparse.Namespace, together: list[int], work: Path) -> dict[str, Any]:
    from grader.errors import GradingError
    from grader.exercise import load_exercise
    from grader.training import datacache
    from grader.training.job import TrainingJob, in_own_process

    exercise = load_exercise()
    profile = exercise.profile(args.profile)
    cache = work / "cache"
    job = TrainingJob(args.data.resolve(), None, exercise, profile, "auto", cache,
                      backend="jax")
    started = time.perf_counter()
    images = sum(len(split.labels) for source in job.sources()
                 for split in datacache.load(source, cache).splits.values())
    record: dict[str, Any] = {"profile": profile.name, "images": images,
                              "decode_seconds": round(time.perf_counter() - started, 1),
                              "reference": [], "class": {}, "errors": []}

    def train(name: str, config: dict[str, Any], seed: int) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            trained = in_own_process(config, replace(job, profile=replace(profile, seed=seed)))
        except GradingError as exc:
            record["errors"].append(f"{name} (seed {seed}): {exc.message}")
            return {"name": name, "seed": seed, "failed": exc.message}
        summary = trained.training
        return {"name": name, "seed": seed, "wall_seconds": round(time.perf_counter() - began, 2),
                "fit_seconds": summary.seconds, "images_per_second": summary.images_per_second,
                "compile_seconds": (summary.projection or {}).get("setup_seconds"),
                "accuracy": summary.val_accuracy, "device": summary.device,
                "device_kind": summary.device_kind, "precision": summary.precision,
                "epochs": summary.epochs,
                "train_images": summary.train_images}

    architectures = _architectures(args.architectures)
    reference_name, reference_config = next(iter(architectures.items()))
    for seed in range(profile.seed, profile.seed + args.seeds):
        record["reference"].append(train(reference_name, reference_config, seed))
        _say(record["reference"][-1])
    for count in together:
        began = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            runs = list(pool.map(lambda item: train(*item, profile.seed),
                                 architectures.items()))
        for one in runs:
            _say(one, f"class, {count} at a time")
        record["class"][str(count)] = {"wall_seconds": round(time.perf_counter() - began, 1),
                                       "runs": runs}
    return record


def _architectures(files: list[Path] | None) -> dict[str, dict[str, Any]]:
    if files:
        return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in files}
    from benchmarks.architectures import others, reference
    return {"reference": reference(), **others()}


def _say(run: dict[str, Any], what: str = "reference") -> None:
    shown = run.get("failed") or (f"{run['wall_seconds']} s wall, {run['images_per_second']} "
                                  f"images/s, accuracy {run['accuracy']:.3f}")
    print(f"{what}: {run['name']} seed {run['seed']}: {shown}", file=sys.stderr, flush=True)


def table(record: dict[str, Any]) -> str:
    """The numbers, against the targets where a GPU or TPU ran the full profile."""
    done = [run for run in record["reference"] if "failed" not in run]
    first = done[0] if done else {}
    device = f"{first.get('device', '?')}, {first.get('precision', '?')}"
    judged = first.get("device_kind") in ("gpu", "tpu") and record["profile"] == "full"

    def verdict(key: str, value: float | None) -> str:
        if value is None or not judged:
            return ""
        target, passes = TARGETS[key]
        return f"{target} {'ok' if passes(value) else 'MISSED'}"

    lines = [f"accelerator benchmark: {device}; profile {record['profile']}, "
             f"{record['images']:,} images decoded in {record['decode_seconds']} s "
             f"(no TensorFlow)"]
    if not judged:
        lines.append("(the targets apply to a GPU or TPU with the full profile; this run checks "
                     "that every part works)")
    accuracies = [run["accuracy"] for run in done]
    walls = [run["wall_seconds"] for run in done]
    speeds = [run["images_per_second"] for run in done]
    compiles = [run["compile_seconds"] for run in done if run["compile_seconds"] is not None]
    if done:
        spread = statistics.pstdev(accuracies) if len(accuracies) > 1 else 0.0
        lines += [
            f"{'reference, wall per training':40} {max(walls):>9.1f} s   "
            f"{verdict('reference_wall', max(walls)):14} worst of {len(walls)}, process start, "
            f"compilation and evaluation included",
            f"{'reference, images/s (augmented)':40} {min(speeds):>11,.0f}   "
            f"{verdict('images_per_second', min(speeds)):14} slowest of {len(speeds)}",
            f"{'reference, compilation (first step)':40} "
            f"{max(compiles) if compiles else float('nan'):>9.1f} s",
            f"{'reference, accuracy':40} {statistics.mean(accuracies):>11.3f}   "
            f"{'':14} mean of {len(accuracies)} seed(s), spread ±{spread:.3f}: "
            + ", ".join(f"{a:.3f}" for a in accuracies)]
    for count, one in record["class"].items():
        what = f"class of {len(one['runs'])}, {count} at a time"
        lines.append(f"{what:40} "
                     f"{one['wall_seconds']:>9.1f} s   "
                     f"{verdict('class_wall', one['wall_seconds']):14} "
                     + ", ".join(f"{run['name']} {run.get('wall_seconds', 'failed')}"
                                 for run in one["runs"]))
    lines += [f"error: {error}" for error in record["errors"]]
    return "\n".join(lines)
