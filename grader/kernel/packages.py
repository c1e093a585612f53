"""The student runtime (grader/kernel/runtime.toml): what a notebook may import without
installing it, which versions are installed here, and what a missing import means.

The runtime is the `runtime` extra of the grader's own environment, where the kernel runs: the
kernel needs the grader's exact TensorFlow and Keras (the grader rebuilds the config the
kernel's Keras wrote), and a second environment would install TensorFlow twice. The grader's
own code imports none of the extra's packages.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

RUNTIME_FILE = Path(__file__).resolve().parent / "runtime.toml"


@dataclass(frozen=True)
class Runtime:
    provided: dict[str, str]       # import name → pip requirement
    not_provided: dict[str, str]   # import name → why not
    support: dict[str, str] = field(default_factory=dict)  # requirement → which needs it

    def versions(self) -> dict[str, str | None]:
        """pip requirement → installed version (None: missing, an installation problem)."""
        found = {}
        for requirement in sorted({*self.provided.values(), *self.support}, key=str.lower):
            try:
                found[requirement] = metadata.version(requirement)
            except metadata.PackageNotFoundError:
                found[requirement] = None
        return found

    def fingerprint(self) -> str:
        """Changes when the list or an installed version changes (grade batch's resume key)."""
        text = json.dumps([self.provided, self.not_provided, self.support, self.versions()],
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def missing(self, module: str, installed: bool = False) -> tuple[str, str]:
        """What a ModuleNotFoundError for ``module`` means: a cause code and a sentence.
        ``installed``: the notebook pip-installs it, so it is a package, not a helper file."""
        top = module.split(".")[0]
        add = ("Instructors: a package is added to the runtime in grader/kernel/runtime.toml "
               "and pyproject.toml's `runtime` extra.")
        if top in self.not_provided:
            return "missing_package", (
                f"`{top}` is not provided on this grading machine ({self.not_provided[top]}). "
                f"The grader's runtime has: {', '.join(sorted(self.provided))}.")
        if top in self.provided:
            return "missing_package", (
                f"`{module}` should be installed here (it is in the grader's runtime, "
                f"`{self.provided[top]}`) but is not: tell your instructor, who can reinstall "
                f"the grader with its runtime (make install).")
        if installed:
            return "missing_package", f"`{top}` is not in the grader's runtime. {add}"
        return "missing_module", (
            f"`{top}` is neither in the grader's runtime nor a package it knows. If it is a "
            f"helper file of yours, paste its code into the notebook: only the notebook is "
            f"submitted. {add}")


@cache
def runtime() -> Runtime:
    document = tomllib.loads(RUNTIME_FILE.read_text(encoding="utf-8"))
    return Runtime(dict(document["provided"]), dict(document["not_provided"]),
                   dict(document.get("support", {})))
