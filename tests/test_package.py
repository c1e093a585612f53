"""The package as a course installs it. A wheel built from the checkout holds the grader, the
reports, the in-kernel code, the shipped exercise (exercise file and student notebook) and no
reference solution. Installed into a new virtual environment in a temporary folder, `grade`
works from there, away from the checkout: help, synthetic data, a `smoke` grading of the
student notebook in the sandbox, and a batch on a Dask worker started from that environment
(the README's cluster recipe).

The new environment's dependencies are hard links to the test environment's files (downloading
TensorFlow again would take minutes of CI): the checkout's editable install is uninstalled from
it before the wheel goes in, and the test checks that `grader` then comes from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import grader
from conftest import (REFERENCE_NOTEBOOK, ROOT, STUDENT_NOTEBOOK, Ahead, ahead_job,
                      leftover_processes)

NOT_SOURCES = {".venv", ".git", "build", "dist", "demo-output", "__pycache__", ".pytest_cache",
               "node_modules"}


# Not the package's: this machine's pip configuration names a find-links folder that is absent.
MACHINE_NOTE = re.compile(r"WARNING: Location 'file://\S+' is ignored")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Without this shell's PYTHONPATH and virtual environment, and without
    PYTHONDONTWRITEBYTECODE (set on this machine; setuptools then warns that it skips the
    byte-compiling a normal install does)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def _run(*command: str | Path, cwd: Path, timeout: int = 900,
         extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env(extra_env))


@ahead_job("wheel", "wheel")
def wheel(ahead: Ahead, work: Path) -> tuple[Path, str]:
    """The wheel, built from a copy of the sources (a build writes into its source tree), and
    the build's log."""
    sources = work / "sources"
    shutil.copytree(ROOT, sources, ignore=lambda folder, names: [
        name for name in names if name in NOT_SOURCES or name.endswith(".egg-info")])
    built = ahead.run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w",
                      work / "dist", sources, cwd=work, env=_env())
    assert built.returncode == 0, built.stdout[-3000:]
    found = list((work / "dist").glob("flowers_grader-*.whl"))
    assert len(found) == 1
    return found[0], built.stdout


def test_the_wheel_ships_the_grader_and_the_student_notebook_and_never_the_solution(
        wheel) -> None:
    path, _ = wheel
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        contents = {name: archive.read(name) for name in names}
    for needed in ("grader/kernel/inkernel/runtime.py", "grader/kernel/inkernel/prelude.py",
                   "grader/kernel/runtime.toml", "grader/exercises/flowers-cnn/exercise.toml",
                   "grader/exercises/flowers-cnn/flowers-cnn.ipynb",
                   "reports/templates/report.html.j2", "reports/templates/dashboard.html.j2",
                   "grader/gradescope/setup.sh", "grader/gradescope/run_autograder"):
        assert needed in names, needed
    notebooks = sorted(name for name in names if name.endswith(".ipynb"))
    assert notebooks == ["grader/exercises/flowers-cnn/flowers-cnn.ipynb"]
    assert contents[notebooks[0]] == STUDENT_NOTEBOOK.read_bytes()
    solution = REFERENCE_NOTEBOOK.read_bytes()
    assert not any(data == solution for data in contents.values())
    assert not any("reference" in name.split("/")[0] for name in names)
    metadata = next(contents[n] for n in names if n.endswith(".dist-info/METADATA")).decode()
    assert f"\nVersion: {grader.__version__}\n" in metadata
    assert "\nRequires-Python: >=3.11\n" in metadata


def test_the_build_prints_no_warning(wheel) -> None:
    _, log = wheel
    warnings = [line for line in log.splitlines()
                if re.search(r"warn", line, re.IGNORECASE) and not MACHINE_NOTE.search(line)]
    assert warnings == []


@ahead_job("installed", "installed", needs=("wheel",))
def installed(ahead: Ahead, home: Path) -> Path:
    """A new environment (its dependencies hard-linked from this one) with the wheel in it."""
    path, _ = ahead.get("wheel")
    venv = home / "venv"
    copied = ahead.run("cp", "-al", sys.prefix, venv, cwd=home)
    assert copied.returncode == 0, copied.stdout
    for command in (("uninstall", "-y", "flowers-grader"), ("install", "--no-deps", path)):
        done = ahead.run(venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check",
                         "-q", *command, cwd=home, env=_env())
        assert done.returncode == 0, done.stdout[-2000:]
    return venv


def test_grade_runs_from_the_installed_wheel(installed: Path, small_data: Path) -> None:
    home, grade = installed.parent, installed / "bin" / "grade"
    where = _run(installed / "bin" / "python", "-c", "import grader, grader.exercise as e; "
                 "print(grader.__file__); print(e.load_exercise().notebook)", cwd=home)
    assert where.returncode == 0, where.stderr
    module, notebook = (Path(line) for line in where.stdout.split())
    assert installed in module.parents and installed in notebook.parents
    assert ROOT not in module.parents
    helped = _run(grade, "--help", cwd=home)
    assert helped.returncode == 0 and "grade" in helped.stdout
    synth = _run(grade, "data", "synth", "--out", home / "data", "--images", "160", cwd=home)
    assert synth.returncode == 0, synth.stderr[-2000:]
    graded = _run(grade, "notebook", notebook, "--data", home / "data", "--out", home / "out",
                  "--profile", "smoke", "--require-sandbox", cwd=home)
    result = json.loads((home / "out" / "result.json").read_text())
    assert result["status"] == "graded", result["error"]
    assert graded.returncode == 1 and not result["passed"]   # one epoch: below the target
    assert result["isolation"] == "bubblewrap"
    assert result["training"]["val_images"] > 0
    refused = _run(grade, "reference", "--data", home / "data", "--out", home / "ref", cwd=home)
    assert refused.returncode == 2 and "does not ship with the installed package" in \
        refused.stderr, refused.stderr[-2000:]


def test_a_dask_worker_installed_from_the_wheel_grades_a_batch(installed: Path,
                                                               small_data: Path) -> None:
    """README, "Grading on a cluster": a scheduler, a worker, and `grade batch --scheduler`,
    all from the wheel's environment."""
    home, bin_ = installed.parent, installed / "bin"
    subs = home / "subs"
    subs.mkdir()
    shutil.copy(STUDENT_NOTEBOOK, subs / "ada.ipynb")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    logs = home / "dask.log"
    with open(logs, "w") as log:
        started = [subprocess.Popen([bin_ / "dask", "scheduler", "--host", "127.0.0.1",
                                     "--port", str(port), "--no-dashboard"],
                                    cwd=home, stdout=log, stderr=subprocess.STDOUT)]
        try:
            started.append(subprocess.Popen(
                [bin_ / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard"], cwd=home, stdout=log, stderr=subprocess.STDOUT))
            batch = _run(bin_ / "grade", "batch", subs, "--data", small_data, "--out",
                         home / "batch", "--no-train", "--scheduler", address, cwd=home)
        finally:
            for process in reversed(started):
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    assert batch.returncode == 0, (batch.stderr[-2000:], logs.read_text()[-2000:])
    result = json.loads((home / "batch" / "ada" / "result.json").read_text())
    assert result["status"] == "checked", result["error"]
    assert leftover_processes() == []


# Gradescope's results.json fields, from its autograder specification
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format",
                  "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
                  "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output",
                   "output_format", "tags", "visibility", "extra_data"}
GRADESCOPE_VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def _gradescope_fields(results: dict) -> None:
    """results.json as the specification describes it (its example's fields and values)."""
    assert set(results) <= GRADESCOPE_TOP, set(results) - GRADESCOPE_TOP
    assert isinstance(results["score"], float) and isinstance(results["execution_time"], int)
    assert isinstance(results["output"], str) and results["output"]
    for key in ("visibility", "stdout_visibility"):
        assert results.get(key, "visible") in GRADESCOPE_VISIBILITY
    for test in results["tests"]:
        assert set(test) <= GRADESCOPE_TEST, set(test) - GRADESCOPE_TEST
        assert isinstance(test["name"], str) and isinstance(test["score"], float)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed")
        assert test.get("visibility", "visible") in GRADESCOPE_VISIBILITY
    for entry in results.get("leaderboard", []):
        assert set(entry) <= {"name", "value", "order"} and entry.get("order", "desc") in \
            ("asc", "desc")


# The zip's training profile here: `short` (the README's) trains the reference for minutes, more
# than CI has; one epoch of 160 synthetic flowers without clutter is enough for the reference to
# learn above chance (37.5% on the AVX2-only host) where the untouched student notebook does not.
INSTANT = """
[profiles.instant]
epochs = 1
batch_size = 8
learning_rate = 0.005
warmup_epochs = 0
schedule = "cosine"
augment = false
label_smoothing = 0.0
max_train_images = 160
max_val_images = 40
validate_every_epoch = false
seed = 42
"""


@ahead_job("autograder", "autograder", needs=("wheel", "clean_flowers"))
def autograder(ahead: Ahead, root: Path) -> Path:
    """`grade autograder`'s zip unpacked into a folder that stands in for /autograder, and
    setup.sh's install step run there (its apt step finds Python 3.11 and bubblewrap here)."""
    path, _ = ahead.get("wheel")
    course = root.parent / "course"
    shutil.copytree(ROOT / "exercises" / "flowers-cnn", course)
    (course / "exercise.toml").write_text((course / "exercise.toml").read_text() + INSTANT)
    built = ahead.run(sys.executable, "-m", "grader", "autograder", "--out",
                      root / "autograder.zip", "--data", ahead.get("clean_flowers"),
                      "--exercise", course, "--profile", "instant", "--timeout-minutes", "10",
                      "--wheel", path)
    assert built.returncode == 0 and "autograder.zip" in built.stdout, built.stdout[-2000:]
    with zipfile.ZipFile(root / "autograder.zip") as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", path.name, "autograder.json",
                "exercise/exercise.toml", "exercise/flowers-cnn.ipynb"} <= names
        assert not any(archive.read(n) == REFERENCE_NOTEBOOK.read_bytes() for n in names)
        archive.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):  # zipfile does not restore modes
        (root / "source" / script).chmod(0o755)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope
    setup = ahead.run("bash", root / "source" / "setup.sh", cwd=root,
                      env=_env({"AUTOGRADER_ROOT": str(root)}))
    assert setup.returncode == 0, setup.stdout[-4000:]
    assert "nothing to install with apt" in setup.stdout
    return root


def _submit(root: Path, cases: dict[str, dict[str, Path | bytes]]) -> dict[str, dict]:
    """One Gradescope run per case, all at once, each in its own copy of the root (hard links),
    as each submission gets its own container: submission/ filled, then run_autograder."""
    running = {}
    for name, files in cases.items():
        container = root.parent / f"{root.name}-{name}"
        copied = _run("cp", "-al", root, container, cwd=root.parent)
        assert copied.returncode == 0, copied.stderr
        (container / "submission").mkdir()
        for file, content in files.items():
            target = container / "submission" / file
            if isinstance(content, Path):
                shutil.copy(content, target)
            else:
                target.write_bytes(content)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        running[name] = (container, subprocess.Popen(
            [container / "run_autograder"], cwd=container, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env={**env, "AUTOGRADER_ROOT": str(container)}))
    found = {}
    for name, (container, process) in running.items():
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0 and "Traceback" not in stdout + stderr, stderr[-3000:]
        found[name] = json.loads((container / "results" / "results.json").read_text())
        _gradescope_fields(found[name])
    return found


def _rubric_score(rules_passed: float, accuracy: float | None) -> float:
    """exercise.toml's rubric: 30 rule points; 60 rising from chance (0.20) to the target
    (0.75); a 10-point bonus from the target to the stretch (0.80)."""
    def ramp(low, high):
        return min(1.0, max(0.0, (accuracy - low) / (high - low)))
    if accuracy is None:
        return round(30 * rules_passed, 2)
    return round(30 * rules_passed + 60 * ramp(0.20, 0.75) + 10 * ramp(0.75, 0.80), 2)


def test_the_gradescope_autograder_grades_four_kinds_of_submission(autograder: Path) -> None:
    found = _submit(autograder, {
        "reference": {"flowers-cnn.ipynb": REFERENCE_NOTEBOOK},
        "student": {"flowers-cnn.ipynb": STUDENT_NOTEBOOK, "notes.txt": b"my notes"},
        "raises": {"mine.ipynb": ROOT / "tests" / "notebooks" / "raises_in_cell.ipynb"},
        "nothing": {"flowers-cnn.py": b"print('not a notebook')"}})
    reference, student, raises, nothing = (found[name] for name in
                                           ("reference", "student", "raises", "nothing"))
    for graded in (reference, student):
        rules = [t for t in graded["tests"] if t["name"].startswith("Rule:")]
        assert rules and all(t["status"] == "passed" for t in rules)
        accuracy = graded["leaderboard"][0]["value"]
        assert graded["score"] == _rubric_score(1.0, accuracy)
        assert sum(t["score"] for t in graded["tests"]) == pytest.approx(graded["score"])
        assert "'instant' profile" in graded["output"]
    # the profile's training puts the reference above chance and above the student notebook
    assert reference["leaderboard"][0]["value"] > student["leaderboard"][0]["value"]
    assert reference["score"] > student["score"]
    assert "1 other file(s) in the submission were not graded" in student["output"]
    assert raises["score"] == 0.0
    assert "Cell 3 raised NameError" in raises["output"]
    assert nothing["score"] == 0.0 and "No Jupyter notebook was submitted" in nothing["output"]
    assert "flowers-cnn.py" in nothing["output"]
    assert leftover_processes() == []
