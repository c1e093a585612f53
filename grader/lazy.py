"""Import TensorFlow lazily and quietly.

TensorFlow 2.21 prints C++ start-up lines (oneDNN, CUDA probing) straight to file descriptor 2
before its logging is configured, whatever TF_CPP_MIN_LOG_LEVEL says. Students and instructors
should see the grader's messages, not those, so the first import runs with fd 2 pointed at
/dev/null. Every module of the grader gets TensorFlow through :func:`tensorflow`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (C and Python writes alike)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def backend() -> str:
    """The Keras backend of this process: KERAS_BACKEND (a JAX training process has it,
    grader.training.backend.process_env), else TensorFlow."""
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


def tensorflow() -> ModuleType:
    """The tensorflow module, imported (once) without its start-up chatter.

    The grader's TensorFlow runs one inter-op thread (ops themselves still use every core):
    Dropout layers share a random-state variable, and with several inter-op threads they draw
    from it in a different order each run, so trusted training would not be repeatable. The
    setting is only accepted before TensorFlow starts, hence here. It cost nothing measurable
    (59 vs 61 images/s, reference model, CPU).
    """
    if backend() != "tensorflow":  # GPU images and TPU VMs may have no TensorFlow at all
        raise RuntimeError(f"TensorFlow was asked for in a {backend()} process")
    with _importing:   # warm_up's thread may be importing it: wait for the whole module
        if "tensorflow" not in sys.modules:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            with silenced_stderr(), _without(KERAS_EXTRAS):
                import tensorflow as tf
                tf.config.threading.set_inter_op_parallelism_threads(1)
                tf.config.list_physical_devices("GPU")  # CUDA probing prints here, once
    return sys.modules["tensorflow"]


# Keras imports these at start-up when they are installed, for its scikit-learn wrappers,
# plotting utilities and DataFrame input, none of which the grader uses. They are installed
# beside it for the students' kernels (the runtime extra), and on two AVX2 cores they were 3 of
# the 9.5 s that importing TensorFlow and Keras takes in every grader process.
KERAS_EXTRAS = ("matplotlib", "sklearn", "pandas")


@contextlib.contextmanager
def _without(names: tuple[str, ...]) -> Iterator[None]:
    """Make ``names`` unimportable for the duration (libraries' optional imports then fall
    back); later imports of them work as usual."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "absent"
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]


_importing = threading.Lock()


def warm_up() -> None:
    """Import Keras in a background thread, while the student's kernel runs: the rebuild needs
    it next, and importing it takes seconds of one core (8 s on two AVX2 cores) that the kernel
    leaves free. Standard error is silenced meanwhile (:func:`tensorflow`), so call this only
    where the grader itself prints nothing until the kernel has finished."""
    def run() -> None:
        try:
            keras()
        except Exception:  # noqa: BLE001 - the rebuild imports it again and says what failed
            pass

    if "keras" not in sys.modules:
        threading.Thread(target=run, name="warm-up", daemon=True).start()


def keras() -> ModuleType:
    """The keras module (Keras 3), with TensorFlow as its backend unless KERAS_BACKEND names
    another (:func:`backend`)."""
    if backend() == "tensorflow":
        tensorflow()
    else:  # Keras imports TensorFlow where installed (to seed it): here it is not
        sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]
    with _without(KERAS_EXTRAS):
        import keras as keras_module
    return keras_module


def quiet_libraries() -> None:
    """Library warnings are not for students or instructors (:func:`tensorflow` quiets TF's
    C++ start-up)."""
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # nbclient logs a dead kernel or a timeout here too; the result's message says it better.
    logging.getLogger("traitlets").setLevel(logging.CRITICAL)
