"""Why a notebook could not be graded, as a short cause code (result.json's ``error.cause``) and,
for the causes an instructor can act on, a sentence saying how.

Each stage has its cause (grader.result.STAGE_CAUSES, the list of causes is there too); a
student's cell that raised is classified here from the exception's name and message: a missing
package or module, a data path the grading machine does not have, a network access, or anything
else (``cell_error``).
"""

from __future__ import annotations

import re

from grader.kernel.packages import runtime
from grader.kernel.static import Escape

NO_MODULE = re.compile(r"No module named '([^']+)'")
NETWORK = re.compile(r"URL fetch failure|Temporary failure in name resolution|Name or service "
                     r"not known|Network is unreachable|No address associated|Connection "
                     r"refused|Failed to establish a new connection|getaddrinfo failed|"
                     r"Max retries exceeded", re.IGNORECASE)
NETWORK_ERRORS = {"URLError", "HTTPError", "gaierror", "ConnectionError", "ConnectTimeout",
                  "ReadTimeout", "SSLError", "RemoteDisconnected", "TimeoutError"}
PATH_ERRORS = {"FileNotFoundError", "NotFoundError", "IsADirectoryError", "NotADirectoryError"}
PATH_MESSAGE = re.compile(r"No such file or directory|[Nn]o files? (?:matched|found)|"
                          r"does not exist|Could not find directory|not found: ")
DRIVE = "/content/drive"
OWN_ERROR = "fix it so the notebook runs top to bottom (Restart & Run All) before submitting."
PIP = re.compile(r"^pip3?\s+install\s+(.*)$|^python3?\s+-m\s+pip\s+install\s+(.*)$")


def for_cell(ename: str, evalue: str, escapes: list[Escape]) -> tuple[str, str]:
    """The cause of a cell that raised ``ename: evalue``, and what to do about it.
    ``escapes`` are the notebook's shell lines and magics (the skipped installs among them)."""
    module = NO_MODULE.search(evalue)
    if ename in ("ModuleNotFoundError", "ImportError") and module:
        installed = pip_installed(escapes).get(module.group(1).split(".")[0].lower())
        cause, advice = runtime().missing(module.group(1), installed is not None)
        if installed:
            advice = (f"Cell {installed.cell} installs it (`{installed.text}`), and installs "
                      f"do not run while grading. " + advice)
        return cause, advice
    if ename in NETWORK_ERRORS or NETWORK.search(evalue):
        return "network", ("The grading machine has no network: a notebook reads the "
                           "exercise's data from GCS_PATTERN. Instructors can serve a download "
                           "from a local copy (the exercise file's [downloads]).")
    if ename in PATH_ERRORS or PATH_MESSAGE.search(evalue):
        where = ("Google Drive is not mounted while grading. " if DRIVE in evalue else "")
        return "data_path", (f"{where}Only the exercise's data is served while grading: read "
                             f"it from GCS_PATTERN (or the gs:// folders the exercise file "
                             f"lists). Instructors can serve another folder with "
                             f"`--mirror PREFIX=DIR`.")
    return "cell_error", OWN_ERROR


def pip_installed(escapes: list[Escape]) -> dict[str, Escape]:
    """Package name (lower case, as imported or as pip knows it) → the shell line installing
    it."""
    found: dict[str, Escape] = {}
    for escape in escapes:
        match = PIP.match(escape.text.lstrip("!% "))
        if not match:
            continue
        for word in (match.group(1) or match.group(2)).split():
            if word.startswith("-"):
                continue
            name = re.split(r"[<>=!~\[;@ ]", word, maxsplit=1)[0].lower()
            for alias in {name, name.replace("-", "_"), *_imported_as(name)}:
                found.setdefault(alias, escape)
    return found


def _imported_as(requirement: str) -> list[str]:
    """The import names of a pip requirement the runtime knows (scikit-learn → sklearn)."""
    return [module.lower() for module, package in runtime().provided.items()
            if package.lower() == requirement]
