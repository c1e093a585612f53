"""Grading a class: finding the students, the resumable batch driver, one process per task
(locally or on Dask), and the progress display."""
