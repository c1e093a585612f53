"""A hostile corpus, one notebook per attack, graded in the real sandbox (bubblewrap, as CI
installs it) with the real limits, through `grade batch --no-train` (the attacks are in the
kernel; training would add nothing): for each, the expected status and message; for the whole,
no traceback, nothing outside the work directories changed, and no process left. Then one
attack through `grade notebook`, a kernel killed by its memory limit, and grading without
bubblewrap."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, leftover_processes, run_grade

CELL_TIMEOUT = "20"
# The attacks only the cell's time limit stops are graded in a batch of their own, with a
# shorter limit: their first cell never ends, and the box's set-up before it takes about a
# second. Under the long limit each held a worker for 20 s, the loop and the bomb spinning.
TIME_LIMITED = ("fork_bomb", "infinite_loop", "blocking_c_call")
SHORT_CELL_TIMEOUT = "8"
VALID_MODEL = ("import keras\nmodel = keras.Sequential([keras.Input((192, 192, 3)),\n"
               "    keras.layers.Conv2D(16, 3, strides=2, activation='relu'),\n"
               "    keras.layers.MaxPooling2D(2), keras.layers.Conv2D(32, 3, activation='relu'),\n"
               "    keras.layers.GlobalAveragePooling2D(),\n"
               "    keras.layers.Dense(5, activation='softmax')])")
LARGE_ACTIVATIONS = (
    "import numpy as np, keras\n"
    "model = keras.Sequential([keras.Input((192, 192, 3)),\n"
    "    keras.layers.Conv2D(64, 3, padding='same', activation='relu'),\n"
    "    keras.layers.Conv2D(64, 3, padding='same', activation='relu'),\n"
    "    keras.layers.MaxPooling2D(8), keras.layers.GlobalAveragePooling2D(),\n"
    "    keras.layers.Dense(5, activation='softmax')])\n"
    "model.compile('adam', 'categorical_crossentropy')\n"
    "images = np.zeros((64, 192, 192, 3), 'float32')\n"
    "model.fit(images, np.eye(5)[np.arange(64) % 5], batch_size=64, epochs=1)")
DEEP_CONFIG = ("deep = '{\"class_name\": \"Sequential\", \"config\": {\"layers\": [' * 10000 + "
               "']}}' * 10000")

# name → (attack cell, expected status, a phrase of the error message or None)
ATTACKS = {
    "read_shadow": ("print(open('/etc/shadow').read())", "error", "FileNotFoundError"),
    "read_sibling": ("print(open('{sibling}').read())", "error", "FileNotFoundError"),
    "list_output": ("import os\nprint(os.listdir('{outputs}'))", "error", "FileNotFoundError"),
    "write_outside": ("open('{data}/evil.tfrec', 'w').write('x')", "error",
                      "Read-only file system"),
    "fake_result": ("import json\njson.dump({'status': 'graded', 'passed': True}, "
                    "open('{out}/result.json', 'w'))", "error", "FileNotFoundError"),
    # No network in the box: the listening port on the host is unreachable.
    "socket": ("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)",
               "error", "raised ConnectionRefusedError"),
    # The process limit holds the bomb to the box until the cell's time limit kills it all.
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", "error", "did not finish in time"),
    "allocate_20gb": ("x = bytearray(20 * 2**30)", "error", "MemoryError"),
    "infinite_loop": ("while True:\n    pass", "error", "did not finish in time"),
    "blocking_c_call": ("import ctypes, signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                        "ctypes.CDLL(None).sleep(3600)", "error", "did not finish in time"),
    "os_exit": ("import os\nos._exit(1)", "error", "kernel died"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "error", "kernel died"),
    "fill_work_dir": ("block = b'x' * (1 << 26)\nfor n in range(40):\n"
                      "    with open(f'fill{n}', 'wb') as f:\n"
                      "        for _ in range(15):\n            f.write(block)",
                      "error", "No space left on device"),
    "sigkill_self": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "error",
                     "kernel died"),
    "read_environment": ("import os\nassert 'FLOWERS_TEST_SECRET' not in os.environ, 'leaked'\n"
                         "assert not os.path.exists('/root/.pyenv/shims'), 'home visible'\n"
                         "print(sorted(os.environ))", "checked", None),
    "print_256mb": ("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(256):\n"
                    "    sys.stdout.write(chunk)", "checked", None),
    "tamper_extraction": ("import sys\nsys.modules['IPython.display'].display = "
                          "lambda *a, **k: None", "error", "could not read the model"),
    "nested_10000": (DEEP_CONFIG + "\nimport sys\nreal = sys.modules['IPython.display'].display\n"
                     "def forged(payload, raw=False):\n"
                     "    payload['application/vnd.flowers-grader.model+json']['config'] = deep\n"
                     "    real(payload, raw=True)\n"
                     "sys.modules['IPython.display'].display = forged", "rejected", None),
}


def _tree(folder: Path, *skip: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except under ``skip`` (the gradings' own output)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not set(skip) & set(path.parents):
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


class Listener:
    """A TCP port on 127.0.0.1 that records whether anything connected."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connected = False
        self.server.settimeout(0.5)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                connection, _ = self.server.accept()
                self.connected = True
                connection.close()
            except OSError:
                continue

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.server.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, small_data: Path):
    """The class: one notebook per attack, a sibling with a secret, a listening port. The
    time-limited attacks are in a folder of their own (``time-limited``)."""
    root = tmp_path_factory.mktemp("hostile")
    folder, outputs = root / "submissions", root / "outputs"
    for made in (folder, outputs, root / "time-limited"):
        made.mkdir()
    sibling = folder / "victim" / "secret.txt"
    sibling.parent.mkdir()
    sibling.write_text("the victim's answers")
    listener = Listener()
    for attack, (cell, _, _) in ATTACKS.items():
        for key, value in {"sibling": sibling, "outputs": outputs, "out": outputs / attack,
                           "data": small_data, "port": listener.port}.items():
            cell = cell.replace("{" + key + "}", str(value))
        _write(root / "time-limited" if attack in TIME_LIMITED else folder, attack, cell)
    yield root, folder, outputs, sibling, listener
    listener.close()


def _write(folder: Path, name: str, cell: str) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell),
                                               nbformat.v4.new_code_cell(VALID_MODEL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, str(path))
    return path


@pytest.fixture(scope="module")
def graded(corpus, small_data: Path) -> dict[str, object]:
    """The whole corpus through `grade batch --no-train` (two kernels at a time; the
    time-limited attacks three at a time, in a batch of their own), with the tree of every file
    outside the batches' own output hashed before and after."""
    root, folder, outputs, _, _ = corpus
    out, out_timed = outputs / "batch", outputs / "batch-time-limited"
    before = _tree(root, out, out_timed), _tree(small_data, out, out_timed)
    os.environ["FLOWERS_TEST_SECRET"] = "the grader's shell only"
    try:
        processes = [run_grade("batch", submissions, "--data", small_data, "--out", to,
                               "--no-train", "--cell-timeout", timeout, "--workers", workers,
                               "--require-sandbox")
                     for submissions, to, timeout, workers in (
                         (root / "time-limited", out_timed, SHORT_CELL_TIMEOUT, "3"),
                         (folder, out, CELL_TIMEOUT, "2"))]
    finally:
        del os.environ["FLOWERS_TEST_SECRET"]
    results = {path.parent.name: json.loads(path.read_text())
               for path in [*out.glob("*/result.json"), *out_timed.glob("*/result.json")]}
    return {"processes": processes, "results": results, "out": out, "before": before,
            "after": (_tree(root, out, out_timed), _tree(small_data, out, out_timed))}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_ends_in_a_plain_result(attack: str, graded) -> None:
    _, status, phrase = ATTACKS[attack]
    result = graded["results"][attack]
    assert result["status"] == status, result["error"]
    assert result["isolation"] == "bubblewrap"
    if phrase:
        assert phrase in result["error"]["message"], result["error"]
    if status == "error":
        assert result["error"]["stage"] in ("execute", "extract"), result["error"]
    if attack in TIME_LIMITED:  # stopped in the attack, not in the box's set-up
        assert result["error"]["cell"] == 1, result["error"]


def test_the_corpus_changes_nothing_outside_and_leaves_nothing_running(graded, corpus) -> None:
    _, folder, _, _, listener = corpus
    for process in graded["processes"]:
        assert process.returncode == 0 and "Traceback" not in process.stderr, \
            process.stderr[-3000:]
    notebooks = sorted(p.stem for p in [*folder.glob("*.ipynb"),
                                        *(folder.parent / "time-limited").glob("*.ipynb")])
    assert sorted(graded["results"]) == sorted([*notebooks, "victim"])  # victim: no notebook
    assert graded["after"] == graded["before"]
    assert not listener.connected
    assert leftover_processes() == []


def test_a_dead_kernel_names_its_signal_and_keeps_its_last_words(graded) -> None:
    segfault = graded["results"]["segfault"]["error"]
    assert segfault["signal"] == "SIGSEGV" and "segmentation fault" in segfault["message"]
    killed = graded["results"]["sigkill_self"]["error"]
    assert killed["signal"] == "SIGKILL"
    assert graded["results"]["os_exit"]["error"].get("signal") is None
    assert "exited with code 1" in graded["results"]["os_exit"]["error"]["message"]


def test_a_flood_is_cut_with_a_marker(graded) -> None:
    executed = json.loads((graded["out"] / "print_256mb" / "executed.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"]
                   for o in c.get("outputs", []))
    assert "output truncated after 1,048,576 bytes" in text
    assert len(text) < 2 << 20


def test_one_attack_through_grade_notebook(corpus, small_data: Path, monkeypatch) -> None:
    """The single-submission path boxes the kernel the same way."""
    root, folder, outputs, _, _ = corpus
    out = outputs / "single"
    monkeypatch.setenv("FLOWERS_TEST_SECRET", "the grader's shell only")
    process = run_grade("notebook", folder / "read_environment.ipynb", "--data", small_data,
                        "--out", out, "--no-train", "--require-sandbox")
    result = json.loads((out / "result.json").read_text())
    assert process.returncode == 0, process.stderr[-2000:]
    assert result["status"] == "checked" and result["isolation"] == "bubblewrap"
    assert leftover_processes() == []


def test_out_of_memory_inside_tensorflow_is_a_named_signal(tmp_path: Path,
                                                           small_data: Path) -> None:
    """The kernel deaths of the codelab's notebooks: a native allocation that fails under the
    kernel's memory limit. An exercise whose limit is 2.5 GiB makes a model with large
    activations die that way in its one training step: TensorFlow's C++ aborts (SIGABRT,
    std::bad_alloc) on the AVX2-only host, and crashes on the unchecked allocation (SIGSEGV) on
    the AVX-512 BF16 host. Either way the message names the memory limit."""
    exercise = tmp_path / "low-memory"
    shutil.copytree(ROOT / "exercises" / "flowers-cnn", exercise)
    toml = exercise / "exercise.toml"
    toml.write_text(re.sub(r"(?m)^memory_bytes = \d+", f"memory_bytes = {5 << 29}",
                           toml.read_text()))
    notebook = _write(tmp_path, "large_activations", LARGE_ACTIVATIONS)
    out = tmp_path / "out"
    process = run_grade("notebook", notebook, "--data", small_data, "--out", out,
                        "--exercise", exercise, "--no-train", "--require-sandbox")
    error = json.loads((out / "result.json").read_text())["error"]
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert error["stage"] == "execute" and error["cell"] == 1
    assert error["signal"] in ("SIGABRT", "SIGSEGV")
    assert "2.5 GiB memory limit" in error["message"]
    assert ("terminate called" if error["signal"] == "SIGABRT" else
            "Fatal Python error: Segmentation fault") in error["traceback"]


def test_a_500_mb_notebook_is_refused_without_reading_it(tmp_path: Path,
                                                         small_data: Path) -> None:
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as handle:   # sparse: 500 MB on paper, nothing on disk
        handle.truncate(500_000_000)
    out = tmp_path / "out"
    process = run_grade("notebook", huge, "--data", small_data, "--out", out)
    result = json.loads((out / "result.json").read_text())
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert result["status"] == "error" and result["error"]["stage"] == "validate"
    assert "500 MB" in result["error"]["message"] and "50 MB" in result["error"]["message"]


@pytest.mark.parametrize("raw, expected", [
    ("../../etc/passwd", "etc_passwd"), ("..", "student"), (".hidden", "hidden"),
    ("a/b\\c", "a_b_c"), ("<script>", "script"), ("x" * 300, "x" * 64)])
def test_student_ids_cannot_leave_the_output_folder(raw: str, expected: str) -> None:
    from grader.batch.submissions import safe_id

    assert safe_id(raw) == expected


def test_without_bubblewrap_the_limits_hold_and_the_result_says_so(
        corpus, small_data: Path, tmp_path: Path, monkeypatch) -> None:
    _, folder, _, _, _ = corpus
    monkeypatch.setenv("FLOWERS_GRADER_BWRAP", "none")   # as on a machine without bwrap
    out = tmp_path / "unboxed"
    run_grade("notebook", folder / "allocate_20gb.ipynb", "--data", small_data, "--out", out,
              "--no-train")
    result = json.loads((out / "result.json").read_text())
    assert result["isolation"] == "limits-only"
    assert result["status"] == "error" and "MemoryError" in result["error"]["message"]
    assert any("WITHOUT the bubblewrap sandbox" in w for w in result["warnings"])
    required = tmp_path / "required"
    process = run_grade("notebook", folder / "read_shadow.ipynb", "--data", small_data,
                        "--out", required, "--require-sandbox")
    result = json.loads((required / "result.json").read_text())
    assert process.returncode == 1 and "Traceback" not in process.stderr
    assert result["status"] == "error" and result["error"]["stage"] == "sandbox"
    assert "install the Debian package `bubblewrap`" in result["error"]["message"]
