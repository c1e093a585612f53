"""Which Keras backend trusted training runs on, and the process it runs in.

TensorFlow on CPUs: oneDNN is the fastest there (XLA on JAX ran the reference at 2.4 images/s on
a CPU where TensorFlow ran it at 68). JAX where JAX sees a GPU or TPU: TensorFlow's GPU build
is gigabytes, and TPU VMs are JAX-first. ``--backend`` overrides the choice. A JAX training
runs in a process of its own (KERAS_BACKEND=jax, no TensorFlow imported; grader.training.job), so the student's
kernel and the rest of the grader keep TensorFlow whatever the training backend is.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys

from grader.errors import GradingError

log = logging.getLogger(__name__)
BACKENDS = ("auto", "tensorflow", "jax")
# What JAX installs to see an accelerator: its GPU plugins (jax[cuda12], jax[cuda13], ROCm)
# register under this entry-point group; TPU VMs have libtpu.
PLUGIN_GROUP = "jax_plugins"
PROBE_TIMEOUT = 120


def choose(requested: str = "auto") -> str:
    """The backend for ``requested`` ("auto", "tensorflow" or "jax") on this machine."""
    if requested not in BACKENDS:
        raise GradingError("usage", f"Unknown backend {requested!r}: use one of "
                           f"{', '.join(BACKENDS)}.")
    if requested == "tensorflow":
        return "tensorflow"
    if requested == "jax":
        if not jax_installed():
            raise GradingError("usage", "The JAX backend was asked for, but JAX is not "
                               "installed here. Install it with `pip install "
                               "'flowers-grader[jax]'` (docs/accelerators.md), or use "
                               "--backend tensorflow.")
        return "jax"
    return "jax" if accelerator() else "tensorflow"


def jax_installed() -> bool:
    return importlib.util.find_spec("jax") is not None


@functools.cache
def accelerator() -> str | None:
    """"gpu" or "tpu" when JAX sees one, else None. JAX is asked in a subprocess (this process
    keeps TensorFlow, and JAX takes the accelerator's memory when it starts), and only where
    an accelerator plugin or libtpu is installed: a CPU-only machine pays nothing."""
    if not jax_installed():
        return None
    plugins = list(importlib.metadata.entry_points(group=PLUGIN_GROUP))
    if not plugins and importlib.util.find_spec("libtpu") is None:
        return None
    probe = ("import jax; print(jax.default_backend())")
    try:
        answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT, env={**os.environ, **process_env("jax")})
    except subprocess.TimeoutExpired:
        log.warning("asking JAX for its accelerator took over %d s: training on TensorFlow",
                    PROBE_TIMEOUT)
        return None
    platform = answer.stdout.strip().splitlines()[-1] if answer.stdout.strip() else ""
    found = {"gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}.get(platform)
    log.info("JAX's default backend: %s", platform or answer.stderr.strip()[-300:])
    return found


def process_env(backend: str, deterministic: bool | None = None) -> dict[str, str]:
    """The environment a training process on ``backend`` adds to this one's. JAX would take
    75% of a GPU's memory when it starts: trainings that share a GPU take what they use
    instead. ``deterministic`` turns on XLA's deterministic GPU ops (JAX repeats itself on
    CPUs and TPUs without it; TensorFlow's determinism is set in the process, train.py)."""
    if backend != "jax":
        return {"KERAS_BACKEND": backend}
    env = {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    if deterministic:
        flags = os.environ.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    return env
