"""The exercises that ship with the grader, installed as ``grader.exercises``: one folder per
exercise, with its exercise.toml and the student notebook (docs/packaging.md). No reference
solution belongs here."""
