"""grader.cost: the projection of a training from its first steps, the limit, the host's name,
and the ledger the test suite reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import _slow_host_suite
from grader import cost


def _projection(rate: float = 10.0, epochs: int = 20, steps: int = 60, batch: int = 32,
                forward: int = 450, setup: float = 30.0) -> cost.Projection:
    return cost.project(rate, 5, epochs, steps, batch, forward, setup, "a CPU, float32")


def test_the_projection_is_set_up_plus_training_plus_forward_passes() -> None:
    projection = _projection()
    per_epoch = (60 * 32 + 450 * cost.FORWARD_SHARE) / 10.0
    assert projection.projected_seconds == pytest.approx(30.0 + 20 * per_epoch, abs=0.1)


def test_the_projection_scales_inversely_with_the_measured_speed() -> None:
    slow, fast = _projection(rate=11.0, setup=0.0), _projection(rate=44.0, setup=0.0)
    assert slow.projected_seconds == pytest.approx(4 * fast.projected_seconds, rel=1e-3)


@pytest.mark.parametrize("limit, over", [(None, False), (1000.0, False), (1.0, True)])
def test_a_projection_exceeds_only_a_limit_it_is_over(limit: float | None, over: bool) -> None:
    assert cost.exceeds(_projection(), limit) is over


def test_the_too_slow_message_names_the_speed_the_limit_and_what_to_do() -> None:
    message = cost.too_slow_message(_projection(rate=11.04), 30)
    assert "11.0 images/s measured on a CPU, float32" in message
    assert "more than the 30 minutes allowed (by --max-minutes" in message
    assert "a GPU" in message and "shorter profile" in message


def test_the_line_says_speed_host_images_and_duration() -> None:
    line = _projection(rate=11.0, epochs=20, steps=60, batch=32).line()
    assert line.startswith("trusted training: 11.0 images/s measured on a CPU, float32")
    assert "20 epochs, 38,400 training images" in line
    assert line.endswith(cost.duration(_projection(rate=11.0).projected_seconds) + " in all")


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (200, "3 min 20 s"),
                                           (3900, "1 h 05 min")])
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert cost.duration(seconds) == text


def test_the_cpu_is_described_by_model_cores_and_speed_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu avx2 sse2\n")
    described = cost.cpu_description({"fpu", "avx2", "sse2"}, cpuinfo)
    assert described.startswith("AMD EPYC 7B13, ") and described.endswith(" cores, avx2")
    assert cost.cpu_model(tmp_path / "missing") == "unknown CPU"
    assert cost.cpu_description(set(), cpuinfo).endswith("no AVX2")


def test_the_ledger_gets_one_line_per_record_and_nothing_without_its_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(cost.LEDGER_VARIABLE, str(ledger))
    cost.record({"images": 64})
    cost.record({"kernel": "bubblewrap"})
    assert [json.loads(line) for line in ledger.read_text().splitlines()] == [
        {"images": 64}, {"kernel": "bubblewrap"}]
    monkeypatch.delenv(cost.LEDGER_VARIABLE)
    cost.record({"images": 1})
    assert len(ledger.read_text().splitlines()) == 2


def test_one_reader_gives_each_field_of_the_first_cpu(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2\n\n"
                       "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    assert cost.cpuinfo_field("model name", cpuinfo) == "AMD EPYC 7B13"
    assert cost.cpuinfo_field("flags", cpuinfo) == "fpu avx2"
    assert cost.cpuinfo_field("microcode", cpuinfo) is None
    assert cost.cpuinfo_field("flags", tmp_path / "missing") is None


def test_the_suite_projected_on_the_slow_host_leaves_out_the_calibrated_full_run() -> None:
    """The end-of-run account's projection for the AVX2-only host."""
    trainings = [   # the short check here at 55 images/s, a small model, the calibrated full run
        {"profile": "short", "params": 294_343, "images": 1_100, "seconds": 30.0,
         "fit_seconds": 20.0},
        {"profile": "smoke", "params": 533, "images": 100, "seconds": 2.0, "fit_seconds": 1.0},
        {"profile": "full", "params": 294_343, "images": 38_400, "seconds": 500.0,
         "fit_seconds": 480.0}]
    line = _slow_host_suite(trainings, wall=1_200.0)
    # the rest: 1,200 - 532 s; the short check: 1,100 images at 11/s + its 10 s of set-up; the
    # small model 5 times slower (55 / 11); the full run left out: 668 + 110 + 10 = 788 s
    assert line.startswith("the suite: 20.0 min here")
    assert "AVX2-only host: 13.1 min" in line and "times as long" not in line
    # from the kind of host the rest was measured against: the rest 668 s x 2.2 + 120 s
    line = _slow_host_suite(trainings, wall=1_200.0, flags=frozenset({"avx2", "avx512_bf16"}))
    assert "AVX2-only host: 13.1 min" in line
    assert "with the rest 2.2 times as long" in line and ": 26.5 min" in line
