"""The acceptance runs of issue 2: the reference passes and the untouched student notebook does
not, on synthetic data with the quick profile; and the reference earns 75% on the real photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED_PHOTOS, STUDENT_NOTEBOOK, Graded, run_grade

pytestmark = [pytest.mark.kernel, pytest.mark.training]


def test_reference_passes_on_synthetic_data(quick_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "R"
    graded = Graded(run_grade("reference", "--data", quick_data, "--out", out,
                              "--profile", "quick"), out)
    assert graded.exit_code == 0, (graded.stdout, graded.stderr)
    result = graded.result
    assert result["status"] == "graded" and result["passed"] is True
    assert result["accuracy"] >= 0.75
    assert all(check["passed"] for check in result["checks"])
    assert result["model"]["variable"] == "model"
    assert 250_000 < result["model"]["params"] < 350_000
    training = result["training"]
    assert training["val_accuracy"] == result["accuracy"] and training["test_accuracy"] is None
    assert len(training["history"]["val_accuracy"]) == 8
    assert training["device"] and training["precision"] in ("mixed_bfloat16", "float32")
    assert (out / "report.html").read_text().count("Passed") >= 1


def test_untouched_student_notebook_is_graded_and_fails(quick_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "S"
    graded = Graded(run_grade("notebook", STUDENT_NOTEBOOK, "--data", quick_data, "--out", out,
                              "--profile", "quick"), out)
    assert graded.exit_code == 1, (graded.stdout, graded.stderr)
    result = graded.result
    assert result["status"] == "graded" and result["passed"] is False
    assert result["error"] is None
    assert result["accuracy"] < 0.6
    assert result["model"]["params"] == 533
    assert 0 < result["score"] < 100
    # It passes every rule; its accuracy falls short, and the report says what to try next.
    assert all(check["passed"] is True for check in result["checks"])
    hints = {hint["id"]: hint["message"] for hint in result["hints"]}
    assert "too_few_params" in hints and "533 parameters" in hints["too_few_params"]
    assert "533 parameters" in (out / "report.html").read_text()


def test_test_data_decides_the_verdict(quick_data: Path, small_data: Path,
                                       tmp_path: Path) -> None:
    out = tmp_path / "T"
    graded = Graded(run_grade("notebook", STUDENT_NOTEBOOK, "--data", quick_data, "--out", out,
                              "--profile", "smoke", "--test-data", small_data), out)
    training = graded.result["training"]
    assert training["test_accuracy"] is not None
    assert graded.result["accuracy"] == training["test_accuracy"]
    assert sum(map(sum, training["test"]["confusion"])) == 160


@pytest.mark.real_photos
@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="../shared/flowers-photos is absent")
def test_reference_earns_the_target_on_real_photos(tmp_path: Path) -> None:
    real = tmp_path / "REAL"
    process = run_grade("data", "import", SHARED_PHOTOS, "--out", real)
    assert process.returncode == 0, process.stderr
    out = tmp_path / "R"
    graded = Graded(run_grade("reference", "--data", real, "--out", out), out)
    result = graded.result
    print(f"real photos, full profile: val_accuracy {result['training']['val_accuracy']}, "
          f"{result['timings']}")
    assert graded.exit_code == 0, (graded.stdout, graded.stderr)
    assert result["passed"] is True and result["profile"] == "full"
    assert result["training"]["val_accuracy"] >= 0.75
