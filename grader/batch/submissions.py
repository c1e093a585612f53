"""Find the submissions of a class: a folder of notebooks, a folder of per-student folders, or
the .zip an LMS exports.

The student id rule (docs/batch.md):

- ``alice.ipynb`` at the top level is student ``alice``; ``bob/`` (any notebook inside, at any
  depth) is student ``bob``.
- Canvas names files ``name_123_456_file.ipynb`` (``name_late_…`` when late): the student is
  ``name``.
- A Gradescope export (``submission_metadata.yml`` beside ``submission_NNN/`` folders) names each
  folder's student by the submitters' SID, else e-mail, else name (``+``-joined for groups).
- A zip is unpacked first (safely: no absolute paths, no ``..``, no links, size and count
  limits); a single wrapper folder at the top is looked through.
- Hidden files, ``__MACOSX`` and ``.ipynb_checkpoints`` are ignored. Every other file that is not a
  notebook is reported: as the student's error when the student has no notebook, else as a
  warning beside the grade.
- A student with several notebooks is graded on the one named like the exercise's notebook;
  if none or several are, the result says which files were found and asks for one.
- An id becomes a folder name: characters outside ``A-Za-z0-9._@+-`` become ``_``, and a
  collision (``Bob`` and ``bob`` on a case-insensitive disk) gets ``-2``, ``-3``…
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GradingError

IGNORED = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
CANVAS = re.compile(r"^(?P<id>[^_]+)_(?:late_)?\d+_\d+_")
UNSAFE_ID = re.compile(r"[^A-Za-z0-9._@+-]+")
MAX_ZIP_BYTES = 5_000_000_000   # uncompressed
MAX_ZIP_MEMBERS = 20_000
MAX_ID = 64


@dataclass(frozen=True)
class Submission:
    """One student's submission."""
    student: str                  # a safe folder name, unique in the batch
    notebook: Path | None         # the notebook to grade; None when there is nothing to grade
    problem: str | None           # why there is nothing to grade
    source: str                   # the notebook (or folder) relative to SUBMISSIONS
    others: tuple[str, ...] = ()  # the student's files that are not graded

    @property
    def warnings(self) -> list[str]:
        if not self.others or self.notebook is None:
            return []
        return [f"{len(self.others)} other file(s) in the submission were not graded (only "
                f"the notebook is): {', '.join(self.others[:8])}."]


@dataclass(frozen=True)
class Found:
    submissions: list[Submission]
    notes: list[str]      # for the instructor: what was found but is no student's submission


def discover(submissions: Path, staging: Path, exclude: Path | None = None,
             notebook_name: str = "") -> Found:
    """Every student in ``submissions`` (folder or .zip), sorted by id."""
    notes: list[str] = []
    if submissions.is_file() and zipfile.is_zipfile(submissions):
        root, skipped = unpack(submissions, staging)
        exclude = None  # the staging folder may well be inside the output folder
        if skipped:
            notes.append(f"{len(skipped)} member(s) of {submissions.name} were not unpacked "
                         f"(absolute paths, '..' or links): {', '.join(skipped[:8])}")
    elif submissions.is_dir():
        root = submissions
    else:
        raise GradingError("usage", f"{submissions} is neither a folder nor a .zip file of "
                           f"submissions.")
    root = _through_wrappers(root, exclude)
    names = _gradescope_names(root)
    files: dict[str, list[tuple[Path, str]]] = defaultdict(list)
    for entry in _entries(root, exclude):
        if entry.is_dir():
            raw = names.get(entry.name, entry.name)
            files[raw] += [(p, p.relative_to(root).as_posix()) for p in walk(entry, exclude)]
        else:
            match = CANVAS.match(entry.name)
            files[match["id"] if match else entry.stem].append((entry, entry.name))
    found, taken = [], set()
    for raw in sorted(files, key=str.lower):
        found.append(choose(_unique(raw, taken), files[raw], notebook_name,
                             raw_name=raw))
    return Found(found, notes)


def choose(student: str, files: list[tuple[Path, str]], notebook_name: str,
            raw_name: str) -> Submission:
    notebooks = [(p, rel) for p, rel in files if p.suffix.lower() == ".ipynb"]
    others = tuple(sorted(rel for p, rel in files if p.suffix.lower() != ".ipynb"))
    if len(notebooks) > 1:
        named = [(p, rel) for p, rel in notebooks if p.name == notebook_name]
        if len(named) == 1:
            extra = tuple(sorted(rel for p, rel in notebooks if (p, rel) != named[0]))
            return Submission(student, named[0][0], None, named[0][1], extra + others)
        listed = ", ".join(sorted(rel for _, rel in notebooks))
        return Submission(student, None, (
            f"The submission holds {len(notebooks)} notebooks ({listed}) and the grader cannot "
            f"tell which to grade. Submit one notebook (or name it {notebook_name})."),
            raw_name, others)
    if notebooks:
        return Submission(student, notebooks[0][0], None, notebooks[0][1], others)
    listed = ", ".join(others[:8]) or "nothing"
    return Submission(student, None, (
        f"No Jupyter notebook was submitted (found: {listed}). Submit the .ipynb file itself "
        f"(in Jupyter or Colab: File → Download → .ipynb)."), others[0] if others else raw_name,
        others)


def safe_id(raw: str) -> str:
    """A student id usable as one folder name: never empty, '.', '..' or a path."""
    cleaned = UNSAFE_ID.sub("_", raw).strip("._-")[:MAX_ID]
    return cleaned or "student"


def _unique(raw: str, taken: set[str]) -> str:
    base = safe_id(raw)
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base}-{number}"
    taken.add(candidate.lower())
    return candidate


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name in IGNORED


def _excluded(path: Path, exclude: Path | None) -> bool:
    if exclude is None:
        return False
    try:
        path.resolve().relative_to(exclude.resolve())
        return True
    except ValueError:
        return False


def _entries(root: Path, exclude: Path | None) -> list[Path]:
    return sorted(p for p in root.iterdir()
                  if not _hidden(p) and not _excluded(p, exclude) and not p.is_symlink()
                  and p.name != "submission_metadata.yml")


def walk(folder: Path, exclude: Path | None = None) -> list[Path]:
    found = []
    for path in sorted(folder.iterdir()):
        if _hidden(path) or _excluded(path, exclude) or path.is_symlink():
            continue
        found += walk(path, exclude) if path.is_dir() else [path]
    return found


def _through_wrappers(root: Path, exclude: Path | None) -> Path:
    """An export zip often holds one folder holding everything: look through it."""
    for _ in range(3):
        entries = _entries(root, exclude)
        if len(entries) == 1 and entries[0].is_dir() and not (root / "submission_metadata.yml"
                                                              ).exists():
            inner = _entries(entries[0], exclude)
            if any(p.is_dir() for p in inner) or (entries[0] / "submission_metadata.yml"
                                                 ).exists():
                root = entries[0]
                continue
        break
    return root


def _gradescope_names(root: Path) -> dict[str, str]:
    """submission_NNN → the submitters' SID (else e-mail, else name), from Gradescope's export."""
    metadata = root / "submission_metadata.yml"
    if not metadata.is_file():
        return {}
    import yaml

    try:
        document = yaml.safe_load(metadata.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return {}
    names = {}
    for folder, entry in (document or {}).items() if isinstance(document, dict) else []:
        submitters = entry.get(":submitters") if isinstance(entry, dict) else None
        ids = [str(s.get(":sid") or s.get(":email") or s.get(":name") or "").strip()
               for s in submitters or [] if isinstance(s, dict)]
        if any(ids):
            names[str(folder)] = "+".join(i for i in ids if i)
    return names


def unpack(archive: Path, staging: Path) -> tuple[Path, list[str]]:
    """Unpack a submissions zip into ``staging`` (once per archive content), refusing members
    that would land outside it, links, and archives too large to be a class's notebooks."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    target = staging / f"{safe_id(archive.stem)}-{digest}"
    skipped_list = target / ".skipped-members"
    if target.is_dir():
        return target, (skipped_list.read_text().splitlines() if skipped_list.exists() else [])
    skipped = []
    partial = staging / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        if len(members) > MAX_ZIP_MEMBERS or \
                sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise GradingError("usage", f"{archive.name} holds {len(members)} files of "
                               f"{sum(m.file_size for m in members) / 1e9:.1f} GB unpacked; "
                               f"the limit is {MAX_ZIP_MEMBERS} files and "
                               f"{MAX_ZIP_BYTES / 1e9:.0f} GB.")
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            kind = stat.S_IFMT(member.external_attr >> 16)
            if name.startswith("/") or ".." in parts or not parts or kind == stat.S_IFLNK:
                skipped.append(name)
                continue
            destination = partial.joinpath(*parts)
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
    (partial / skipped_list.name).write_text("\n".join(skipped))
    partial.rename(target)
    return target, skipped
