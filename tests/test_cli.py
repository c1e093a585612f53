"""The command line: help without TensorFlow, usage errors, exit codes."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, run_grade


def test_help_does_not_import_tensorflow() -> None:
    # `grade --help` must answer at once: nothing on the way imports TensorFlow or Keras.
    code = ("import sys; from grader.cli import cli; "
            "sys.argv = ['grade', '--help']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    process = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert "notebook" in process.stdout and "reference" in process.stdout
    assert "LOADED []" in process.stdout


def test_every_command_has_help() -> None:
    for command in (["notebook"], ["reference"], ["demo"], ["data", "synth"],
                    ["data", "import"]):
        process = run_grade(*command, "--help")
        assert process.returncode == 0, process.stderr
        assert "Usage:" in process.stdout


def test_missing_option_is_a_usage_error(tmp_path) -> None:
    process = run_grade("notebook", tmp_path / "x.ipynb")
    assert process.returncode == 2
    assert "--data" in process.stderr
    assert "Traceback" not in process.stderr


def test_unknown_profile_is_a_usage_error(tmp_path) -> None:
    process = run_grade("notebook", tmp_path / "x.ipynb", "--data", tmp_path, "--out",
                        tmp_path / "out", "--profile", "turbo")
    assert process.returncode == 2
    assert "Unknown profile 'turbo'" in process.stderr
    assert "full" in process.stderr and "quick" in process.stderr
