"""What a kernel that died left behind: how its process ended (a signal, or an exit code), what
that signal usually means, and the last words it wrote to its stderr, or the crashing thread's
stack from Python's fault handler. The result keeps them, so a death says its cause."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from grader.kernel.sandbox import Limits

# ipykernel's start-up banner: how to connect to it (a temporary path), never the cause.
KERNEL_BANNER = re.compile(r"NOTE: When using the `ipython kernel` entry point.*?--existing \S+",
                           re.DOTALL)
# TensorFlow's and absl's info and warning lines, and its complaint that this machine has no
# CUDA: clocks and process ids, never the cause. Other error and fatal lines ("F0000 ... Check
# failed") are what a dying kernel says last, and stay.
LIBRARY_LOG = re.compile(r"^([IW]\d{4} \d\d:\d\d:\d+\.\d+ |E\d{4} [\d:. ]+\d+ cuda_\S+\] |"
                         r"WARNING: All log messages before absl|"
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] )")


def log_tail(log_file, limit: int = 2000) -> str:
    """The end of what the kernel process wrote to its own stderr (crash messages), without
    TensorFlow's and absl's log lines: they carry clocks and process ids, not the cause. After
    a crash in native code, Python's fault handler report instead: the crashing thread's stack."""
    log_file.flush()
    start = max(0, log_file.seek(0, 2) - 32 * limit)
    log_file.seek(start)
    lines = log_file.read().decode("utf-8", "replace").splitlines()[1 if start else 0:]
    kept = [line for line in lines if not LIBRARY_LOG.match(line)]
    text = KERNEL_BANNER.sub("", "\n".join(kept)).strip()
    crash = crashed_thread(text)
    # A crash report reads from the top (the native words, then the innermost frames).
    return crash[:limit] if crash else text[-limit:]


def crashed_thread(text: str) -> str | None:
    """From faulthandler's report ("Fatal Python error: Segmentation fault", then every
    thread's stack), the lines native code wrote just before it, the error line, and one
    stack: the crashing thread's when it runs Python ("Current thread"), else the kernel's
    main thread, which shows the line of the cell that was running."""
    start = text.rfind("Fatal Python error:")
    if start < 0:
        return None
    before = text[:start].strip().splitlines()[-4:]
    header, *blocks = text[start:].split("\n\n")
    threads = [block for block in blocks if "(most recent call first)" in block]
    chosen = next((b for b in threads if b.startswith("Current thread")), None) or \
        next((b for b in threads if "ipykernel_launcher" in b), None) or \
        (threads[0] if threads else "")
    return "\n".join([*before, header, "", chosen]).strip()


# What a signal that ends a kernel says about the cause, for the student and the instructor.
# {memory}, {cpu} and {file} are the sandbox's limits ("12 GiB "), or nothing without them.
SIGNAL_CAUSES = {
    "SIGKILL": "it was killed: out of memory, or stopped from outside",
    "SIGSEGV": "it crashed: a segmentation fault in native code, often TensorFlow's C++ using an "
               "allocation that failed under the kernel's {memory}memory limit, else a bug in "
               "a native library",
    "SIGBUS": "it crashed: a bus error, memory that could not be read",
    "SIGABRT": "it aborted: usually native code (TensorFlow's C++) whose allocation failed "
               "under the kernel's {memory}memory limit, else a library's failed check",
    "SIGXCPU": "it used up its {cpu}CPU-time limit",
    "SIGXFSZ": "it wrote a file larger than the {file}file-size limit",
    "SIGILL": "it ran an instruction this CPU does not have",
    "SIGFPE": "it crashed: an arithmetic fault in native code",
}


@dataclass(frozen=True)
class Ending:
    """How the kernel's process ended: a signal's name, or an exit code."""
    signal: str | None
    exit_code: int | None

    def describe(self, limits: Limits | None = None) -> str:
        if self.signal:
            cause = SIGNAL_CAUSES.get(self.signal, "it was ended by a signal").format(
                memory=f"{_gib(limits.memory_bytes)} " if limits else "",
                cpu=f"{limits.cpu_seconds} s " if limits else "",
                file=f"{_gib(limits.file_size_bytes)} " if limits else "")
            return f"signal {self.signal}: {cause}"
        return f"its process exited with code {self.exit_code} (the notebook may have " \
               f"called exit() or os._exit())"


def _gib(size: int) -> str:
    return f"{size / 2**30:.3g} GiB"


def ended_by(km) -> Ending | None:
    """The kernel process's end, read from its manager; None while it runs or is unknown.

    Under bubblewrap the process is bwrap, which exits with 128 + the signal that ended the
    kernel; a plain kernel's return code is minus the signal."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    try:
        code = process.wait(timeout=5) if process is not None else None
    except Exception:  # still running, or not a Popen
        return None
    if code is None or code == 0:
        return None
    number = -code if code < 0 else code - 128 if code > 128 else None
    if number is None:
        return Ending(None, code)
    try:
        return Ending(signal.Signals(number).name, None)
    except ValueError:
        return Ending(f"signal {number}", None)
