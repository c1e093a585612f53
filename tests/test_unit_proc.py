"""grader.proc runs a spec in a fresh interpreter: the output comes back, a deadline stops it,
a signal is named, and nothing it started outlives it. A resident interpreter keeps those
promises for each of the specs it runs. Real processes, no mocks."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from grader.proc import Resident, run_module


def _module(folder: Path, source: str) -> Path:
    """A module ``child`` in ``folder`` (run with cwd=folder), and an empty spec file."""
    (folder / "child.py").write_text(textwrap.dedent(source))
    spec = folder / "spec.json"
    spec.write_text("{}")
    return spec


def test_the_output_and_the_exit_code_come_back(tmp_path: Path) -> None:
    spec = _module(tmp_path, """
        import sys
        print("answer", sys.argv[1].endswith("spec.json"))
        print("noise", file=sys.stderr)
        sys.exit(3)
    """)
    merged = run_module("child", spec, 60, cwd=tmp_path)
    assert merged.code == 3 and "answer True" in merged.output and "noise" in merged.output
    assert merged.failure("the step", 60) == "the step's process ended with exit code 3"
    apart = run_module("child", spec, 60, cwd=tmp_path, merge=False)
    assert "noise" not in apart.output and apart.errors.strip() == "noise"


def test_the_tail_keeps_the_last_bytes(tmp_path: Path) -> None:
    spec = _module(tmp_path, 'print("x" * 5000 + "END")')
    assert run_module("child", spec, 60, cwd=tmp_path, tail=100).output.strip() \
        == "x" * 96 + "END"  # 100 bytes with the newline


def test_a_deadline_stops_it_and_says_so(tmp_path: Path) -> None:
    spec = _module(tmp_path, "import time\ntime.sleep(120)\n")
    done = run_module("child", spec, 1, cwd=tmp_path)
    assert done.code is None and done.seconds < 30
    assert done.failure("the inspect step", 1) == \
        "the inspect step did not finish within 1 s and was stopped"


def test_a_signal_is_named(tmp_path: Path) -> None:
    spec = _module(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    done = run_module("child", spec, 60, cwd=tmp_path)
    assert done.code == -9
    assert done.failure("the train step", 60).startswith(
        "the train step's process was killed by signal SIGKILL after")


def test_what_it_left_running_is_killed(tmp_path: Path) -> None:
    spec = _module(tmp_path, """
        import subprocess
        child = subprocess.Popen(["sleep", "300"])
        open("left.pid", "w").write(str(child.pid))
    """)
    assert run_module("child", spec, 60, cwd=tmp_path).code == 0
    pid = int((tmp_path / "left.pid").read_text())
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:  # SIGKILL lands asynchronously
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """Alive and not a zombie (this container's init may leave orphans unreaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def test_the_environment_is_added_to(tmp_path: Path) -> None:
    spec = _module(tmp_path, 'import os\nprint(os.environ["PROBE"], "PATH" in os.environ)\n')
    assert run_module("child", spec, 60, cwd=tmp_path, env={"PROBE": "on"}).output.strip() \
        == "on True"


def test_a_benchmark_probe_runs_through_it_and_a_failed_one_raises() -> None:
    from benchmarks.probes import spawn

    answer = json.loads(spawn({"kind": "gemm", "side": 256, "seconds": 0.05}).splitlines()[-1])
    assert answer["side"] == 256 and answer["gflops"]["float32"] > 0
    with pytest.raises(RuntimeError, match="(?s)probe nope: the probe's process ended with exit "
                                           "code 1: .*KeyError: 'nope'"):
        spawn({"kind": "nope"})


SERVER = """
    import sys
    from grader.proc import serve

    def handle(spec):
        exec(open(spec).read(), {})

    if sys.argv[1] == "--serve":
        sys.exit(serve(handle))
"""


def _resident(folder: Path, monkeypatch: pytest.MonkeyPatch, **options) -> tuple[Resident, Path]:
    """A resident ``child`` interpreter that executes each spec file as Python."""
    (folder / "child.py").write_text(textwrap.dedent(SERVER))
    monkeypatch.chdir(folder)   # where `python -m child` finds it
    return Resident("child", **options), folder / "spec.py"


def test_a_resident_runs_specs_one_after_another_in_one_interpreter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resident, spec = _resident(tmp_path, monkeypatch)
    try:
        outputs = []
        for n in range(3):
            spec.write_text(f"import os, sys\nprint('spec {n}', os.getpid(), os.getcwd())\n"
                            f"print('noise {n}', file=sys.stderr)\n")
            done = resident.run(spec, 60, cwd=tmp_path)
            assert done.code == 0, done
            outputs.append(done.output.split())
        assert [words[:2] for words in outputs] == [["spec", "0"], ["spec", "1"], ["spec", "2"]]
        assert len({words[2] for words in outputs}) == 1          # one interpreter for all
        assert all(words[3] == str(tmp_path) and words[-2:] == ["noise", str(n)]
                   for n, words in enumerate(outputs))           # each spec's own output only
    finally:
        resident.close()
    assert not _running(int(outputs[0][2]))


def test_a_resident_stopped_by_its_deadline_or_killed_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resident, spec = _resident(tmp_path, monkeypatch)
    try:
        spec.write_text("import time\ntime.sleep(120)\n")
        done = resident.run(spec, 1, cwd=tmp_path)
        assert done.code is None and done.seconds < 30
        spec.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
        killed = resident.run(spec, 60, cwd=tmp_path)
        assert killed.code == -9 and killed.failure("the inspect step", 60).startswith(
            "the inspect step's process was killed by signal SIGKILL")
        spec.write_text("print('still serving')\n")
        assert resident.run(spec, 60, cwd=tmp_path).output.strip() == "still serving"
    finally:
        resident.close()


def test_what_a_spec_left_running_is_killed_when_it_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resident, spec = _resident(tmp_path, monkeypatch)
    try:
        spec.write_text("import subprocess\n"
                        "child = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                        "open('left.pid', 'w').write(str(child.pid))\n")
        assert resident.run(spec, 60, cwd=tmp_path).code == 0
        assert not _running(int((tmp_path / "left.pid").read_text()))
    finally:
        resident.close()


def test_a_resident_is_recycled_after_its_share_of_specs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resident, spec = _resident(tmp_path, monkeypatch, recycle=2)
    spec.write_text("import os\nprint(os.getpid())\n")
    try:
        pids = [resident.run(spec, 60, cwd=tmp_path).output.strip() for _ in range(3)]
    finally:
        resident.close()
    assert pids[0] == pids[1] != pids[2]
