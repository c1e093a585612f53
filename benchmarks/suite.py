"""The benchmark suite: every measurement side by side in one run, on one data set.

Each step runs the real commands (``grade notebook``, ``grade batch``, nbclient) or a probe in a
fresh process, so no step inherits another's TensorFlow state, threads or caches, and records its
numbers in :class:`Record` as soon as it has them (``--json`` is rewritten after every step, so an
interrupted run keeps what it measured).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from benchmarks.probes import ROOT, spawn

EXERCISE = ROOT / "exercises" / "flowers-cnn"
REFERENCE = ROOT / "reference" / "flowers-cnn.ipynb"
PHOTOS = ROOT.parent / "shared" / "flowers-photos"

# The small size's training profile: the full profile's recipe (augmentation, label smoothing,
# cosine), three epochs.
SMALL_PROFILE = """
[profiles.bench]
epochs = 3
batch_size = 32
learning_rate = 0.001
warmup_epochs = 0
schedule = "cosine"
augment = true
label_smoothing = 0.1
max_train_images = 0
max_val_images = 0
validate_every_epoch = true
seed = 42
"""


@dataclass(frozen=True)
class Size:
    name: str
    profile: str          # training profile (of the exercise file, or "bench" above)
    seeds: int            # trainings per precision for the accuracy comparison
    probe_steps: int      # timed training steps of each throughput probe
    synthetic_images: int  # 0: the real photos


OPS_STEPS = 8  # trusted steps profiled with ONEDNN_VERBOSE=1
SMALL = Size("small", "bench", 2, 12, 480)
FULL = Size("full", "full", 2, 40, 0)


@dataclass
class Record:
    """What the run measured: the headline ratios and every number they came from."""
    size: str
    ratios: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, **self.ratios, "details": self.details,
                "errors": self.errors, "machine": machine()}


def machine() -> dict[str, Any]:
    from grader.cost import cpuinfo_field
    from grader.training.device import BF16_CPU_FLAGS, cpu_flags

    return {"cpu": cpuinfo_field("model name") or platform.processor(),
            "cores": len(os.sched_getaffinity(0)),
            "bf16_flags": sorted(cpu_flags() & BF16_CPU_FLAGS), "python": platform.python_version()}


class Suite:
    STEPS = ("notebook", "grading", "batch", "throughput", "accuracy", "check")

    def __init__(self, size: Size, work: Path, data: Path | None, seeds: int | None,
                 say: Callable[[str], None], save: Callable[[Record], None],
                 steps: tuple[str, ...] = STEPS) -> None:
        self.size, self.work, self.say, self.save = size, work, say, save
        self.steps = steps
        self.seeds = seeds or size.seeds
        self.record = Record(size.name)
        self.exercise = work / "exercise"
        self.data = data
        self.cache = work / "cache"
        self.grade = [sys.executable, "-m", "grader"]

    # ---------------------------------------------------------------- steps

    def run(self) -> Record:
        steps = [("setup", self.setup)] + [(name, getattr(self, name)) for name in self.STEPS
                                           if name in self.steps]
        for name, step in steps:
            started = time.perf_counter()
            self.say(f"[{time.strftime('%H:%M:%S')}] {name} ...")
            try:
                step()
            except Exception as exc:  # one failed measurement must not lose the others
                message = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(exc).__name__}: {exc}")
                self.record.errors[name] = message[-600:]
                self.say(f"  {name} failed: {message[-600:]}")
                if name == "setup":
                    break
            self.record.details.setdefault("step_seconds", {})[name] = round(
                time.perf_counter() - started, 1)
            self.save(self.record)
        return self.record

    def setup(self) -> None:
        """The exercise (with the small profile), the data, and the reference's config."""
        shutil.copytree(EXERCISE, self.exercise)
        toml = self.exercise / "exercise.toml"
        text = toml.read_text().replace('reference = "../../reference/flowers-cnn.ipynb"',
                                        f'reference = "{REFERENCE}"')
        toml.write_text(text + SMALL_PROFILE)
        if self.data is None:
            self.data = self.work / "data"
            if self.size.synthetic_images:
                command = ["data", "synth", "--images", str(self.size.synthetic_images),
                           "--seed", "1"]
            else:
                command = ["data", "import", str(PHOTOS)]
            _run(self.grade + command + ["--out", str(self.data)])
        self.record.details["data"] = {
            "folder": str(self.data), "shards": len(list(self.data.glob("*.tfrec"))),
            "images": sum(int(p.stem.rsplit("-", 1)[1]) for p in self.data.glob("*.tfrec")),
            "profile": self.size.profile}

    def notebook(self) -> None:
        """(a)'s baseline: the reference notebook as written, in plain nbclient, on the same
        shards and the same epoch count as the grader's profile."""
        epochs = self._profile()["epochs"]
        seconds = execute_as_written(REFERENCE, self.data, epochs, self.work / "as-written")
        self.record.details["notebook_as_written"] = {"seconds": round(seconds, 1),
                                                      "epochs": epochs}

    def grading(self) -> None:
        out = self.work / "graded"
        started = time.perf_counter()
        _run(self.grade + ["notebook", str(REFERENCE), "--data", str(self.data), "--out",
                           str(out), "--exercise", str(self.exercise), "--profile",
                           self.size.profile], codes=(0, 1))
        wall = time.perf_counter() - started
        result = json.loads((out / "result.json").read_text())
        training = result["training"]
        timings = result["timings"]
        self.record.details["grading"] = {
            "seconds": round(wall, 1), "status": result["status"],
            "accuracy": result["accuracy"], "precision": training["precision"],
            "deterministic": training["deterministic"], "training_seconds": training["seconds"],
            "validation_seconds": training.get("validation_seconds"),
            "images_per_second": training["images_per_second"], "timings": timings,
            "breakdown": {
                "kernel: start, run the notebook, extract": timings.get("execute"),
                "validate, rebuild, rules": round(timings.get("validate", 0)
                                                  + timings.get("rebuild", 0), 2),
                "decode the shards, build the model": round(timings["train"]
                                                            - training["seconds"], 2),
                "trusted training (fit + validation)": training["seconds"],
                "process start, imports, result and report": round(wall - timings["total"], 2)}}
        baseline = self.record.details.get("notebook_as_written", {}).get("seconds")
        self.record.ratios["grading_vs_notebook"] = _ratio(wall, baseline)
        self.record.ratios["overhead_share"] = round((wall - training["seconds"]) / wall, 4)

    def batch(self) -> None:
        """(d): N submissions with duplicates (an identical copy, a renamed model, another
        epoch count: one architecture) in one ``grade batch``, against N single gradings."""
        folder = self.work / "class"
        folder.mkdir()
        text = REFERENCE.read_text()
        variants = {"ana": text, "ben": text,
                    "cai": text.replace("flowers_reference", "my_flowers"),
                    "dee": text.replace("EPOCHS = 20", "EPOCHS = 60")}
        assert len(set(variants.values())) == 3, "the reference notebook changed: update"
        for student, content in variants.items():
            (folder / f"{student}.ipynb").write_text(content)
        out = self.work / "batch"
        started = time.perf_counter()
        _run(self.grade + ["batch", str(folder), "--data", str(self.data), "--out", str(out),
                           "--exercise", str(self.exercise), "--profile", self.size.profile,
                           "--cache", str(self.cache)])
        wall = time.perf_counter() - started
        summary = json.loads((out / "batch.json").read_text())
        single = self.record.details.get("grading", {}).get("seconds")
        self.record.details["batch"] = {"students": len(variants), "seconds": round(wall, 1),
                                        "work": summary.get("work")}
        self.record.ratios["batch_vs_serial"] = _ratio(wall, single and single * len(variants))

    def check(self) -> None:
        """`grade check` (what a student runs before submitting) against a `quick` grading of
        the same notebook on the same shards, one after the other."""
        timed = {}
        for name, command, codes in (
                ("check", ["check", str(REFERENCE), "--data", str(self.data)], (0,)),
                ("quick_grading", ["notebook", str(REFERENCE), "--data", str(self.data),
                                   "--out", str(self.work / "quick"), "--profile", "quick"],
                 (0, 1))):
            started = time.perf_counter()
            _run(self.grade + command + ["--exercise", str(self.exercise)], codes=codes)
            timed[name] = round(time.perf_counter() - started, 1)
        self.record.details["check"] = {"seconds": timed["check"],
                                        "quick_grading_seconds": timed["quick_grading"]}
        self.record.ratios["check_vs_quick_grading"] = _ratio(timed["check"],
                                                              timed["quick_grading"])

    def throughput(self) -> None:
        """(b): images/s of the trusted step against a plain float32 fit of the same model and
        against the matmul rate (measured right before it); the input pipeline alone; what
        determinism costs."""
        common = {"config": str(self._config_file()), "data": str(self.data),
                  "cache": str(self.cache), "exercise": str(self.exercise),
                  "profile": self.size.profile, "steps": self.size.probe_steps}
        runs = {  # the trusted step first, right after the matmul rate it is compared with
            "trusted": {"plain": False, "precision": "auto", "deterministic": True},
            "plain_float32_fit": {"plain": True},
            "trusted_float32": {"plain": False, "precision": "float32", "deterministic": True},
            "trusted_not_deterministic": {"plain": False, "precision": "auto",
                                          "deterministic": False},
        }
        # This shared machine's speed changes within minutes; measured an hour apart (at the
        # start of the run) the two sides of (b) came from different machines, in effect.
        self.record.details["gemm_gflops"] = probe({"kind": "gemm"})["gflops"]
        found = {}
        for name, extra in runs.items():
            found[name] = probe({"kind": "throughput", **common, **extra})
            self.say(f"  {name}: {found[name]['images_per_second']} images/s")
        found["input_pipeline"] = probe({"kind": "pipeline", **common,
                                         "steps": 4 * self.size.probe_steps})
        found["convolutions"] = probe({"kind": "layers", **common,
                                       "precision": found["trusted"]["precision"]})
        found["onednn"] = probe({"kind": "ops", **common, "steps": OPS_STEPS,
                                 "precision": found["trusted"]["precision"]})
        step_ms = 1000 * found["trusted"]["batch_size"] / found["trusted"]["images_per_second"]
        found["onednn"]["step_ms"] = round(step_ms, 1)
        found["onednn"]["share_of_step"] = _ratio(found["onednn"]["primitives_ms_per_step"],
                                                  step_ms)
        gemm = self.record.details.get("gemm_gflops", {})
        flops = 3 * found["trusted"]["forward_flops"]
        achieved = found["trusted"]["images_per_second"] * flops / 1e9
        self.record.details["throughput"] = {
            **found, "training_flops_per_image": flops, "trusted_gflops": round(achieved, 1),
            "trusted_vs_plain": _ratio(found["trusted"]["images_per_second"],
                                       found["plain_float32_fit"]["images_per_second"]),
            "trusted_vs_float32_gemm": _ratio(achieved, gemm.get("float32")),
            "pipeline_vs_trusted": _ratio(found["input_pipeline"]["images_per_second"],
                                          found["trusted"]["images_per_second"]),
            "trusted_vs_convolutions": _ratio(
                found["trusted"]["images_per_second"],
                found["convolutions"]["conv_only_images_per_second"]),
            "determinism_cost": _ratio(found["trusted_not_deterministic"]["images_per_second"],
                                       found["trusted"]["images_per_second"])}
        self.record.ratios["training_vs_bf16_gemm"] = _ratio(achieved, gemm.get("bfloat16"))

    def accuracy(self) -> None:
        """bf16 (the policy auto chooses here) against float32, ``seeds`` trainings each, on
        the run's data. The grading run above is the automatic policy's first seed (same
        architecture, data, profile, seed 42 and determinism), so it is not trained twice."""
        from grader.batch.tasks import run_task
        from grader.exercise import load_exercise
        from grader.training.job import TrainingJob

        exercise = load_exercise(self.exercise)
        profile = exercise.profile(self.size.profile)
        config = self.config
        runs: dict[str, list[dict[str, Any]]] = {"auto": [], "float32": []}
        grading = self.record.details.get("grading")
        if grading:
            runs["auto"].append({"seed": profile.seed, "accuracy": grading["accuracy"],
                                 "precision": grading["precision"], "from": "grading run"})
        for precision in runs:
            for seed in range(profile.seed, profile.seed + self.seeds):
                if any(r["seed"] == seed for r in runs[precision]):
                    continue
                job = TrainingJob(self.data.resolve(), None, exercise,
                                  replace(profile, seed=seed), precision, self.cache, True)
                answer = run_task("train", (config, job), 6 * 3600)
                if "failed" in answer:
                    raise RuntimeError(f"{precision} seed {seed}: {answer['failed']}")
                runs[precision].append({"seed": seed, "accuracy": answer["accuracy"],
                                        "precision": answer["training"]["precision"],
                                        "seconds": answer["seconds"]})
                self.say(f"  {precision} seed {seed}: {answer['accuracy']:.3f}")
        means = {k: sum(r["accuracy"] for r in v) / len(v) for k, v in runs.items()}
        self.record.details["accuracy"] = {"runs": runs, "means": means}
        self.record.ratios["bf16_vs_f32_accuracy_gap"] = round(means["auto"] - means["float32"],
                                                               4)

    # ---------------------------------------------------------------- helpers

    def _profile(self) -> dict[str, Any]:
        from grader.exercise import load_exercise
        return vars(load_exercise(self.exercise).profile(self.size.profile))

    @functools.cached_property
    def config(self) -> dict[str, Any]:
        """The reference's checked config, from the batch's inspection answers."""
        for answer in sorted((self.cache / "inspect").glob("*.json")):
            config = json.loads(answer.read_text()).get("config")
            if config:
                return config
        raise RuntimeError("the batch inspected no model")

    def _config_file(self) -> Path:
        path = self.work / "config.json"
        path.write_text(json.dumps(self.config))
        return path


def execute_as_written(notebook: Path, data: Path, epochs: int, work: Path) -> float:
    """Wall time of running ``notebook`` with nbclient as an instructor would without the
    grader: its own code and precision, after papermill-style parameters (the data folder and
    the epoch count) injected after its `parameters` cell."""
    import nbformat
    from nbclient import NotebookClient

    work.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])),
              -1)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(
        f"GCS_PATTERN = {str(data.resolve() / '*.tfrec')!r}\nEPOCHS = {epochs}"))
    client = NotebookClient(nb, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    nbformat.write(nb, work / "executed.ipynb")
    return seconds


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """A probe's answer: the JSON on the last line of its output."""
    return json.loads(spawn(spec).strip().splitlines()[-1])


def _run(command: list[str], codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode not in codes:
        tail = (done.stderr or done.stdout)[-1500:]
        raise RuntimeError(f"{' '.join(command[2:5])} … exited {done.returncode}: {tail}")
    return done


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None
