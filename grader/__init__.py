"""flowers-grader: grade 'convolutional flower classifier from scratch' notebooks.

The grading path (docs/grading.md) is one module per stage, chained by ``grader.pipeline``:
validate → execute → extract (``grader.kernel``) → rebuild → rules (``grader.model``) → train
(``grader.training``) → result. ``grader.batch`` grades a class. Nothing here imports TensorFlow
at import time.
"""

__version__ = "0.2.0"
