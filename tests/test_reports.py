"""Reports and the class dashboard in a real headless browser (Debian's chromium,
driven by Playwright), XSS, exports, and byte-identical `grade render`; the dashboard's
similar-submissions section."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from conftest import ROOT, grade_concurrently, run_grade
from grader.exercise import load_exercise
from grader.result import Check, ErrorInfo, Result, blank
from reports.dashboard import context
from reports.render import render_dashboard

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "build" / "test-artifacts"   # screenshots, kept out of the source tree
XSS = "<img src=x onerror=alert(1)>"

# Layer names, a shell line (shown in warnings) and the file name carry markup and scripts.
EVIL_CELLS = [
    "!echo \"<script>alert('shell')</script>\"",
    "import keras\nfrom keras import layers\n"
    "model = keras.Sequential([keras.Input((192, 192, 3)),\n"
    f"    layers.Conv2D(16, 3, strides=2, activation='relu', name='{XSS}'),\n"
    "    layers.MaxPooling2D(2, name='svg onload=alert(2)'),\n"
    "    layers.Conv2D(32, 3, activation='relu', name='javascript:alert(3)'),\n"
    "    layers.GlobalAveragePooling2D(), layers.Dense(5, activation='softmax')],\n"
    "    name='<b>evil<b>')",
]


@pytest.fixture(scope="session")
def batch(tmp_path_factory: pytest.TempPathFactory, small_data: Path) -> Path:
    """A batch folder: one real hostile submission and one real broken one, graded side by
    side, then rendered."""
    import nbformat

    root = tmp_path_factory.mktemp("batch")
    notebooks = tmp_path_factory.mktemp("submissions")
    sources = {f"javascript:alert(4) {XSS}": EVIL_CELLS, "broken": ["raise ValueError('<b>x')"]}
    jobs = {}
    for student, cells in sources.items():
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        path = notebooks / f"{student}.ipynb"
        nbformat.write(notebook, str(path))
        jobs[student] = (root / student, ["notebook", path, "--data", small_data, "--out",
                                          root / student, "--profile", "smoke"])
    for graded in grade_concurrently(jobs).values():
        assert graded.result is not None, graded.stderr
    assert run_grade("render", root).returncode == 0
    return root


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".ipynb"}


def test_render_is_byte_identical(batch: Path, tmp_path: Path) -> None:
    before = _digests(batch)
    copy = tmp_path / "copy"
    shutil.copytree(batch, copy)
    for path in copy.rglob("*"):
        if path.is_file() and path.name != "result.json" and path.suffix != ".ipynb":
            path.unlink()
    process = run_grade("render", copy)
    assert process.returncode == 0 and "rendered 2 result(s)" in process.stdout
    assert _digests(copy) == before


def test_render_needs_results(tmp_path: Path) -> None:
    process = run_grade("render", tmp_path)
    assert process.returncode == 2 and "No result.json" in process.stderr


def test_gradescope_results_follow_the_spec(batch: Path) -> None:
    for folder in batch.iterdir():
        if not folder.is_dir():
            continue
        document = json.loads((folder / "results.json").read_text())
        result = json.loads((folder / "result.json").read_text())
        assert {"score", "execution_time", "output", "visibility", "tests",
                "leaderboard"} <= set(document)
        assert document["score"] == result["score"]
        assert isinstance(document["execution_time"], int)
        for test in document["tests"]:
            assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)
            assert test["status"] in ("passed", "failed")
            assert 0 <= test["score"] <= test["max_score"]
        assert sum(t["max_score"] for t in document["tests"]) == pytest.approx(100)
        assert sum(t["score"] for t in document["tests"]) == pytest.approx(document["score"])
        assert document["leaderboard"][0]["name"] == "Accuracy"


def test_grades_csv_and_junit(batch: Path) -> None:
    rows = list(csv.DictReader((batch / "grades.csv").open()))
    assert [r["student_id"] for r in rows] == sorted(r["student_id"] for r in rows)
    assert set(rows[0]) == {"student_id", "score", "max_score", "percent", "status", "passed",
                            "accuracy", "params", "seconds"}
    statuses = {r["student_id"]: r["status"] for r in rows}
    assert statuses["broken"] == "error"
    suites = ElementTree.parse(batch / "junit.xml").getroot()
    assert len(suites.findall("testsuite")) == 2
    for suite in suites.findall("testsuite"):
        result = json.loads((batch / suite.get("name") / "result.json").read_text())
        assert int(suite.get("tests")) == len(result["checks"]) + 1


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it "
                    "(scripts/system-deps.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"script ran: {d.message}"), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_report_in_a_browser(browser, batch: Path) -> None:
    folder = next(p for p in batch.iterdir() if p.name.startswith("javascript"))
    page, problems = _open(browser, folder / "report.html")
    for selector in ("#verdict", "#checks", "#curves svg circle.val", "#confusion", "#layers",
                     "#samples img", "#warnings"):
        assert page.locator(selector).first.is_visible(), selector
    assert page.locator("#layers").inner_text().count(XSS) == 1  # shown as text
    assert page.locator("img[onerror]").count() == 0
    assert "<script>alert('shell')</script>" in page.locator("#warnings").inner_text()
    # The curves are lines: a filled polyline draws a coloured area under each curve.
    painted = page.locator("#curves polyline").evaluate_all(
        "lines => lines.map(l => [getComputedStyle(l).fill, getComputedStyle(l).stroke])")
    assert len(painted) == 4 and all(fill == "none" and stroke.startswith("rgb")
                                     for fill, stroke in painted), painted
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert problems == []


def test_error_report_in_a_browser(browser, batch: Path) -> None:
    page, problems = _open(browser, batch / "broken" / "report.html")
    assert page.locator("#error-message").is_visible()
    assert "ValueError: <b>x" in page.locator("#error-message").inner_text()
    assert page.locator("b").count() == 0
    assert problems == []


def test_dashboard_in_a_browser_sorts_and_links(browser, batch: Path) -> None:
    page, problems = _open(browser, batch / "index.html")
    for selector in ("#counts", "#histogram svg", "#scatter svg", "#submissions"):
        assert page.locator(selector).is_visible(), selector
    first = lambda: page.locator("#submissions tbody tr").first.locator("td").first.inner_text()
    assert first() == "broken"
    page.locator("#submissions th", has_text="Score").click()
    page.locator("#submissions th", has_text="Score").click()  # descending
    assert first().startswith("javascript:alert(4)")
    hrefs = page.locator("#submissions a").evaluate_all("links => links.map(a => a.href)")
    assert all(h.startswith("file://") and h.endswith("/report.html") for h in hrefs)
    assert page.locator("#scatter a").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert problems == []


def test_rendering_never_imports_tensorflow(batch: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    copy = tmp_path / "copy"
    shutil.copytree(batch, copy)
    code = ("import sys; from grader.cli import main; sys.argv = ['grade', 'render', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    process = subprocess.run([sys.executable, "-c", code, str(copy)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert "rendered 2 result(s)" in process.stdout and "LOADED []" in process.stdout


# Similar submissions. Rendering reads result.json alone, so these results are written directly
# (from the grader's own blank result, so every field is there) instead of grading and training: the
# architecture hash is what `grade notebook` records for a model, whatever its layer names.
SAME_MODEL, OTHER_MODEL = "0123456789abcdef", "fedcba9876543210"
STARTER = "print('the notebook as handed out')"


def _submission(student: str, notebook: str | None, architecture: str | None = None,
                params: int | None = None, model_name: str = "sequential") -> Result:
    """A result as `grade notebook` writes it; no architecture means no model was extracted,
    no notebook that there was none to hash (a missing file)."""
    exercise = load_exercise()
    digest = hashlib.sha256(notebook.encode()).hexdigest() if notebook is not None else None
    result = blank(student, f"{student}.ipynb", digest, exercise, exercise.profile("smoke"))
    if architecture is not None:
        result.model.name, result.model.params = model_name, params
        result.model.architecture = architecture
        result.status, result.accuracy, result.score = "graded", 0.5, 60.0
        result.timings = {"total": 1.0}
    return result


def test_dashboard_groups_shared_architectures_and_identical_notebooks() -> None:
    entries = [
        ("zoe", _submission("zoe", "zoe's own", SAME_MODEL, 1000)),
        ("yann", _submission("yann", "yann's own", SAME_MODEL, 1000, "renamed")),
        ("xia", _submission("xia", "xia's own", SAME_MODEL)),
        ("carol", _submission("carol", "carol's own", OTHER_MODEL, 2000)),
        ("ann", _submission("ann", "ann's own", OTHER_MODEL, 2000)),
        ("bob", _submission("bob", STARTER)),
        ("dan", _submission("dan", STARTER)),
        ("eve-1", _submission("eve", "eve's first", "1111222233334444")),
        ("eve-2", _submission("eve", "eve's second", "1111222233334444")),
        ("old", _submission("old", None)),
        ("older", _submission("older", None)),
    ]
    drawn = context(entries)
    architectures = drawn["similarity"]["architectures"]
    assert [(g["id"], g["students"], g["params"]) for g in architectures] == [
        ("A1", ["xia", "yann", "zoe"], 1000),    # largest first
        ("A2", ["ann", "carol"], 2000),          # eve graded twice is not a group
    ]
    assert architectures[0]["key"] == SAME_MODEL and architectures[0]["short"] == "01234567"
    notebooks = drawn["similarity"]["notebooks"]
    assert [(g["id"], g["students"]) for g in notebooks] == [("N1", ["bob", "dan"])]
    assert notebooks[0]["key"] == hashlib.sha256(STARTER.encode()).hexdigest()
    badges = {row["folder"]: row["group"] for row in drawn["rows"]}
    assert badges == {"zoe": "A1", "yann": "A1", "xia": "A1", "carol": "A2", "ann": "A2",
                      "bob": None, "dan": None, "eve-1": None, "eve-2": None,
                      "old": None, "older": None}


def test_dashboard_without_similar_submissions_has_no_section() -> None:
    html = render_dashboard([("ann", _submission("ann", "ann's own", SAME_MODEL, 10)),
                             ("bob", _submission("bob", "bob's own", OTHER_MODEL, 10)),
                             ("old", _submission("old", None))])
    assert "Similar submissions" not in html and 'id="similar"' not in html


def _rendered(folder: Path, results: list[Result]) -> Path:
    """``folder`` as `grade batch` leaves it (one sub-folder per student), rendered."""
    for result in results:
        (folder / result.student).mkdir()
        (folder / result.student / "result.json").write_text(
            json.dumps(result.to_json(), indent=2))
    process = run_grade("render", folder)
    assert process.returncode == 0, process.stderr
    return folder


@pytest.fixture
def similar_batch(tmp_path: Path) -> Path:
    """A rendered batch: a hostile name and alice share a model under different names, bob and
    carol handed in the same untouched notebook (no model), dave is on his own."""
    results = [_submission(XSS, "x's own", SAME_MODEL, 12345, "<b>mine</b>"),
               _submission("alice", "alice's own", SAME_MODEL, 12345, "alices_cnn"),
               _submission("bob", STARTER), _submission("carol", STARTER),
               _submission("dave", "dave's own", OTHER_MODEL, 999)]
    return _rendered(tmp_path, results)


def _groups_shown(page, table: str) -> list[tuple[str, list[str]]]:
    return [(row.locator("td").first.inner_text(), row.locator(".student").all_inner_texts())
            for row in page.locator(f"{table} tbody tr").all()]


def test_dashboard_in_a_browser_shows_similar_submissions(browser, similar_batch: Path) -> None:
    page, problems = _open(browser, similar_batch / "index.html")
    section = page.locator("#similar")
    assert section.is_visible() and section.locator("h2").inner_text() == "Similar submissions"
    assert "coincidence" in section.inner_text() and "deserve a look" in section.inner_text()
    assert _groups_shown(page, "#same-architecture") == [("A1", [XSS, "alice"])]
    assert _groups_shown(page, "#same-notebook") == [("N1", ["bob", "carol"])]
    assert page.locator("#same-architecture tbody td.n").inner_text() == "12,345"
    badges = {row.locator("a").inner_text(): row.locator(".badge").all_inner_texts()
              for row in page.locator("#submissions tbody tr").all()}
    assert badges == {XSS: ["A1"], "alice": ["A1"], "bob": [], "carol": [], "dave": []}
    assert page.locator("img, b").count() == 0  # the hostile name is text, not markup
    assert XSS not in (similar_batch / "index.html").read_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-similar.png"), full_page=True)
    assert problems == []


@pytest.fixture
def causes_batch(tmp_path: Path) -> Path:
    """A rendered batch whose errors have several causes (written as `grade batch` writes them),
    beside a graded and a rejected submission."""
    errors = {"gil": ("missing_package", "Cell 2 raised ModuleNotFoundError: No module named "
                                         "'torch' — `torch` is not provided"),
              "hal": ("missing_package", "Cell 1 raised ModuleNotFoundError: No module named "
                                         "'kaggle_datasets'"),
              "ivy": ("data_path", "Cell 4 raised FileNotFoundError: '/content/drive/x.csv'"),
              XSS: ("network", "Cell 8 raised URLError: <b>no network</b>")}
    results = []
    for student, (cause, message) in errors.items():
        result = _submission(student, f"{student}'s own")
        result.fail(ErrorInfo("execute", message, 2, cause=cause))
        results.append(result)
    results.append(_submission("ann", "ann's own", SAME_MODEL, 1000))
    rejected = _submission("bob", "bob's own")
    rejected.status = "rejected"
    rejected.checks = [Check("max_params", False, "At most 3,000,000 parameters.", "4M", "x")]
    results.append(rejected)
    return _rendered(tmp_path, results)


def test_dashboard_in_a_browser_counts_the_causes_and_says_why(browser, causes_batch: Path
                                                               ) -> None:
    page, problems = _open(browser, causes_batch / "index.html")
    counts = [[cell.inner_text() for cell in row.locator("td").all()[:2]]
              for row in page.locator("#cause-counts tbody tr").all()]
    assert counts == [["missing_package", "2"], ["data_path", "1"], ["network", "1"]]
    why = {row.locator("a").inner_text(): row.locator("td.why").inner_text()
           for row in page.locator("#submissions tbody tr").all()}
    assert why == {
        "gil": "missing_package: Cell 2 raised ModuleNotFoundError: No module named 'torch' — "
               "`torch` is not provided",
        "hal": "missing_package: Cell 1 raised ModuleNotFoundError: No module named "
               "'kaggle_datasets'",
        "ivy": "data_path: Cell 4 raised FileNotFoundError: '/content/drive/x.csv'",
        XSS: "network: Cell 8 raised URLError: <b>no network</b>",
        "ann": "", "bob": "broke max_params"}
    assert page.locator("img, b").count() == 0  # student text stays text
    assert problems == []
