"""Finding a class's submissions in folders and LMS exports, on temporary folders."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.batch.submissions import Found, Submission, discover, safe_id, unpack
from grader.errors import GradingError

NOTEBOOK_NAME = "flowers-cnn.ipynb"


def notebook(path: Path, text: str = "x = 1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = nbformat.v4.new_notebook()
    document.cells = [nbformat.v4.new_code_cell(text)]
    nbformat.write(document, str(path))
    return path


def other(path: Path, content: bytes = b"%PDF-1.4") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def find(root: Path, tmp_path: Path) -> Found:
    return discover(root, tmp_path / "staging", notebook_name=NOTEBOOK_NAME)


def by_student(found: Found) -> dict[str, Submission]:
    return {s.student: s for s in found.submissions}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "submissions"
    folder.mkdir()
    return folder


def test_a_top_level_notebook_is_named_by_its_file(root: Path, tmp_path: Path) -> None:
    path = notebook(root / "alice.ipynb")
    assert find(root, tmp_path).submissions == [
        Submission("alice", path, None, "alice.ipynb")]


def test_a_folder_is_a_student_with_the_notebook_at_any_depth(root: Path,
                                                              tmp_path: Path) -> None:
    path = notebook(root / "bob" / "work" / "final" / "flowers.ipynb")
    notebook(root / "carol.ipynb")
    bob = by_student(find(root, tmp_path))["bob"]
    assert (bob.notebook, bob.source, bob.problem) == (path, "bob/work/final/flowers.ipynb", None)


@pytest.mark.parametrize("name", ["smithj_123_456_flowers-cnn.ipynb",
                                  "smithj_late_123_456_flowers-cnn-1.ipynb"])
def test_a_canvas_file_name_gives_the_student_before_the_numbers(name: str, root: Path,
                                                                 tmp_path: Path) -> None:
    notebook(root / name)
    [submission] = find(root, tmp_path).submissions
    assert submission.student == "smithj" and submission.source == name


def test_a_canvas_students_files_are_one_submission(root: Path, tmp_path: Path) -> None:
    notebook(root / "smithj_123_456_flowers-cnn.ipynb")
    other(root / "smithj_123_457_report.pdf")
    [submission] = find(root, tmp_path).submissions
    assert submission.others == ("smithj_123_457_report.pdf",)
    assert "1 other file(s)" in submission.warnings[0]


GRADESCOPE = """\
submission_101:
  :submitters:
  - :name: Ann Lee
    :sid: 'S-101'
    :email: ann@uni.edu
submission_102:
  :submitters:
  - :name: Bo Wu
    :email: bo@uni.edu
submission_103:
  :submitters:
  - :name: Cy Ng
    :sid: 'S-103'
  - :name: Di Oh
    :sid: 'S-104'
submission_104:
  :submitters:
  - :name: Ed Fox
"""


def test_a_gradescope_export_names_students_by_sid_then_email_then_name(
        root: Path, tmp_path: Path) -> None:
    (root / "submission_metadata.yml").write_text(GRADESCOPE)
    for number in (101, 102, 103, 104, 105):
        notebook(root / f"submission_{number}" / "flowers.ipynb")
    assert [s.student for s in find(root, tmp_path).submissions] == [
        "bo@uni.edu", "Ed_Fox", "S-101", "S-103+S-104", "submission_105"]


def test_a_gradescope_export_in_a_wrapper_folder_is_looked_through(root: Path,
                                                                   tmp_path: Path) -> None:
    export = root / "assignment_9_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text(GRADESCOPE)
    notebook(export / "submission_101" / "flowers.ipynb")
    [submission] = find(root, tmp_path).submissions
    assert submission.student == "S-101"
    assert submission.source == "submission_101/flowers.ipynb"


def test_hidden_files_macosx_and_checkpoints_are_ignored(root: Path, tmp_path: Path) -> None:
    path = notebook(root / "alice" / "flowers.ipynb")
    notebook(root / "alice" / ".ipynb_checkpoints" / "flowers-checkpoint.ipynb")
    other(root / "alice" / ".DS_Store", b"\0")
    notebook(root / "__MACOSX" / "alice" / "._flowers.ipynb")
    notebook(root / ".hidden.ipynb")
    other(root / ".~lock.bob.ipynb#", b"")
    notebook(root / "bob.ipynb")
    found = find(root, tmp_path)
    assert [s.student for s in found.submissions] == ["alice", "bob"]
    assert by_student(found)["alice"] == Submission("alice", path, None, "alice/flowers.ipynb")


def test_a_student_with_only_a_pdf_gets_a_problem_naming_it(root: Path, tmp_path: Path) -> None:
    other(root / "carol" / "notebook.pdf")
    [submission] = find(root, tmp_path).submissions
    assert submission.notebook is None and submission.student == "carol"
    assert submission.problem.startswith("No Jupyter notebook was submitted (found: "
                                         "carol/notebook.pdf)")
    assert ".ipynb" in submission.problem and submission.warnings == []


def test_several_notebooks_choose_the_one_named_like_the_exercise(root: Path,
                                                                  tmp_path: Path) -> None:
    chosen = notebook(root / "dan" / NOTEBOOK_NAME)
    notebook(root / "dan" / "scratch.ipynb")
    other(root / "dan" / "notes.txt", b"notes")
    [submission] = find(root, tmp_path).submissions
    assert submission.notebook == chosen and submission.problem is None
    assert submission.others == ("dan/scratch.ipynb", "dan/notes.txt")
    assert "2 other file(s)" in submission.warnings[0]


def test_several_notebooks_none_named_like_the_exercise_ask_for_one(root: Path,
                                                                    tmp_path: Path) -> None:
    notebook(root / "eve" / "v1.ipynb")
    notebook(root / "eve" / "v2.ipynb")
    [submission] = find(root, tmp_path).submissions
    assert submission.notebook is None
    assert "2 notebooks (eve/v1.ipynb, eve/v2.ipynb)" in submission.problem
    assert NOTEBOOK_NAME in submission.problem


def test_ids_that_collide_get_numbered(root: Path, tmp_path: Path) -> None:
    notebook(root / "Bob" / "flowers.ipynb")
    notebook(root / "bob.ipynb")
    notebook(root / "a b.ipynb")
    notebook(root / "a_b.ipynb")
    found = find(root, tmp_path).submissions
    assert [(s.student, s.source) for s in found] == [
        ("a_b", "a b.ipynb"), ("a_b-2", "a_b.ipynb"), ("Bob", "Bob/flowers.ipynb"),
        ("bob-2", "bob.ipynb")]


def test_submissions_are_sorted_by_id_ignoring_case(root: Path, tmp_path: Path) -> None:
    for name in ("zoe", "Adam", "mia"):
        notebook(root / f"{name}.ipynb")
    assert [s.student for s in find(root, tmp_path).submissions] == ["Adam", "mia", "zoe"]


def test_the_output_folder_inside_the_submissions_is_excluded(root: Path,
                                                              tmp_path: Path) -> None:
    notebook(root / "alice.ipynb")
    notebook(root / "graded" / "alice" / "executed.ipynb")
    found = discover(root, tmp_path / "staging", exclude=root / "graded",
                     notebook_name=NOTEBOOK_NAME)
    assert [s.student for s in found.submissions] == ["alice"]


def test_a_path_that_is_neither_folder_nor_zip_is_a_usage_error(root: Path,
                                                                tmp_path: Path) -> None:
    with pytest.raises(GradingError) as caught:
        find(other(root / "class.tar"), tmp_path)
    assert caught.value.stage == "usage" and "class.tar" in caught.value.message


@pytest.mark.parametrize("raw, expected", [
    ("alice", "alice"), ("ann.lee@uni.edu", "ann.lee@uni.edu"), ("S-1+S-2", "S-1+S-2"),
    ("../../etc/passwd", "etc_passwd"), ("javascript:alert(1)", "javascript_alert_1"),
    ("Zoë Ångström", "Zo_ngstr_m"), ("..", "student"), ("", "student"), ("x" * 100, "x" * 64),
])
def test_safe_id_makes_one_folder_name(raw: str, expected: str) -> None:
    assert safe_id(raw) == expected


# LMS zips


def _zip(path: Path, members: dict[str, str]) -> Path:
    text = nbformat.writes(nbformat.v4.new_notebook())
    with zipfile.ZipFile(path, "w") as bundle:
        for name, content in members.items():
            bundle.writestr(name, content or text)
    return path


def _with_link(path: Path) -> Path:
    with zipfile.ZipFile(path, "a") as bundle:
        link = zipfile.ZipInfo("class/mallory/flowers.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    return path


def test_a_zip_refuses_members_that_would_leave_the_staging_folder(tmp_path: Path) -> None:
    archive = _with_link(_zip(tmp_path / "class.zip", {
        "class/alice/flowers.ipynb": "", "../escape.ipynb": "", "/abs/escape.ipynb": "",
        "class/bob/../../../escape2.ipynb": "", "class/carol.ipynb": ""}))
    staging = tmp_path / "staging"
    target, skipped = unpack(archive, staging)
    assert sorted(skipped) == sorted(["../escape.ipynb", "/abs/escape.ipynb",
                                      "class/bob/../../../escape2.ipynb",
                                      "class/mallory/flowers.ipynb"])
    assert target.parent == staging
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.ipynb")) == [
        "class/alice/flowers.ipynb", "class/carol.ipynb"]
    assert not list(tmp_path.glob("escape*")) and not (tmp_path / "abs").exists()
    assert not any(p.is_symlink() for p in target.rglob("*"))


def test_a_zip_is_unpacked_once_per_content(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "class.zip", {"alice.ipynb": "", "../x.ipynb": ""})
    first = unpack(archive, tmp_path / "staging")
    (first[0] / "marker").write_text("kept")
    assert unpack(archive, tmp_path / "staging") == first
    assert (first[0] / "marker").exists()


def test_a_zip_is_discovered_through_its_wrapper_and_its_refusals_noted(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "export.zip", {"export/alice/flowers.ipynb": "",
                                             "export/bob/flowers.ipynb": "",
                                             "../escape.ipynb": ""})
    found = discover(archive, tmp_path / "staging", exclude=tmp_path,
                     notebook_name=NOTEBOOK_NAME)
    assert [s.student for s in found.submissions] == ["alice", "bob"]
    assert len(found.notes) == 1 and "../escape.ipynb" in found.notes[0]
    assert "1 member(s) of export.zip were not unpacked" in found.notes[0]
