"""Run a spec in another interpreter: ``python -m MODULE SPEC``, in its own session.

Used by grade batch's tasks (grader.batch.tasks), a training on another backend
(grader.training.job) and the benchmarks' probes; :func:`run_answering` passes a payload in and
a JSON answer back. A deadline stops
it; when it ends, whatever it left running in its session is killed; when the caller dies (even
by SIGKILL), Linux kills it (``PR_SET_PDEATHSIG``). Its output goes to files, not pipes, so a
chatty child never blocks on a full pipe.

:class:`Resident` keeps one such interpreter for many specs, one at a time
(``python -m MODULE --serve``, see :func:`serve`): an inspection spends most of a fresh
interpreter's time importing Keras (8 of 18 s on two AVX2 cores), so the batch's inspections
share one per worker. The guarantees are the same per spec: a deadline or a crash kills the
interpreter and its session (the next spec gets a fresh one), and what a spec started is killed
when it ends.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Finished:
    """How the process ended: ``code`` is None when the deadline stopped it, negative when a
    signal ended it."""
    code: int | None
    output: str      # standard output (with standard error when they were merged)
    errors: str      # standard error, when kept apart
    seconds: float

    def failure(self, what: str, timeout: float | None) -> str:
        """Why it failed, in words: ``what`` is the step's name ("the train step")."""
        if self.code is None:
            return f"{what} did not finish within {timeout:.0f} s and was stopped"
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = str(-self.code)
            return (f"{what}'s process was killed by signal {name} after {self.seconds:.0f} s "
                    f"(out of memory, or a crash)")
        return f"{what}'s process ended with exit code {self.code}"


def run_module(module: str, spec: Path, timeout: float | None = None, cwd: Path | None = None,
               env: dict[str, str] | None = None, merge: bool = True,
               tail: int | None = None) -> Finished:
    """Run ``python -m module spec`` and wait for it (at most ``timeout`` seconds). ``env`` is
    added to this process's environment; ``merge`` puts standard error into the output;
    ``tail`` keeps only the last bytes of each."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(spec)], stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT if merge else err, start_new_session=True,
            preexec_fn=_die_with_parent, cwd=cwd, env={**os.environ, **(env or {})})
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            _kill_session(process)
        return Finished(code, _read(out, tail), _read(err, tail), time.monotonic() - started)


def run_answering(module: str, payload: Any, timeout: float | None = None,
                  env: dict[str, str] | None = None, tail: int | None = None,
                  resident: Resident | None = None) -> tuple[Any, Finished]:
    """Run ``python -m module SPEC`` (in ``resident`` when given) for ``payload``: SPEC holds it,
    pickled, with the path of the JSON answer the process writes (:func:`answer`). Returns the
    answer (None when there was none) and how the process finished. Each call has its own
    private folder, the process's working directory."""
    with tempfile.TemporaryDirectory(prefix=f"flowers-grader-{module.rpartition('.')[2]}-") \
            as private:
        spec, answer_path = Path(private) / "spec.pickle", Path(private) / "answer.json"
        spec.write_bytes(pickle.dumps({"payload": payload, "answer": str(answer_path)}))
        if resident is not None:
            finished = resident.run(spec, timeout, cwd=Path(private))
        else:
            finished = run_module(module, spec, timeout, cwd=Path(private), env=env, tail=tail)
        try:
            found = json.loads(answer_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = None
    return found, finished


def answer(spec_path: str, handle: Callable[[Any], Any]) -> None:
    """In the process :func:`run_answering` started: ``handle`` the spec's payload and write
    what it returns as the JSON answer."""
    from grader.io import write_json

    spec = pickle.loads(Path(spec_path).read_bytes())
    write_json(Path(spec["answer"]), handle(spec["payload"]))


class Resident:
    """``python -m module --serve``, kept running to run specs one at a time.

    The caller owns it from one thread (the interpreter dies with that thread). It is started on
    the first spec and again after it died, was stopped by a deadline, or ran ``recycle`` specs
    (what a long batch leaks stays bounded).
    """

    def __init__(self, module: str, tail: int | None = None, recycle: int = 50) -> None:
        self.module, self.tail, self.recycle = module, tail, recycle
        self.process: subprocess.Popen | None = None
        self.log = None      # the interpreter's merged output, a temporary file
        self.served = 0

    def run(self, spec: Path, timeout: float | None = None, cwd: Path | None = None) -> Finished:
        """Run one spec (like :func:`run_module`, output merged): ``code`` 0 once it is done."""
        started = time.monotonic()
        if self.process is None or self.served >= self.recycle:
            self.close()
            self._start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        offset = self.log.seek(0, os.SEEK_END)
        self.served += 1
        try:
            self.process.stdin.write(f"{cwd or os.getcwd()}\t{spec}\n".encode())
            self.process.stdin.flush()
            reply = _read_line(self.process.stdout.fileno(), timeout)
        except BrokenPipeError:
            reply = b""
        code: int | None = 0
        if reply != b"done\n":   # the deadline (None), or it died (b""): this one is finished
            _kill_session(self.process)
            code = None if reply is None else self.process.returncode
        output = _read(self.log, self.tail, offset)
        if code != 0:
            self.close()
        return Finished(code, output, "", time.monotonic() - started)

    def close(self) -> None:
        """Stop the interpreter (end of its input, then SIGKILL to its session) and reap it."""
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            _kill_session(self.process)
            self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def _start(self) -> None:
        self.log = tempfile.TemporaryFile()
        self.served = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, start_new_session=True,
            preexec_fn=_die_with_parent)


def serve(handle: Callable[[str], None]) -> int:
    """The loop of a :class:`Resident` interpreter: ``handle(spec)`` for each spec read.

    Standard output is the protocol, so from here on whatever the handler prints goes to the
    log (standard error). After each spec, the processes it started are killed.
    """
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    for line in sys.stdin.buffer:
        cwd, _, spec = line.decode().rstrip("\n").partition("\t")
        os.chdir(cwd)
        try:
            handle(spec)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.chdir("/")
            _kill_children()
        protocol.write(b"done\n")
    return 0


def _kill_children() -> None:
    """SIGKILL this process's children, with the sessions of those that lead one (a kernel
    starts its own), and reap them."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) != me:
            continue
        pid, session = int(stat.parent.name), int(fields[3])
        try:
            if session == pid:
                os.killpg(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _read_line(fd: int, timeout: float | None) -> bytes | None:
    """One line from ``fd`` within ``timeout`` seconds: None when the time ran out, b"" at the
    end of the stream."""
    deadline = None if timeout is None else time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            return b""
        line += chunk
    return line


def _die_with_parent() -> None:
    """In the child, before exec: die when the thread that started us dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the caller's own cleanup still runs
        pass


def _kill_session(process: subprocess.Popen) -> None:
    """Kill the child's whole session (it may have left children behind), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _read(stream, tail: int | None, start: int = 0) -> str:
    end = stream.seek(0, os.SEEK_END)
    stream.seek(max(start, end - tail) if tail else start)
    return stream.read().decode("utf-8", "replace")
