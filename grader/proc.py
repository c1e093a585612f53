"""Run a spec in a fresh interpreter: ``python -m MODULE SPEC``, in its own session.

Used by grade batch's tasks (grader.batch.tasks) and the benchmarks' probes. A deadline stops
it; when it ends, whatever it left running in its session is killed; when the caller dies (even
by SIGKILL), Linux kills it (``PR_SET_PDEATHSIG``). Its output goes to files, not pipes, so a
chatty child never blocks on a full pipe.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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


def _read(stream, tail: int | None) -> str:
    end = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, end - tail) if tail else 0)
    return stream.read().decode("utf-8", "replace")
