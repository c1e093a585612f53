"""Which accelerator trusted training runs on, and in which precision."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from grader.cost import cpu_description, cpuinfo_field
from grader.lazy import tensorflow

log = logging.getLogger(__name__)

# CPU flags (from /proc/cpuinfo) that mean native bfloat16 matrix multiplication.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Device:
    kind: str        # "tpu", "gpu" or "cpu"
    count: int       # replicas the strategy spreads over
    description: str
    precision: str   # Keras dtype policy: "mixed_bfloat16", "mixed_float16" or "float32"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The feature flags of the first CPU, or an empty set where /proc/cpuinfo is unreadable."""
    return set((cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_precision(flags: set[str]) -> str:
    """bfloat16 on CPUs that multiply it natively; float32 elsewhere (emulated bf16 is slower)."""
    return "mixed_bfloat16" if flags & BF16_CPU_FLAGS else "float32"


def gpu_precision(compute_capability: tuple[int, int] | None) -> str:
    """float16 mixed precision on GPUs with tensor cores (compute capability 7.0 and up)."""
    if compute_capability and compute_capability >= (8, 0):
        return "mixed_bfloat16"
    if compute_capability and compute_capability >= (7, 0):
        return "mixed_float16"
    return "float32"


def detect(precision: str = "auto"):
    """Find a TPU, else GPUs, else the CPU. Returns (Device, tf.distribute.Strategy)."""
    tf = tensorflow()

    tpu = _tpu()
    if tpu is not None:
        tf.config.experimental_connect_to_cluster(tpu)
        tf.tpu.experimental.initialize_tpu_system(tpu)
        strategy = tf.distribute.TPUStrategy(tpu)
        device = Device("tpu", strategy.num_replicas_in_sync, f"TPU {tpu.master()}",
                        _pick(precision, "mixed_bfloat16"))
    elif gpus := tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpus[0])
        strategy = (tf.distribute.MirroredStrategy() if len(gpus) > 1
                    else tf.distribute.get_strategy())
        device = Device("gpu", len(gpus), details.get("device_name", "GPU"),
                        _pick(precision, gpu_precision(details.get("compute_capability"))))
    else:
        flags = cpu_flags()
        strategy = tf.distribute.get_strategy()
        device = Device("cpu", 1, cpu_description(flags),
                        _pick(precision, cpu_precision(flags)))
    log.info("training on %s in %s", device.description, device.precision)
    return device, strategy


def _tpu():
    tf = tensorflow()

    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver()
    except (ValueError, RuntimeError, tf.errors.NotFoundError):
        return None


def _pick(requested: str, automatic: str) -> str:
    return automatic if requested == "auto" else requested

