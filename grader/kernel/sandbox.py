"""The box the student's kernel runs in: bubblewrap when it is there, resource limits always.

Under bubblewrap (``bwrap``) the kernel has:

- its own network namespace with nothing in it (``--unshare-net``): it talks to the grader over
  Unix sockets (Jupyter's ``ipc`` transport) in a private folder, not over TCP;
- its own PID, IPC and UTS namespaces, and it dies with the grader (``--die-with-parent``);
- a root made of read-only system folders (``/usr`` and the links into it), the Python it runs
  on, a few files of ``/etc`` that programs need (never ``/etc/shadow``), a fresh ``/tmp`` and
  ``/dev``;
- the training shards read-only, at the path the runtime emulation maps;
- one writable folder, its work directory: a tmpfs of bounded size;
- nothing else of the host: not other submissions, the output folders, the exercise file,
  ``--test-data`` or any home directory; and only the environment variables the grader sets.

When the grader runs as root the kernel also drops to a user id of its own inside the box
(:func:`kernel_uid`), so the process limit counts its processes alone.

Limits (``[sandbox]`` in the exercise file) are set with setrlimit on the box's first process
and inherited by everything in it: memory (RLIMIT_DATA: heap and private writable mappings),
processes (RLIMIT_NPROC, so a fork bomb stops), file size, CPU seconds and no core dumps.

Memory is limited with RLIMIT_DATA, not RLIMIT_AS. The address space of a TensorFlow kernel is
half again larger than the memory it uses, and by an amount that depends on the host (thread
stacks and malloc arenas per thread, shared libraries, reserved but unused regions): a codelab
SqueezeNet notebook measured 6.3 GiB of address space for 4.2 GiB of data and 4.1 GiB resident.
Under an address-space limit a kernel that fits in memory can still fail an allocation inside
TensorFlow's C++ code, which then aborts (SIGABRT, "std::bad_alloc"): the kernel dies in the
middle of a working notebook. Output is capped per cell by the execute
step, and the time limits by nbclient.

Without bwrap (not installed, or user namespaces refused) the kernel runs with the limits only;
``result.json`` records ``isolation: "limits-only"`` and a warning says so, unless the sandbox is
required (``--require-sandbox``), which makes that an error instead.
"""

from __future__ import annotations

import functools
import itertools
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GradingError

KERNEL_UIDS = 200_000   # kernels run as 200000 + 1000 x (grading process id % 100000) + n
KERNELS_PER_PROCESS = 1000   # the n-th kernel a process starts (grader.proc recycles before)
ETC_FILES = ("ld.so.cache", "localtime", "nsswitch.conf", "passwd", "group", "hosts",
             "fonts", "ssl/certs", "matplotlibrc")


@dataclass(frozen=True)
class Limits:
    memory_bytes: int          # heap and private writable memory of each kernel process
    max_processes: int         # processes and threads of the kernel's user
    file_size_bytes: int       # the largest file the kernel may write
    work_dir_bytes: int        # the whole work directory (tmpfs size under bwrap)
    cpu_seconds: int           # CPU time of each kernel process
    output_bytes_per_cell: int  # captured output kept per cell; the rest is cut with a marker
    require: bool = False      # refuse to grade without bubblewrap
    shm_bytes: int = 256 << 20  # /dev/shm in the box (POSIX semaphores and shared memory)


ISOLATED, LIMITS_ONLY = "bubblewrap", "limits-only"


@functools.lru_cache(maxsize=1)
def bwrap_works() -> str | None:
    """The bwrap path if a trivial box starts here, else None (missing, or namespaces refused).

    FLOWERS_GRADER_BWRAP names another bwrap binary, or ``none`` to grade without it.
    """
    chosen = os.environ.get("FLOWERS_GRADER_BWRAP", "bwrap")
    path = None if chosen == "none" else shutil.which(chosen)
    if path is None:
        return None
    probe = [path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


def isolation(limits: Limits) -> str:
    """The isolation this machine gives; raises when the sandbox is required and missing."""
    if bwrap_works():
        return ISOLATED
    if limits.require:
        raise GradingError("sandbox", "The sandbox is required (--require-sandbox) but "
                           "bubblewrap cannot run here: install the Debian package "
                           "`bubblewrap` and allow user namespaces, or grade without "
                           "--require-sandbox.")
    return LIMITS_ONLY


def warning(level: str, readable: list[Path] | None = None) -> list[str]:
    if level == ISOLATED:
        if os.geteuid() == 0 and not drops_root(readable or []):
            return ["The kernel ran in the sandbox as root, because other users cannot read "
                    "the shards folder: the process limit could not apply. Instructors: "
                    "`chmod -R o+rX` the data folder."]
        return []
    return ["The kernel ran WITHOUT the bubblewrap sandbox (bwrap is missing or cannot start "
            "here): it had the grader's view of the files and the network, limited only in "
            "memory, processes, file size and time. Install `bubblewrap` to isolate it."]


def set_limits(limits: Limits) -> None:
    """In the box's first process, before exec: the resource limits everything inherits."""
    for kind, value in ((resource.RLIMIT_DATA, limits.memory_bytes),
                        (resource.RLIMIT_NPROC, limits.max_processes),
                        (resource.RLIMIT_FSIZE, limits.file_size_bytes),
                        (resource.RLIMIT_CPU, limits.cpu_seconds),
                        (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass  # a hard limit already lower than ours stays


def wrap(command: list[str], work_dir: Path, runtime_dir: Path, readable: list[Path],
         env: dict[str, str], limits: Limits, level: str, uid: int | None = None) -> list[str]:
    """The kernel's command line, boxed at ``level``; ``uid`` is the user it drops to, as root
    (a new one, :func:`kernel_uid`, when not given)."""
    if level != ISOLATED:
        return command
    bwrap = bwrap_works()
    assert bwrap is not None
    root = os.geteuid() == 0
    # As root, no user namespace: the kernel then drops to a real unprivileged uid (below).
    namespaces = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                  "--unshare-cgroup-try"] if root else ["--unshare-all"]
    args = [bwrap, "--die-with-parent", "--new-session", *namespaces,
            "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "sbin", "lib", "lib64", "lib32"):
        target = Path("/") / link
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # bwrap's /dev/shm belongs to root: multiprocessing's locks (tqdm, joblib, scikit-learn)
    # need it writable by the kernel's user.
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size",
             str(limits.shm_bytes), "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
    python = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    shown = sorted(python | {p.resolve() for p in readable})
    # bwrap would make the folders above a mount point 0700, which the kernel's user could not
    # cross: make them first, traversable.
    parents = sorted({parent for path in [*shown, work_dir, runtime_dir]
                      for parent in Path(path).parents if parent not in (Path("/"),)})
    for parent in parents:
        if str(parent) not in ("/usr", "/tmp", "/proc", "/dev") and \
                not any(parent == p or p in parent.parents for p in shown):
            args += ["--perms", "0755", "--dir", str(parent)]
    for folder in shown:
        args += ["--ro-bind", str(folder), str(folder)]
    args += ["--perms", "1777", "--size", str(limits.work_dir_bytes), "--tmpfs", str(work_dir),
             "--bind", str(runtime_dir), str(runtime_dir), "--chdir", str(work_dir),
             "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args.append("--")
    if drops_root(readable):  # an unprivileged user of its own, no groups, inside the box
        uid = kernel_uid() if uid is None else uid
        args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return args + command


_kernels = itertools.count()


def kernel_uid() -> int:
    """A new kernel's own user id. RLIMIT_NPROC counts a user's processes machine-wide, so each
    kernel needs a user of its own: otherwise one student's fork bomb would use up the process
    limit of every kernel graded beside it, or after it by the same process, while its
    processes are still being killed (or, on a host whose init does not reap, for good)."""
    return KERNEL_UIDS + (os.getpid() % 100_000) * KERNELS_PER_PROCESS \
        + next(_kernels) % KERNELS_PER_PROCESS


def drops_root(readable: list[Path]) -> bool:
    """Whether the boxed kernel drops root: when the grader is root and any user can read
    the shards (``chmod -R o+rX`` them otherwise). As root in the box the kernel still sees
    only the box, but the kernel ignores RLIMIT_NPROC for root, so a fork bomb then runs until
    the cell's time limit."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None and \
        all(_others_can_read(Path(p)) for p in readable)


def _others_can_read(folder: Path) -> bool:
    try:
        if folder.stat().st_mode & 0o005 != 0o005:
            return False
        return all(p.stat().st_mode & 0o004 for p in folder.iterdir() if p.is_file())
    except OSError:
        return False
