"""``python -m benchmarks [--full] [--json FILE] [--data DIR] [--seeds K] [--steps A,B]
[--work DIR]``

Runs the suite (benchmarks/suite.py) and prints a table of ratios measured side by side in this
one run. The default size uses a small synthetic data set and a 3-epoch profile, so it finishes
in minutes; ``--full`` uses the real photos (``../shared/flowers-photos``, or ``--data`` shards
already imported) and the exercise's ``full`` profile, and takes about 1 h 30 min on
2 cores. Exit code 1 when a step failed (the table shows the rest).

``python -m benchmarks --accelerator --data SHARDS ...`` is the GPU or TPU benchmark instead
(benchmarks/accelerator.py: Keras 3 on JAX, no TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.suite import FULL, SMALL, Record, Suite

TARGETS = {"grading_vs_notebook": ("≤ 0.40", lambda v: v <= 0.4),
           "overhead_share": ("≤ 5%", lambda v: v <= 0.05),
           "training_vs_bf16_gemm": ("≥ 0.70", lambda v: v >= 0.7),
           "bf16_vs_f32_accuracy_gap": ("|gap| ≤ 2 pts", lambda v: abs(v) <= 0.02),
           "check_vs_quick_grading": ("≤ 0.25", lambda v: v <= 0.25)}
# Targets that hold at every size (the others are for --full).
ANY_SIZE = {"check_vs_quick_grading"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--accelerator" in argv:   # its own options (benchmarks/accelerator.py)
        from benchmarks.accelerator import main as accelerator
        return accelerator([arg for arg in argv if arg != "--accelerator"])
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(
        "\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="real photos, the full profile")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the table here")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="shards to use instead of making them (synthetic or imported)")
    parser.add_argument("--seeds", type=int, metavar="K",
                        help="trainings per precision for the accuracy gap [default: 2]")
    parser.add_argument("--steps", default=",".join(Suite.STEPS), metavar="A,B",
                        help=f"the steps to run, after the set-up [default: all: "
                             f"{','.join(Suite.STEPS)}]")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="keep the run's files here [default: a temporary folder, removed]")
    args = parser.parse_args(argv)
    if args.data is not None and not any(args.data.glob("*.tfrec")):
        parser.error(f"--data {args.data}: no .tfrec shards there")
    steps = tuple(step for step in args.steps.split(",") if step)
    if not steps or set(steps) - set(Suite.STEPS):
        parser.error(f"--steps {args.steps}: choose among {', '.join(Suite.STEPS)}")
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work}: not empty")

    work = args.work or Path(tempfile.mkdtemp(prefix="flowers-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    def save(record: Record) -> None:
        if args.json:
            temporary = args.json.with_name(args.json.name + ".partial")
            temporary.write_text(json.dumps(record.as_dict(), indent=2) + "\n")
            os.replace(temporary, args.json)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        record = Suite(FULL if args.full else SMALL, work, args.data, args.seeds, say,
                       save, steps).run()
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(record))
    return 1 if record.errors else 0


def table(record: Record) -> str:
    """The ratios, their targets, and the numbers each came from."""
    d, r = record.details, record.ratios
    grading, batch = d.get("grading", {}), d.get("batch", {})
    throughput, accuracy = d.get("throughput", {}), d.get("accuracy", {})
    notebook, gemm = d.get("notebook_as_written", {}), d.get("gemm_gflops", {})

    def ips(name: str) -> str:
        return f"{throughput.get(name, {}).get('images_per_second', '?')} img/s"

    rows = [
        ("(a) grading / notebook as written", r.get("grading_vs_notebook"),
         "grading_vs_notebook",
         f"{grading.get('seconds', '?')} s vs {notebook.get('seconds', '?')} s, "
         f"{notebook.get('epochs', '?')} epochs each"),
        ("(b) trusted training / bf16 matmul", r.get("training_vs_bf16_gemm"),
         "training_vs_bf16_gemm",
         f"{ips('trusted')} x {throughput.get('training_flops_per_image', 0) / 1e9:.2f} GFLOP = "
         f"{throughput.get('trusted_gflops', '?')} vs {gemm.get('bfloat16', '?')} GFLOP/s"),
        ("    trusted / float32 matmul", throughput.get("trusted_vs_float32_gemm"), None,
         f"float32 matmul {gemm.get('float32', '?')} GFLOP/s"),
        ("    trusted / plain float32 fit", throughput.get("trusted_vs_plain"), None,
         f"{ips('trusted')} vs {ips('plain_float32_fit')}"),
        ("    trusted in float32 / plain fit", _div(throughput, "trusted_float32",
                                                    "plain_float32_fit"), None,
         f"{ips('trusted_float32')}: augmentation and schedule, same precision"),
        ("    trusted / its convolutions alone", throughput.get("trusted_vs_convolutions"),
         None, f"{(throughput.get('convolutions') or {}).get('conv_only_images_per_second', '?')}"
               f" img/s if training were only its Conv2D layers (profile below)"),
        ("    input pipeline / trusted training", throughput.get("pipeline_vs_trusted"), None,
         f"{ips('input_pipeline')} (uint8 cache, augmented)"),
        ("    not deterministic / deterministic", throughput.get("determinism_cost"), None,
         f"{ips('trusted_not_deterministic')} vs {ips('trusted')}"),
        ("(c) overhead share of grading", r.get("overhead_share"), "overhead_share",
         f"{grading.get('seconds', '?')} s, of which training "
         f"{grading.get('training_seconds', '?')} s"),
        ("(d) batch / N x one submission", r.get("batch_vs_serial"), None,
         f"{batch.get('students', '?')} students in {batch.get('seconds', '?')} s; "
         f"{(batch.get('work') or {}).get('trainings run', '?')} training(s)"),
        ("accuracy: bf16 - float32", r.get("bf16_vs_f32_accuracy_gap"),
         "bf16_vs_f32_accuracy_gap", _accuracies(accuracy)),
        ("grade check / quick grading", r.get("check_vs_quick_grading"),
         "check_vs_quick_grading",
         f"{d.get('check', {}).get('seconds', '?')} s vs "
         f"{d.get('check', {}).get('quick_grading_seconds', '?')} s, the reference notebook"),
    ]
    lines = [f"benchmarks ({record.size} size; {d.get('data', {}).get('images', '?')} images, "
             f"profile {d.get('data', {}).get('profile', '?')})",
             f"{'measure':38} {'value':>8}  {'target':14} from"]
    if record.size != "full":
        lines.insert(1, "(the targets apply to --full; this size checks that every step runs)")
    for name, value, key, source in rows:
        if value is None and "?" in source:   # a step this run left out (--steps)
            continue
        target, verdict = "", ""
        if key in TARGETS and value is not None and (record.size == "full"
                                                      or key in ANY_SIZE):
            target = TARGETS[key][0]
            verdict = " ok" if TARGETS[key][1](value) else " MISSED"
        shown = "—" if value is None else f"{value:.3f}"
        lines.append(f"{name:38} {shown:>8}  {target + verdict:14} {source}")
    breakdown = grading.get("breakdown") or {}
    if breakdown:
        lines.append("grading wall time, by part:")
        lines += [f"    {part:52} {seconds} s" for part, seconds in breakdown.items()]
    convolutions = (throughput.get("convolutions") or {}).get("layers") or []
    if convolutions:
        lines.append(f"each Conv2D alone, forward + backward, batch "
                     f"{throughput['trusted'].get('batch_size')}, "
                     f"{throughput['convolutions']['precision']}:")
        lines += [f"    {row['layer']:28} {row['ms_per_batch']:>8} ms  {row['gflops']:>6} GFLOP/s"
                  for row in convolutions]
    onednn = throughput.get("onednn") or {}
    if onednn.get("by_kind"):
        lines.append(f"oneDNN primitives in a trusted step (ONEDNN_VERBOSE=1, {onednn['steps']} "
                     f"steps): {onednn['primitives_ms_per_step']} ms of "
                     f"{onednn.get('step_ms', '?')} ms ({_percent(onednn.get('share_of_step'))}); "
                     f"the rest is TensorFlow's own kernels and the framework")
        lines += [f"    {row['primitive']:40} {row['ms_per_step']:>8} ms  "
                  f"{row['calls_per_step']:>3} calls" for row in onednn["by_kind"][:8]]
    lines += [f"FAILED {name}: {message}" for name, message in record.errors.items()]
    return "\n".join(lines)


def _div(found: dict, a: str, b: str) -> float | None:
    x = found.get(a, {}).get("images_per_second")
    y = found.get(b, {}).get("images_per_second")
    return round(x / y, 4) if x and y else None


def _percent(share: float | None) -> str:
    return "?" if share is None else f"{share:.0%}"


def _accuracies(accuracy: dict) -> str:
    runs = accuracy.get("runs") or {}
    return "; ".join(f"{name} " + ", ".join(f"{run['accuracy']:.3f}" for run in found)
                     for name, found in runs.items()) or "?"


if __name__ == "__main__":
    sys.exit(main())
