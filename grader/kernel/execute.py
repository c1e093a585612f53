"""Execute a submission in its own Jupyter kernel (nbclient) and take out its model's config.

The kernel is the only place student code runs. :func:`launch_kernel` is the one place a kernel
is started, so the sandbox can wrap it. What comes back is data: the executed notebook (for the
record) and the extraction payload, which the grader checks before believing any of it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader import cost
from grader.errors import GradingError
from grader.kernel import crash, failures, sandbox
from grader.kernel.inkernel import source
from grader.kernel.sandbox import Limits

log = logging.getLogger(__name__)

MODEL_MIME = "application/vnd.flowers-grader.model+json"
GRADER_TAG = "flowers-grader"       # tags the cells the grader adds
CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens there

@dataclass(frozen=True)
class Plan:
    """How to run one submission."""
    work_dir: Path                 # the kernel's working directory (its only writable place)
    parameters: dict[str, Any]     # injected after the cell tagged "parameters"
    runtime: dict[str, Any]        # the prelude's configuration (gs:// mirror, allowed magics)
    cell_timeout: int              # seconds per cell
    notebook_timeout: int          # seconds for the whole notebook
    record: Path | None = None     # where to save the executed notebook, failures marked
    limits: Limits | None = None   # resource limits and sandbox policy (None: none)
    readable: tuple[Path, ...] = ()  # folders the kernel may read (the shards)
    keep_going: bool = False       # run every cell even after one fails (grade check)
    offline: bool = False          # no network even unboxed, as far as proxies reach (grade check)


@dataclass
class Execution:
    """What came back from the kernel."""
    notebook: NotebookNode                  # the executed notebook, grader cells included
    cell_numbers: list[int | None]          # executed index → student's cell number (1-based)
    payload: dict[str, Any]                 # the extraction cell's output (untrusted)
    seconds: float
    warnings: list[str] = field(default_factory=list)
    # with keep_going: each student cell that failed, as grading would have said it
    failed: list[GradingError] = field(default_factory=list)


def _grader_cell(text: str, role: str) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(text)
    cell.metadata["tags"] = [GRADER_TAG, role]
    return cell


def prelude(runtime: dict[str, Any]) -> str:
    """The first cell: runtime emulation, configured by a literal the grader writes."""
    return (f"__flowers_grader_config = {runtime!r}\n"
            f"__flowers_grader_source = {source('runtime')!r}\n" + source("prelude"))


def prepare(notebook: NotebookNode, parameters: dict[str, Any], runtime: dict[str, Any]
            ) -> tuple[NotebookNode, list[int | None], list[str]]:
    """A copy of the notebook with the prelude, injected parameters and extraction cells.

    Returns the prepared notebook, the map from its cell index to the student's 1-based cell
    number (None for grader cells), and warnings.
    """
    prepared = copy.deepcopy(notebook)
    student = list(enumerate(prepared.cells, start=1))
    tagged = [n for n, cell in student if "parameters" in cell.get("metadata", {}).get("tags", [])]
    warnings = [] if tagged else [
        "No cell is tagged 'parameters': the grader set the data location and epoch count at "
        "the top, and the notebook's own values override them (its gs:// reads are served "
        "from the grader's copy of the data)."]
    after = tagged[0] if tagged else 0
    assignment = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cells: list[NotebookNode] = [_grader_cell(prelude(runtime), "prelude")]
    numbers: list[int | None] = [None]
    if after == 0:
        cells.append(_grader_cell(assignment, "injected-parameters"))
        numbers.append(None)
    for number, cell in student:
        cells.append(cell)
        numbers.append(number)
        if number == after:
            cells.append(_grader_cell(assignment, "injected-parameters"))
            numbers.append(None)
    cells.append(_grader_cell(source("extract"), "extract"))
    numbers.append(None)
    prepared.cells = cells
    return prepared, numbers, warnings


def kernel_env(work_dir: Path) -> dict[str, str]:
    """The kernel's whole environment: nothing from the grader's shell but PATH and locale."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(work_dir),
        "IPYTHONDIR": str(work_dir / ".ipython"),
        "MPLCONFIGDIR": str(work_dir / ".matplotlib"),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
        # A crash in native code prints every thread's Python stack to the kernel's stderr,
        # whose last lines the result keeps: the cell's line that crashed, not just a signal.
        "PYTHONFAULTHANDLER": "1",
        # The student's code never sees the accelerator trusted training uses (a JAX or
        # TensorFlow import would take its memory), boxed or not.
        "CUDA_VISIBLE_DEVICES": "",
        "JAX_PLATFORMS": "cpu",
    }


def launch_kernel(work_dir: Path, spec_dir: Path, plan: Plan | None = None):
    """Create the kernel manager for one submission. The one place a kernel is defined.

    The kernel is this interpreter's ipykernel, described by a private kernelspec, so that a
    kernelspec installed on the machine can never change which Python grades. In the sandbox
    (grader/kernel/sandbox.py) its command is wrapped in bwrap and it speaks to us over Unix
    sockets in ``spec_dir/run``, the only grader folder it sees.
    """

    from jupyter_client.kernelspec import KernelSpecManager

    limits = plan.limits if plan else None
    level = sandbox.isolation(limits) if limits else "none"
    cost.record({"kernel": level})
    runtime = spec_dir / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    # Native code's writes to the kernel's stdout and stderr go straight to its private log:
    # ipykernel would pass them through a pipe and a thread, and a kernel that aborts dies
    # before that thread has written its last words ("terminate called ...") anywhere.
    command = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
               "--IPKernelApp.capture_fd_output=False"]
    uid = sandbox.kernel_uid()
    if limits:
        command = sandbox.wrap(command, work_dir, runtime, list(plan.readable),
                               kernel_env(work_dir), limits, level, uid)
    if level == sandbox.ISOLATED and sandbox.drops_root(list(plan.readable)):
        os.chown(runtime, uid, uid)  # the kernel's user
    spec = spec_dir / "kernels" / "flowers-grader"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": command, "display_name": "flowers-grader", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir / "kernels")])
    # Unix sockets in a private folder, boxed or not: TCP ports are picked at random and
    # checked free before the kernel binds them, so kernels started side by side (a batch
    # without bubblewrap) could take each other's, and the grader then waited forever.
    options = {"connection_file": str(runtime / "kernel.json"), "transport": "ipc",
               "ip": str(runtime / "ipc")}
    return _manager_class()(kernel_name="flowers-grader", kernel_spec_manager=specs, **options)


def _manager_class():
    """Asynchronous: nbclient's per-cell deadline only fires while its event loop is free, and a
    blocking manager's clients block that loop while they wait for output. The connection file
    is made readable for the kernel's user (it sits in a folder only we and the box can see)."""
    from jupyter_client.manager import AsyncKernelManager

    class Manager(AsyncKernelManager):
        def write_connection_file(self, **kwargs):
            written = super().write_connection_file(**kwargs)
            os.chmod(self.connection_file, 0o644)
            return written

    return Manager


def _client_class():
    """nbclient's client with each cell's captured output capped (Limits.output_bytes_per_cell):
    a notebook that prints a gigabyte costs the grader that much reading, never memory."""
    from nbclient import NotebookClient

    class Client(NotebookClient):
        output_cap: int = 0
        _seen: dict

        def output(self, outs, msg, display_id, cell_index):
            if not self.output_cap:
                return super().output(outs, msg, display_id, cell_index)
            seen = self.__dict__.setdefault("_seen", {})
            size = len(json.dumps(msg.get("content", {}), default=str))
            used = seen.get(cell_index, 0)
            seen[cell_index] = used + size
            if used + size <= self.output_cap:
                return super().output(outs, msg, display_id, cell_index)
            if used <= self.output_cap:
                marker = nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[flowers-grader: output truncated after "
                         f"{self.output_cap:,} bytes]\n")
                outs.append(marker)
            return None

    return Client


def execute(notebook: NotebookNode, plan: Plan) -> Execution:
    """Run the prepared notebook top to bottom and return the extraction payload."""
    prepared, numbers, warnings = prepare(notebook, plan.parameters, plan.runtime)
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + plan.notebook_timeout
    current: dict[str, int] = {"index": 0}

    def on_cell_start(cell: NotebookNode, cell_index: int) -> None:
        current["index"] = cell_index

    def timeout_for(cell: NotebookNode) -> int:
        return max(1, min(plan.cell_timeout, int(deadline - time.monotonic())))

    with tempfile.TemporaryDirectory(prefix="flowers-grader-spec-") as private, \
            open(Path(private) / "kernel.log", "w+b") as kernel_log:
        km = launch_kernel(plan.work_dir, Path(private), plan)
        client = _client_class()(prepared, km=km, timeout_func=timeout_for,
                                 allow_errors=plan.keep_going, startup_timeout=120,
                                 on_cell_start=on_cell_start,
                                 resources={"metadata": {"path": str(plan.work_dir)}})
        client.output_cap = plan.limits.output_bytes_per_cell if plan.limits else 0
        limit = (lambda: sandbox.set_limits(plan.limits)) if plan.limits else None
        try:
            # The kernel's own stdout/stderr (not the cells' output) go to a private log.
            client.execute(env=_environment(plan), stdout=kernel_log, stderr=kernel_log,
                           preexec_fn=limit)
        except Exception as exc:  # nbclient's errors, and anything the kernel provoked
            raise failures.execution_error(exc, numbers, current["index"], deadline,
                                   crash.log_tail(kernel_log), km, plan.limits,
                                   notebook) from None
        finally:
            _shutdown(km)
            _record(prepared, plan.record)
    seconds = time.monotonic() - started
    failed = failures.failed_cells(prepared, numbers, deadline, notebook) if plan.keep_going else []
    try:
        payload = _payload(prepared.cells[-1])
    except GradingError:
        if not failed:
            raise
        payload = {}  # no model because a cell failed: the pipeline names that cell
    return Execution(prepared, numbers, payload, seconds, warnings, failed)


def _environment(plan: Plan) -> dict[str, str]:
    """The kernel's environment. An offline plan that runs without the box (grade check on a
    student's machine) points HTTP(S) at a closed local port: most libraries (urllib,
    requests, tensorflow_hub, keras' get_file) then fail as they do in the grader's box, where
    there is no network, instead of downloading what grading will not have."""
    env = kernel_env(plan.work_dir)
    boxed = plan.limits is not None and sandbox.isolation(plan.limits) == sandbox.ISOLATED
    if plan.offline and not boxed:
        env.update({name: CLOSED_PROXY for name in ("http_proxy", "https_proxy", "all_proxy",
                                                    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")})
        env.update({"no_proxy": "", "NO_PROXY": ""})
    return env


def _record(notebook: NotebookNode, path: Path | None) -> None:
    """Save the executed notebook (as far as it ran), like papermill's output notebook."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(path))
    except (OSError, ValueError) as exc:
        log.warning("could not save the executed notebook to %s: %s", path, exc)


def _shutdown(km) -> None:
    from jupyter_core.utils import run_sync

    try:
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception as exc:  # a kernel that is already gone is fine
        log.debug("kernel shutdown: %s", exc)


def _payload(cell: NotebookNode) -> dict[str, Any]:
    for output in cell.get("outputs", []):
        data = output.get("data", {}) if output.get("output_type") == "display_data" else {}
        if isinstance(data.get(MODEL_MIME), dict):
            return dict(data[MODEL_MIME])
    raise GradingError("extract", "The grader could not read the model out of the notebook's "
                       "kernel. Make sure no cell redefines display functions or exits the "
                       "kernel.")
