"""`grade batch` over a class, with broken, hanging and crashing submissions; resumed after
SIGKILL; and on a Dask LocalCluster started here. Every run trains for real with the smoke
profile (what is tested is the batch's bookkeeping, not the accuracy); the SIGKILL and Dask runs
start from the first run's cached inspections (all of them, or all but two for Dask), so their
time goes to training, where the interruption and the determinism matter; the Dask run also
reuses the trainings of all but two architectures. A training done in the batch's resident
interpreters equals the same notebook graded alone."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import (NOTEBOOKS, REFERENCE_NOTEBOOK, ROOT, STUDENT_NOTEBOOK,
                      leftover_processes, run_grade)

CELL_TIMEOUT = "25"   # the hanging notebook's cell is stopped after this


def _notebook(path: Path, *cells: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    return path


def _small_cnn(variable: str, prefix: str, filters: int = 8) -> str:
    """A small valid CNN whose layer names and variable name vary with ``prefix``; its Dropout
    draws random numbers in training, so a training that repeats itself shows it repeats them."""
    return (
        "import keras\n"
        f"{variable} = keras.Sequential([\n"
        "    keras.Input((192, 192, 3)),\n"
        f"    keras.layers.Conv2D({filters}, 3, strides=2, activation='relu', name='{prefix}_a'),\n"
        f"    keras.layers.MaxPooling2D(2, name='{prefix}_b'),\n"
        f"    keras.layers.Conv2D(16, 3, activation='relu', name='{prefix}_c'),\n"
        f"    keras.layers.GlobalAveragePooling2D(name='{prefix}_d'),\n"
        f"    keras.layers.Dropout(0.3, name='{prefix}_f'),\n"
        f"    keras.layers.Dense(5, activation='softmax', name='{prefix}_e')],\n"
        f"    name='{prefix}_model')\n")


def make_class(folder: Path) -> dict[str, str]:
    """The test class: 14 entries; returns each student's expected status."""
    shutil.copy(REFERENCE_NOTEBOOK, folder / "ada.ipynb")                  # good
    shutil.copy(STUDENT_NOTEBOOK, folder / "ben.ipynb")                    # weak (untouched)
    shutil.copy(STUDENT_NOTEBOOK, folder / "cy.ipynb")                     # identical to ben
    shutil.copy(NOTEBOOKS / "colab_tpu_new_style_1_epoch.ipynb", folder / "dee.ipynb")
    shutil.copy(NOTEBOOKS / "raises_in_cell.ipynb", folder / "eve.ipynb")  # broken
    shutil.copy(NOTEBOOKS / "invalid_json.ipynb", folder / "fay.ipynb")    # broken file
    _notebook(folder / "gus.ipynb", _small_cnn("model", "gus"))            # same architecture
    _notebook(folder / "hal.ipynb", _small_cnn("my_cnn", "hal"))           # ... other names
    _notebook(folder / "ivy.ipynb", _small_cnn("model", "ivy", filters=4))  # a different one
    _notebook(folder / "jo.ipynb", "import time\nprint('waiting')\ntime.sleep(3600)")  # hangs
    _notebook(folder / "kim.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    _notebook(folder / "lu" / "work" / "flowers-cnn.ipynb", _small_cnn("model", "lu", 12))
    (folder / "lu" / "README.md").write_text("my notes")
    (folder / "max.pdf").write_bytes(b"%PDF-1.4 not a notebook")            # not a notebook
    shutil.copy(NOTEBOOKS / "transfer_learning_mobilenet_imagenet.ipynb", folder / "ned.ipynb")
    return {"ada": "graded", "ben": "graded", "cy": "graded", "dee": "graded", "eve": "error",
            "fay": "error", "gus": "graded", "hal": "graded", "ivy": "graded", "jo": "error",
            "kim": "error", "lu": "graded", "max": "error", "ned": "rejected"}


def batch_args(submissions: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["batch", str(submissions), "--data", str(data), "--out", str(out),
            "--profile", "smoke", "--cell-timeout", CELL_TIMEOUT, "--deterministic", *extra]


def _untimed(path: Path) -> dict[str, object]:
    """A result.json without its timings, measured speeds and time stamps."""
    result = json.loads(path.read_text())
    for key in ("timings", "started_at", "finished_at"):
        result.pop(key)
    for key in ("seconds", "images_per_second", "validation_seconds", "projection"):
        result["training"].pop(key, None)
    return result


def comparable(out: Path) -> dict[str, object]:
    """Everything a batch wrote that must not depend on how it ran: each result.json without
    timings, measured speeds and time stamps, and grades.csv without its seconds column."""
    found = {path.parent.name: _untimed(path) for path in sorted(out.glob("*/result.json"))}
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text())))
    seconds = rows[0].index("seconds") if "seconds" in rows[0] else None
    found["grades.csv"] = [[c for i, c in enumerate(r) if i != seconds] for r in rows]
    return found


@pytest.fixture(scope="module")
def submissions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("class")
    return folder, make_class(folder)


@pytest.fixture(scope="module")
def uninterrupted(submissions, small_data: Path, tmp_path_factory) -> tuple[Path, object]:
    folder, _ = submissions
    out = tmp_path_factory.mktemp("batch") / "out"
    process = run_grade(*batch_args(folder, small_data, out, "--workers", "2"))
    return out, process


def test_every_submission_ends_with_a_result_and_duplicates_train_once(
        submissions, uninterrupted) -> None:
    _, expected = submissions
    out, process = uninterrupted
    assert process.returncode == 0, process.stderr[-3000:]
    statuses = {name: comparable(out)[name]["status"] for name in expected}
    assert statuses == expected
    results = {name: json.loads((out / name / "result.json").read_text()) for name in expected}
    # One folder per student, with everything the student and the LMS need.
    for name in expected:
        assert {"result.json", "report.html", "results.json", "junit.xml"} <= \
            {p.name for p in (out / name).iterdir()}, name
    assert {"index.html", "grades.csv", "junit.xml", "batch.json"} <= \
        {p.name for p in out.iterdir()}
    # The failures say what happened, naming the stage (and the cell where there is one).
    assert results["jo"]["error"]["stage"] == "execute" and results["jo"]["error"]["cell"] == 1
    assert "did not finish in time" in results["jo"]["error"]["message"]
    assert "kernel died" in results["kim"]["error"]["message"]
    assert "No Jupyter notebook was submitted (found: max.pdf)" \
        in results["max"]["error"]["message"]
    assert results["eve"]["error"]["cell"] == 3
    assert any("README.md" in w for w in results["lu"]["warnings"])
    # Same architecture under other names (and identical notebooks): trained once.
    assert results["gus"]["model"]["architecture"] == results["hal"]["model"]["architecture"]
    assert results["gus"]["accuracy"] == results["hal"]["accuracy"]
    assert results["ivy"]["model"]["architecture"] != results["gus"]["model"]["architecture"]
    record = json.loads((out / "batch.json").read_text())
    # Trained: ada, ben (= cy), dee, gus (= hal), ivy, lu. Inspected: 12 distinct notebook
    # contents (13 students handed in a notebook; ben's and cy's are the same file).
    assert record["work"]["trainings run"] == 6, record
    assert record["work"]["inspections run"] == 12, record
    assert record["work"]["data decodes"] == 1, record
    assert record["statuses"] == {"graded": 8, "error": 5, "rejected": 1}
    # The summary names the counts and the dashboard; the dashboard flags the shared ones.
    assert f"dashboard: {out / 'index.html'}" in process.stdout
    assert "14 submission(s)" in process.stdout
    dashboard = (out / "index.html").read_text()
    assert "Similar submissions" in dashboard and "hal" in dashboard
    assert leftover_processes() == []


def test_a_rerun_of_an_unchanged_batch_grades_nothing_again(
        submissions, uninterrupted, small_data: Path, tmp_path: Path) -> None:
    folder, expected = submissions
    out, _ = uninterrupted
    before = comparable(out)
    process = run_grade(*batch_args(folder, small_data, out, "--workers", "2"))
    assert process.returncode == 0, process.stderr[-3000:]
    record = json.loads((out / "batch.json").read_text())
    # Only max (no notebook: nothing to reuse, nothing to run) is written again.
    assert record["unchanged"] == len(expected) - 1
    assert "trainings run" not in record["work"] and "inspections run" not in record["work"]
    assert comparable(out) == before


def test_a_changed_submission_is_graded_again(submissions, uninterrupted, small_data: Path,
                                             tmp_path: Path) -> None:
    """A copy of the graded class and its output, one notebook changed: that one alone is
    inspected again; its new architecture is ivy's, whose training it reuses."""
    folder, expected = submissions
    out, _ = uninterrupted
    shutil.copytree(folder, tmp_path / "class")
    shutil.copytree(out, tmp_path / "out")
    _notebook(tmp_path / "class" / "hal.ipynb", _small_cnn("my_cnn", "hal", filters=4))
    process = run_grade(*batch_args(tmp_path / "class", small_data, tmp_path / "out",
                                    "--workers", "2"))
    assert process.returncode == 0, process.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert record["unchanged"] == len(expected) - 2  # all but hal, and max (no notebook)
    assert record["work"] == {"inspections run": 1, "trainings reused": 1}, record["work"]
    hal, gus, ivy = (json.loads((tmp_path / "out" / name / "result.json").read_text())
                     for name in ("hal", "gus", "ivy"))
    assert hal["model"]["architecture"] == ivy["model"]["architecture"] != \
        gus["model"]["architecture"]
    assert hal["training"]["history"] == ivy["training"]["history"]


def test_a_training_in_the_batch_equals_the_same_notebook_graded_alone(
        submissions, uninterrupted, small_data: Path, tmp_path: Path) -> None:
    """The batch trains in its resident interpreters, after other notebooks and trainings;
    `grade notebook` trains in a process of its own. The numbers are the same."""
    folder, _ = submissions
    out, _ = uninterrupted
    alone = tmp_path / "alone"
    process = run_grade("notebook", folder / "ivy.ipynb", "--data", small_data, "--out", alone,
                        "--profile", "smoke", "--cell-timeout", CELL_TIMEOUT, "--deterministic")
    assert process.returncode in (0, 1), process.stderr[-3000:]
    in_batch, graded_alone = (_untimed(where / "result.json") for where in (out / "ivy", alone))
    assert in_batch["training"]["history"]["loss"], in_batch["training"]
    assert in_batch["training"] == graded_alone["training"]
    assert in_batch["accuracy"] == graded_alone["accuracy"]


def _seed_cache(source: Path, out: Path, kind: str, leave_out: tuple[str, ...] = ()) -> None:
    """Copy a batch's cached answers of one kind ("inspect" or "train") into a new batch's
    cache, but those of the students named: their notebooks are executed again, or their
    architectures trained again. An answer is matched to a student by what it gave the result:
    the submission's digest for an inspection, the training history for a training."""
    def mark(answer: dict) -> str:
        found = answer["result"]["submission"]["sha256"] if kind == "inspect" \
            else answer["training"]["history"]
        return json.dumps(found, sort_keys=True)

    left = {mark({"result": r, "training": r["training"]})
            for r in (json.loads((source / name / "result.json").read_text())
                      for name in leave_out)}
    target = out / ".cache" / kind
    target.mkdir(parents=True)
    for cached in (source / ".cache" / kind).glob("*.json"):
        if mark(json.loads(cached.read_text())) not in left:
            for path in cached.parent.glob(cached.stem + ".*"):
                shutil.copy(path, target / path.name)


def test_killed_with_sigkill_and_rerun_equals_an_uninterrupted_batch(
        submissions, uninterrupted, small_data: Path, tmp_path: Path) -> None:
    folder, expected = submissions
    out = tmp_path / "out"
    _seed_cache(uninterrupted[0], out, "inspect")
    command = [sys.executable, "-m", "grader", *batch_args(folder, small_data, out,
                                                           "--workers", "2")]
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        # Partway: some students are written, and some training has been cached.
        while time.monotonic() < deadline and process.poll() is None and not (
                len(list(out.glob("*/result.json"))) >= 4
                and list((out / ".cache" / "train").glob("*.json"))):
            time.sleep(0.2)
        assert process.poll() is None, "the batch finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    written = {path.parent.name for path in out.glob("*/result.json")}
    assert 4 <= len(written) < len(expected)
    assert leftover_processes() == [], "the killed batch left processes behind"
    rerun = run_grade(*batch_args(folder, small_data, out, "--workers", "2"))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    record = json.loads((out / "batch.json").read_text())
    # Every result written before the kill is kept, but max's: with no notebook there is
    # nothing to compare it by, and it is written again.
    assert record["unchanged"] == len(written - {"max"})
    assert comparable(out) == comparable(uninterrupted[0])


def test_the_same_batch_on_a_dask_local_cluster_gives_the_same_grades(
        submissions, uninterrupted, small_data: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    folder, _ = submissions
    out = tmp_path / "out"
    _seed_cache(uninterrupted[0], out, "inspect", leave_out=("gus", "kim"))
    _seed_cache(uninterrupted[0], out, "train", leave_out=("gus", "ben"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster:
        process = run_grade(*batch_args(folder, small_data, out, "--scheduler",
                                        cluster.scheduler_address))
        workers = len(cluster.scheduler_info["workers"])
    assert process.returncode == 0, process.stderr[-3000:]
    assert workers == 2
    assert f"on Dask at {cluster.scheduler_address}" in process.stderr
    # Two architectures are trained again (gus's = hal's, and ben's = cy's), in other
    # processes on other workers, and --deterministic gives them the same result.json
    # (accuracy, score, history, confusion matrix) as the first batch; the shards are decoded
    # once for the batch. Two notebooks (gus's, and kim's that kills its kernel) run in kernels
    # under Dask workers.
    trained = [r for r in comparable(out).values()
               if isinstance(r, dict) and r["status"] == "graded"]
    assert len(trained) == 8 and all(r["training"]["deterministic"] for r in trained)
    work = json.loads((out / "batch.json").read_text())["work"]
    assert work["trainings run"] == 2 and work["trainings reused"] == 4, work
    assert work["data decodes"] == 1, work
    assert work["inspections run"] == 2 and work["inspections reused"] == 11, work
    assert comparable(out) == comparable(uninterrupted[0])


def test_an_lms_zip_with_a_wrapper_folder_and_gradescope_metadata(tmp_path: Path,
                                                                 small_data: Path) -> None:
    archive = tmp_path / "export.zip"
    cell = _small_cnn("model", "z")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    text = nbformat.writes(notebook)
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("assignment_9_export/submission_metadata.yml",
                        "submission_101:\n  :submitters:\n  - :name: Ann Lee\n    :sid: 'S-101'\n"
                        "submission_102:\n  :submitters:\n  - :name: Bo Wu\n    :sid: 'S-102'\n")
        bundle.writestr("assignment_9_export/submission_101/flowers.ipynb", text)
        bundle.writestr("assignment_9_export/submission_102/flowers.ipynb", text)
        bundle.writestr("../escape.ipynb", text)                    # refused, and reported
    out = tmp_path / "out"
    process = run_grade("batch", archive, "--data", small_data, "--out", out, "--no-train")
    assert process.returncode == 0, process.stderr[-3000:]
    assert sorted(p.parent.name for p in out.glob("*/result.json")) == ["S-101", "S-102"]
    assert "were not unpacked" in process.stdout and "../escape.ipynb" in process.stdout
    assert not (tmp_path / "escape.ipynb").exists()
    record = json.loads((out / "batch.json").read_text())
    assert record["work"] == {"inspections run": 1, "inspections shared": 1}, record


def test_usage_errors_are_messages(tmp_path: Path, small_data: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    process = run_grade("batch", empty, "--data", small_data, "--out", tmp_path / "out")
    assert process.returncode == 2 and "No submissions found" in process.stderr
    assert "Traceback" not in process.stderr
    _notebook(empty / "a.ipynb", "x = 1")
    process = run_grade("batch", empty, "--data", small_data, "--out", tmp_path / "out",
                        "--scheduler", "tcp://127.0.0.1:9")
    assert process.returncode == 2 and "No Dask scheduler answered" in process.stderr
    assert "Traceback" not in process.stderr
