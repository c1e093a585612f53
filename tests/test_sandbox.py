"""Issue 7: a hostile corpus, one notebook per attack, graded in the real sandbox (bubblewrap, as
CI installs it) and with the real limits. For each: the expected status and message, the grader
survived (a result.json, no traceback), nothing outside the work directory changed, and no
process is left. Then the whole corpus through `grade batch`."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from conftest import leftover_processes, run_grade

pytestmark = pytest.mark.kernel

CELL_TIMEOUT = "20"
VALID_MODEL = ("import keras\nmodel = keras.Sequential([keras.Input((192, 192, 3)),\n"
               "    keras.layers.Conv2D(16, 3, strides=2, activation='relu'),\n"
               "    keras.layers.MaxPooling2D(2), keras.layers.Conv2D(32, 3, activation='relu'),\n"
               "    keras.layers.GlobalAveragePooling2D(),\n"
               "    keras.layers.Dense(5, activation='softmax')])")
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
    "socket": ("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)",
               "error", "Error"),
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", "error", None),
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
                         "print(sorted(os.environ))", "graded", None),
    "print_1gb": ("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n"
                  "    sys.stdout.write(chunk)", "graded", None),
    "tamper_extraction": ("import sys\nsys.modules['IPython.display'].display = "
                          "lambda *a, **k: None", "error", "could not read the model"),
    "nested_10000": (DEEP_CONFIG + "\nimport sys\nreal = sys.modules['IPython.display'].display\n"
                     "def forged(payload, raw=False):\n"
                     "    payload['application/vnd.flowers-grader.model+json']['config'] = deep\n"
                     "    real(payload, raw=True)\n"
                     "sys.modules['IPython.display'].display = forged", "rejected", None),
}


def _tree(folder: Path, skip: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except under ``skip`` (the grading's own output)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and skip not in path.parents:
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
    """The class: one notebook per attack, a sibling with a secret, a listening port."""
    root = tmp_path_factory.mktemp("hostile")
    folder, outputs = root / "submissions", root / "outputs"
    folder.mkdir()
    outputs.mkdir()
    sibling = folder / "victim" / "secret.txt"
    sibling.parent.mkdir()
    sibling.write_text("the victim's answers")
    listener = Listener()
    for attack, (cell, _, _) in ATTACKS.items():
        for key, value in {"sibling": sibling, "outputs": outputs, "out": outputs / attack,
                           "data": small_data, "port": listener.port}.items():
            cell = cell.replace("{" + key + "}", str(value))
        _write(folder, attack, cell)
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


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_ends_in_a_plain_result_and_changes_nothing(attack: str, corpus,
                                                          small_data: Path,
                                                          monkeypatch) -> None:
    root, folder, outputs, sibling, listener = corpus
    out = outputs / attack
    _, status, phrase = ATTACKS[attack]
    notebook = folder / f"{attack}.ipynb"
    before = _tree(root, out), _tree(small_data, out)
    monkeypatch.setenv("FLOWERS_TEST_SECRET", "the grader's shell only")
    process = run_grade("notebook", notebook, "--data", small_data, "--out", out,
                        "--profile", "smoke", "--cell-timeout", CELL_TIMEOUT,
                        "--require-sandbox")
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == status, result["error"]
    assert result["isolation"] == "bubblewrap"
    if phrase:
        assert phrase in result["error"]["message"], result["error"]
    if status == "error":
        assert result["error"]["stage"] in ("execute", "extract"), result["error"]
    assert (_tree(root, out), _tree(small_data, out)) == before
    assert not listener.connected
    assert leftover_processes() == []


def test_a_flood_is_cut_with_a_marker(corpus) -> None:
    _, _, outputs, _, _ = corpus
    executed = json.loads((outputs / "print_1gb" / "executed.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"]
                   for o in c.get("outputs", []))
    assert "output truncated after 1,048,576 bytes" in text
    assert len(text) < 2 << 20


def test_the_corpus_through_grade_batch(corpus, small_data: Path, tmp_path: Path) -> None:
    _, folder, _, _, _ = corpus
    notebooks = sorted(p.stem for p in folder.glob("*.ipynb"))
    assert len(notebooks) == len(ATTACKS)
    out = tmp_path / "batch"
    process = run_grade("batch", folder, "--data", small_data, "--out", out,
                        "--profile", "smoke", "--cell-timeout", CELL_TIMEOUT, "--workers", "2")
    assert process.returncode == 0, process.stderr[-3000:]
    written = sorted(p.parent.name for p in out.glob("*/result.json"))
    assert written == sorted([*notebooks, "victim"])   # victim handed in no notebook
    for name in notebooks:
        result = json.loads((out / name / "result.json").read_text())
        assert result["status"] == ATTACKS[name][1], (name, result["error"])
    assert leftover_processes() == []


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
    from grader.submissions import safe_id

    assert safe_id(raw) == expected


def test_without_bubblewrap_the_limits_hold_and_the_result_says_so(
        corpus, small_data: Path, tmp_path: Path, monkeypatch) -> None:
    _, folder, _, _, _ = corpus
    monkeypatch.setenv("FLOWERS_GRADER_BWRAP", "none")   # as on a machine without bwrap
    out = tmp_path / "unboxed"
    run_grade("notebook", folder / "allocate_20gb.ipynb", "--data", small_data, "--out", out,
              "--profile", "smoke")
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
