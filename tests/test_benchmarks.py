"""The benchmark suite's own arithmetic and command line (the suite itself is run by hand:
`python -m benchmarks`, minutes; `--full`, about 1 h 30 min)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import table
from benchmarks.suite import Record
from conftest import ROOT


def test_forward_flops_counts_every_convolution_and_dense_layer() -> None:
    from benchmarks.probes import forward_flops
    from grader.lazy import keras as keras_module
    keras = keras_module()

    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(8, 3, padding="same"),                 # 32x32 out
        keras.layers.MaxPooling2D(2),
        keras.layers.SeparableConv2D(16, 3, padding="valid"),      # 14x14 out
        keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),  # 14x14, 32 ch
        keras.layers.Conv2D(12, 1, groups=4),                      # 14x14, grouped 1x1
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(5, activation="softmax"),
    ])
    macs = (32 * 32 * 9 * 3 * 8              # conv
            + 14 * 14 * (9 * 8 + 8 * 16)     # separable: depthwise, then pointwise
            + 14 * 14 * 9 * 16 * 2           # depthwise, multiplier 2
            + 14 * 14 * 32 * 12 // 4         # grouped
            + 12 * 5)                        # dense
    assert forward_flops(model) == 2 * macs


def test_the_table_shows_each_ratio_against_its_target() -> None:
    record = Record("full", ratios={"grading_vs_notebook": 0.55, "overhead_share": 0.021,
                                    "training_vs_bf16_gemm": 0.61, "batch_vs_serial": 0.27,
                                    "bf16_vs_f32_accuracy_gap": -0.004})
    lines = table(record).splitlines()
    row = {line.split("  ")[0].strip(): line for line in lines}
    assert "0.550" in row["(a) grading / notebook as written"]
    assert "MISSED" in row["(a) grading / notebook as written"]
    assert "ok" in row["(c) overhead share of grading"]
    assert "MISSED" in row["(b) trusted training / bf16 matmul"]
    assert "ok" in row["accuracy: bf16 - float32"]
    assert "0.270" in row["(d) batch / N x one submission"]
    small = table(Record("small", ratios=record.ratios))
    assert "MISSED" not in small and "targets apply to --full" in small
    assert record.as_dict().keys() >= {"grading_vs_notebook", "overhead_share",
                                       "training_vs_bf16_gemm", "batch_vs_serial",
                                       "bf16_vs_f32_accuracy_gap"}


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--data", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "no .tfrec shards there" in done.stderr
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "--full" in done.stdout and "--json FILE" in done.stdout


def test_the_onednn_profile_adds_up_primitives_between_the_markers() -> None:
    from benchmarks.probes import ONEDNN_END, ONEDNN_START, onednn_profile

    def line(kind: str, propagation: str, ms: float) -> str:  # as oneDNN 3 writes them
        return (f"onednn_verbose,v1,primitive,exec,cpu,{kind},brg_conv_fwd:avx512_core_bf16,"
                f"{propagation},src:bf16::blocked:acdb::f0 dst:bf16::blocked:acdb::f0,"
                f"attr-post-ops:eltwise_relu,alg:convolution_direct,mb32_ic3oc16_ih192oh192,{ms}")

    header = ("onednn_verbose,v1,primitive,info,template:operation,engine,primitive,"
              "implementation,prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,"
              "exec_time")
    lines = [header, line("convolution", "forward_training", 500.0),  # warm-up: not counted
             ONEDNN_START,
             line("convolution", "forward_training", 10.0),
             line("convolution", "backward_weights", 12.5),
             line("pooling", "forward_training", 1.0),
             line("convolution", "forward_training", 14.0),
             line("convolution", "backward_weights", 12.5),
             "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src dst,,,16x3,garbled",
             ONEDNN_END,
             line("convolution", "forward_training", 900.0),             # after: not counted
             '{"logged_step_ms": 80.5}']
    found = onednn_profile(lines, steps=2)
    assert found["primitives_ms_per_step"] == 25.0
    assert found["logged_step_ms"] == 80.5
    assert found["by_kind"][0] == {"primitive": "convolution backward_weights",
                                   "ms_per_step": 12.5, "calls_per_step": 1}
    assert {row["primitive"]: row["ms_per_step"] for row in found["by_kind"]} == {
        "convolution backward_weights": 12.5, "convolution forward_training": 12.0,
        "pooling forward_training": 0.5}
