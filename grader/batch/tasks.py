"""The units of work of ``grade batch``, each run in a fresh interpreter.

:func:`run_task` is what the local pool's threads and Dask's workers call. It starts
``python -m grader.batch.tasks SPEC`` through grader.proc (its own session, a deadline, killed
with whatever it left running, and with the batch), and always returns a JSON-able dict: the
task's answer, or ``{"failed": message}`` when the process hung, crashed or was killed. A
submission that kills its kernel, or a training that segfaults, therefore takes down one
process, never the batch or a Dask worker; the kernel's parent poller ends the kernel.
Tasks run in one resident interpreter per worker thread (grader.proc.Resident): the same
guarantees, without importing TensorFlow and Keras again for every notebook and every
architecture. A training on another backend than TensorFlow runs in a fresh process with that
backend's environment. Before each task the resident clears Keras's session, and a training
seeds everything itself, so a training gives the same numbers in a resident as alone (a test
compares). When a resident dies during a task, that task runs again in a fresh process of its
own: if it was the cause, it fails there the same way and the failure is its own; if something
left over from an earlier one was, it is graded as if it had run alone.

Tasks:
- ``inspect``: every stage before trusted training, for one notebook (pipeline.inspect).
- ``prepare``: decode the data into the batch's cache (once per batch).
- ``train``: trusted training of one architecture (grader.training.job).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from grader.lazy import backend
from grader.proc import Resident, answer, run_answering, serve

log = logging.getLogger(__name__)
LOG_TAIL = 3000            # bytes of a failed task's own output kept for the message

_local = threading.local()
_residents: list[Resident] = []
_residents_lock = threading.Lock()


def run_task(kind: str, payload: Any, timeout: float) -> dict[str, Any]:
    """Run one task in a subprocess (grader.proc); never raises for what happens inside it."""
    finished = None
    if _in_resident(kind, payload):
        found, finished = run_answering(__name__, (kind, payload), timeout,
                                        resident=_resident())
        if finished.code not in (0, None):   # it died: run it again alone (module doc)
            log.info("the resident %s process died (%s); running the task again alone",
                     kind, finished.failure("it", timeout))
            finished = None
    if finished is None:
        found, finished = run_answering(__name__, (kind, payload), timeout,
                                        env=_env(kind, payload), tail=LOG_TAIL)
    if found is not None:
        return found
    failure = finished.failure(f"the {kind} step", timeout)
    if finished.code is not None and finished.code >= 0:
        failure += " and no answer"
    return {"failed": failure, "log": finished.output.strip(), "cause": _cause(kind, finished),
            "seconds": round(finished.seconds, 2)}


def _in_resident(kind: str, payload: Any) -> bool:
    """Inspections and data preparation, and a training on the resident's own backend,
    TensorFlow."""
    return kind != "train" or payload[1].backend == backend() == "tensorflow"


def _env(kind: str, payload: Any) -> dict[str, str]:
    """A training on JAX runs in a JAX process (grader.training.backend): the task process
    itself, not one more beneath it."""
    if kind == "train":
        from grader.training.backend import process_env
        return process_env(payload[1].backend, payload[1].deterministic)
    return {}


def _resident() -> Resident:
    """This thread's task interpreter (it dies with the thread)."""
    if not hasattr(_local, "resident"):
        _local.resident = Resident("grader.batch.tasks", tail=LOG_TAIL)
        with _residents_lock:
            _residents.append(_local.resident)
    return _local.resident


def close_residents() -> None:
    """Stop every thread's task interpreter (the end of a batch)."""
    with _residents_lock:
        for resident in _residents:
            resident.close()


def _cause(kind: str, finished) -> str:
    """Why a task gave no answer: its deadline, or its process died (for an inspection, the
    notebook's kernel took it down)."""
    if finished.code is None:
        return "timeout"
    return "kernel_died" if kind == "inspect" else "training_failed"


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
        result.timings = clock.timings
        executed = Path(out) / pipeline.EXECUTED_NAME
        text = executed.read_text(encoding="utf-8") if executed.is_file() else None
        return {"result": result.to_json(), "config": found.get("config"), "info": found.get("info"),
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
    from grader.training.job import trusted_training

    config, job = payload
    started = time.perf_counter()
    trained = trusted_training(config, job)
    return {**trained.to_json(), "seconds": round(time.perf_counter() - started, 2)}


def _run(spec_path: str) -> None:
    """One spec: its answer is written to the file it names."""
    answer(spec_path, _handle)


def _handle(task: tuple[str, Any]) -> dict[str, Any]:
    from grader.errors import GradingError

    kind, payload = task
    if "keras" in sys.modules:  # a resident: the previous spec's models and layer names go
        sys.modules["keras"].backend.clear_session()
    try:
        return {"inspect": _inspect, "prepare": _prepare, "train": _train}[kind](payload)
    except GradingError as exc:  # a message meant for the result as it is (e.g. --max-minutes)
        return {"failed": exc.message.rstrip("."), "cause": exc.info().cause}
    except Exception as exc:  # the driver turns this into an error result
        import traceback
        return {"failed": f"the {kind} step failed: {type(exc).__name__}: {exc}",
                "log": traceback.format_exc(limit=8)}


def _main(argument: str) -> int:
    from grader.lazy import quiet_libraries

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    if argument == "--serve":
        return serve(_run)
    _run(argument)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
