"""The kernel's box as a command line: what bubblewrap is told to show, hide and limit.

No bwrap runs here: `bwrap_works` is patched to a path, as on a machine that has it, and the
grader's user id is patched where the command line depends on it (root or not).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from grader.errors import GradingError
from grader.kernel import sandbox
from grader.kernel.sandbox import ETC_FILES, ISOLATED, LIMITS_ONLY, Limits, isolation, warning, wrap

BWRAP = "/usr/bin/bwrap"
LIMITS = Limits(memory_bytes=4 << 30, max_processes=256, file_size_bytes=1 << 28,
                work_dir_bytes=123_456_789, cpu_seconds=600, output_bytes_per_cell=1 << 20)
COMMAND = ["/opt/python/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/work/home", "MPLBACKEND": "Agg"}
BIND_OPTIONS = ("--ro-bind", "--ro-bind-try", "--bind")


class Box:
    """The folders of one boxed kernel, and its command line."""

    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.runtime = root / "spec" / "run"
        self.data = root / "shards"
        self.private = root / "out"
        for folder in (self.work, self.runtime, self.data, self.private):
            folder.mkdir(parents=True)
        self.data.chmod(0o755)
        (self.data / "train-00.tfrec").write_bytes(b"shard")

    def args(self, level: str = ISOLATED) -> list[str]:
        return wrap(list(COMMAND), self.work, self.runtime, [self.data], dict(ENV), LIMITS,
                    level)


def bound(args: list[str], option: str) -> list[str]:
    """The sources of every ``option SRC DEST`` in the command line."""
    return [args[i + 1] for i, arg in enumerate(args) if arg == option]


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Box:
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: BWRAP)
    return Box(tmp_path)


@pytest.fixture(params=[0, 1000], ids=["as-root", "as-user"])
def euid(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: request.param)
    return request.param


def options(args: list[str]) -> list[str]:
    """bwrap's own options: everything before the first ``--``."""
    return args[:args.index("--")]


@pytest.mark.parametrize("level", [LIMITS_ONLY, "none"])
def test_without_bubblewrap_the_command_is_unchanged(box: Box, level: str) -> None:
    assert box.args(level) == COMMAND


def test_the_box_starts_bwrap_and_dies_with_the_grader(box: Box, euid: int) -> None:
    args = box.args()
    assert args[0] == BWRAP
    assert {"--die-with-parent", "--new-session"} <= set(options(args))


def test_the_box_has_no_network(box: Box, euid: int) -> None:
    namespaces = [a for a in options(box.args()) if a.startswith("--unshare")]
    if euid == 0:
        assert {"--unshare-net", "--unshare-pid", "--unshare-ipc"} <= set(namespaces)
    else:
        assert namespaces == ["--unshare-all"]


def test_the_environment_is_cleared_then_only_the_given_variables_are_set(
        box: Box, euid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWERS_GRADER_SECRET", "hunter2")
    args = options(box.args())
    setenv = [i for i, arg in enumerate(args) if arg == "--setenv"]
    assert setenv and args.index("--clearenv") < min(setenv)
    assert {args[i + 1]: args[i + 2] for i in setenv} == ENV
    assert not any("hunter2" in arg or "FLOWERS_GRADER_SECRET" in arg for arg in args)


def test_the_work_dir_is_a_tmpfs_of_the_limited_size(box: Box, euid: int) -> None:
    args = options(box.args())
    at = [i for i, arg in enumerate(args) if arg == "--tmpfs" and args[i + 1] == str(box.work)]
    assert len(at) == 1
    assert args[at[0] - 2:at[0]] == ["--size", str(LIMITS.work_dir_bytes)]
    assert args[args.index("--chdir") + 1] == str(box.work)
    assert str(box.work) not in [source for option in BIND_OPTIONS
                                 for source in bound(args, option)]


def test_the_shards_are_read_only_and_the_runtime_folder_is_the_only_bind(box: Box,
                                                                           euid: int) -> None:
    args = options(box.args())
    assert str(box.data.resolve()) in bound(args, "--ro-bind")
    assert bound(args, "--bind") == [str(box.runtime)]


def test_nothing_else_of_the_host_is_mounted(box: Box, euid: int) -> None:
    args = options(box.args())
    python = {str(Path(p).resolve()) for p in (sys.base_prefix, sys.prefix)}
    system = {"/usr"} | {f"/{link}" for link in ("bin", "sbin", "lib", "lib64", "lib32")}
    allowed = system | python | {str(box.data.resolve()), str(box.runtime)} | \
        {f"/etc/{name}" for name in ETC_FILES}
    sources = {source for option in BIND_OPTIONS for source in bound(args, option)}
    assert sources <= allowed
    assert not {"/", "/etc", "/root", "/home", str(box.private)} & sources


def test_etc_shadow_never_appears(box: Box, euid: int) -> None:
    args = box.args()
    assert not any(arg.startswith(("/etc/shadow", "/etc/gshadow")) for arg in args)
    assert "/etc" not in bound(args, "--ro-bind") + bound(args, "--bind")


def test_the_kernel_command_comes_last_after_the_separator(box: Box, euid: int,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(sandbox, "drops_root", lambda readable: False)
    args = box.args()
    assert args[args.index("--") + 1:] == COMMAND


def test_a_root_grader_drops_to_the_kernels_own_user(box: Box,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "drops_root", lambda readable: True)
    args = box.args()
    after = args[args.index("--") + 1:]
    uid = int(after[1].removeprefix("--reuid="))
    assert after == ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                     *COMMAND]
    assert uid >= sandbox.KERNEL_UIDS


def test_each_kernel_of_a_process_has_a_user_of_its_own() -> None:
    """A resident task process starts many kernels: a fork bomb's processes, still being killed,
    must not count against the next kernel's process limit."""
    uids = [sandbox.kernel_uid() for _ in range(3)]
    assert len(set(uids)) == 3 and min(uids) >= sandbox.KERNEL_UIDS
    assert max(uids) < 2**31 - 1


# Whether root is dropped: only when other users can read the shards


@pytest.fixture
def root_with_setpriv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(sandbox.shutil, "which",
                        lambda name: "/usr/bin/setpriv" if name == "setpriv" else real(name))


def test_root_is_dropped_when_others_can_read_the_shards(tmp_path: Path,
                                                         root_with_setpriv: None) -> None:
    (tmp_path / "a.tfrec").write_bytes(b"x")
    tmp_path.chmod(0o755)
    (tmp_path / "a.tfrec").chmod(0o644)
    assert sandbox.drops_root([tmp_path]) is True


@pytest.mark.parametrize("folder_mode, file_mode", [(0o700, 0o644), (0o755, 0o600)],
                         ids=["private-folder", "private-file"])
def test_root_is_kept_when_others_cannot_read_the_shards(tmp_path: Path, root_with_setpriv: None,
                                                         folder_mode: int,
                                                         file_mode: int) -> None:
    (tmp_path / "a.tfrec").write_bytes(b"x")
    (tmp_path / "a.tfrec").chmod(file_mode)
    tmp_path.chmod(folder_mode)
    try:
        assert sandbox.drops_root([tmp_path]) is False
    finally:
        tmp_path.chmod(0o755)


def test_a_grader_that_is_not_root_drops_nothing(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    tmp_path.chmod(0o755)
    assert sandbox.drops_root([tmp_path]) is False


# isolation() and warning()


def test_isolation_is_bubblewrap_when_bwrap_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: BWRAP)
    assert isolation(replace(LIMITS, require=True)) == ISOLATED


def test_a_required_sandbox_without_bwrap_is_a_sandbox_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: None)
    with pytest.raises(GradingError) as caught:
        isolation(replace(LIMITS, require=True))
    assert caught.value.stage == "sandbox"
    assert "install the Debian package `bubblewrap`" in caught.value.message


def test_without_bwrap_and_not_required_the_kernel_gets_limits_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bwrap_works", lambda: None)
    assert isolation(LIMITS) == LIMITS_ONLY


def test_limits_only_is_warned_about() -> None:
    [text] = warning(LIMITS_ONLY)
    assert "WITHOUT the bubblewrap sandbox" in text and "Install `bubblewrap`" in text


def test_a_box_run_by_a_user_has_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    assert warning(ISOLATED, [Path("/nonexistent")]) == []


@pytest.mark.parametrize("drops, warned", [(False, True), (True, False)])
def test_a_root_box_warns_only_when_it_cannot_drop_root(monkeypatch: pytest.MonkeyPatch,
                                                        drops: bool, warned: bool) -> None:
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox, "drops_root", lambda readable: drops)
    texts = warning(ISOLATED, [Path("/srv/shards")])
    assert bool(texts) is warned
    assert all("chmod -R o+rX" in text for text in texts)
