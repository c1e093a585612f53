"""The units of work of ``grade batch``, each run in a fresh interpreter.

:func:`run_task` is what the local pool's threads and Dask's workers call. It starts
``python -m grader.batch.tasks SPEC`` in its own session, waits with a deadline, and always
returns a JSON-able dict: the task's answer, or ``{"failed": message}`` when the process hung,
crashed or was killed. A submission that kills its kernel, or a training that segfaults,
therefore takes down one process, never the batch or a Dask worker. When the task ends,
whatever it left running in its session is killed; when the batch itself is killed (even with
SIGKILL), Linux kills the task (``PR_SET_PDEATHSIG``), and the kernel's parent poller ends the
kernel.

Tasks:
- ``inspect``: every stage before trusted training, for one notebook (pipeline.inspect).
- ``prepare``: decode the data into the batch's cache (once per batch).
- ``train``: trusted training of one architecture (pipeline.trusted_training).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
LOG_TAIL = 3000            # bytes of a failed task's own output kept for the message
PR_SET_PDEATHSIG = 1


def run_task(kind: str, payload: Any, timeout: float) -> dict[str, Any]:
    """Run one task in a subprocess; never raises for what happens inside it."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"flowers-grader-{kind}-") as private:
        spec, answer, output = (Path(private) / name for name in
                                ("task.pickle", "answer.json", "task.log"))
        spec.write_bytes(pickle.dumps({"kind": kind, "payload": payload, "answer": str(answer)}))
        with open(output, "w+b") as stream:
            process = subprocess.Popen(
                [sys.executable, "-m", "grader.batch.tasks", str(spec)], stdin=subprocess.DEVNULL,
                stdout=stream, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent, cwd=private)
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                _kill_session(process)
            if answer.is_file():
                try:
                    return json.loads(answer.read_text(encoding="utf-8"))
                except ValueError:
                    pass
            return {"failed": _failure(kind, code, timeout, started), "log": _tail(stream)}


def _failure(kind: str, code: int | None, timeout: float, started: float) -> str:
    if code is None:
        return f"the {kind} step did not finish within {timeout:.0f} s and was stopped"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return (f"the {kind} step's process was killed by signal {name} after "
                f"{time.monotonic() - started:.0f} s (out of memory, or a crash)")
    return f"the {kind} step's process ended with exit code {code} and no answer"


def _die_with_parent() -> None:
    """In the child, before exec: die when the thread that started us dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the batch's own cleanup still runs
        pass


def _kill_session(process: subprocess.Popen) -> None:
    """Kill the task's whole session (it may have left children behind), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _tail(stream) -> str:
    stream.flush()
    stream.seek(max(0, stream.seek(0, 2) - LOG_TAIL))
    return stream.read().decode("utf-8", "replace").strip()


# ---------------------------------------------------------------- inside the task process

def _inspect(request) -> dict[str, Any]:
    """pipeline.inspect for one notebook; the answer carries the executed notebook's text."""
    from grader import pipeline

    with tempfile.TemporaryDirectory(prefix="flowers-grader-inspect-") as out:
        request = _with_out(request, Path(out))
        result, clock = pipeline.start(request)
        found: dict[str, Any] = {}

        def stages() -> None:
            inspection = pipeline.inspect(request, result, clock)
            found.update(config=inspection.config,
                         info=inspection.info.as_dict() if inspection.info else None)

        pipeline.guarded(result, stages, request.exercise)
        result["timings"] = clock.timings
        executed = Path(out) / pipeline.EXECUTED_NAME
        text = executed.read_text(encoding="utf-8") if executed.is_file() else None
        return {"result": result, "config": found.get("config"), "info": found.get("info"),
                "executed": text}


def _with_out(request, out: Path):
    from dataclasses import replace
    return replace(request, out_dir=out)


def _prepare(job) -> dict[str, Any]:
    from grader.training import datacache

    started = time.perf_counter()
    decoded = [datacache.load(source, job.cache).decoded for source in job.sources()]
    return {"decoded": sum(decoded), "seconds": round(time.perf_counter() - started, 2)}


def _train(payload) -> dict[str, Any]:
    from grader import pipeline

    config, job = payload
    started = time.perf_counter()
    trained = pipeline.trusted_training(config, job)
    trained["seconds"] = round(time.perf_counter() - started, 2)
    return trained


def _main(spec_path: str) -> int:
    from grader.lazy import quiet_libraries
    from grader.io import write_json

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    spec = pickle.loads(Path(spec_path).read_bytes())
    kind, payload = spec["kind"], spec["payload"]
    from grader.errors import GradingError

    try:
        answer = {"inspect": _inspect, "prepare": _prepare, "train": _train}[kind](payload)
    except GradingError as exc:  # a message meant for the result as it is (e.g. --max-minutes)
        answer = {"failed": exc.message.rstrip(".")}
    except Exception as exc:  # the driver turns this into an error result
        import traceback
        answer = {"failed": f"the {kind} step failed: {type(exc).__name__}: {exc}",
                  "log": traceback.format_exc(limit=8)}
    write_json(Path(spec["answer"]), answer)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
