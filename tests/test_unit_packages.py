"""The student runtime is one list (grader/kernel/runtime.toml): pyproject.toml installs exactly
it, `grade runtime` prints it with what is installed, and its fingerprint moves when it changes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from grader.kernel.packages import Runtime, runtime

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_pyproject_installs_exactly_the_runtime() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extra = {_name(r) for r in project["optional-dependencies"]["runtime"]}
    provided = {_name(r) for r in [*runtime().provided.values(), *runtime().support]}
    assert extra <= provided, "the runtime extra installs what runtime.toml does not list"
    assert provided <= core | extra, "runtime.toml lists what pyproject.toml does not install"
    assert not set(runtime().provided) & set(runtime().not_provided)


def test_every_package_of_the_runtime_is_installed_here() -> None:
    assert {name: version for name, version in runtime().versions().items()
            if version is None} == {}


def test_the_fingerprint_moves_with_the_list() -> None:
    base = Runtime({"numpy": "numpy"}, {"torch": "big"})
    assert base.fingerprint() == Runtime({"numpy": "numpy"}, {"torch": "big"}).fingerprint()
    assert base.fingerprint() != Runtime({"numpy": "numpy", "tqdm": "tqdm"},
                                         {"torch": "big"}).fingerprint()


def test_grade_runtime_prints_the_list_with_versions(grade_here) -> None:
    process = grade_here("runtime")
    assert process.returncode == 0, process.stderr
    versions = runtime().versions()
    assert f"  sklearn: scikit-learn {versions['scikit-learn']}" in process.stdout
    assert "  torch: PyTorch is gigabytes" in process.stdout
    assert "NOT INSTALLED" not in process.stdout
