"""`grade data synth` and `grade data import`: codelab-format shards, and clear refusals."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_PHOTOS, run_grade
from grader.training.data import SHARD_NAME, iter_records, shard_files, split_files

CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def _records(folder: Path) -> list[dict]:
    return list(iter_records(shard_files(folder)))


def _check_records(records: list[dict], size: int) -> None:
    for record in records:
        image = Image.open(io.BytesIO(record["image"]))
        assert image.format == "JPEG" and image.size == (size, size) and image.mode == "RGB"
        assert record["label"] == CLASSES[record["class"]]
        assert record["size"] == [size, size]
        assert record["one_hot_class"] == [1.0 if i == record["class"] else 0.0
                                           for i in range(5)]


def test_synth_writes_codelab_shards(tmp_path: Path, grade_here) -> None:
    process = grade_here("data", "synth", "--out", tmp_path, "--images", 50, "--size", 64,
                        "--seed", 3, "--shards", 4)
    assert process.returncode == 0, process.stderr
    files = shard_files(tmp_path)
    assert [f.name for f in files] == [f"flowers{i:02d}-{n}.tfrec"
                                       for i, n in enumerate([13, 13, 13, 11])]
    records = _records(tmp_path)
    assert len(records) == 50
    _check_records(records, 64)
    assert set(Counter(r["class"] for r in records).values()) == {10}


def test_synth_is_deterministic_per_seed(tmp_path: Path, grade_here) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert grade_here("data", "synth", "--out", tmp_path / name, "--images", 10,
                         "--size", 48, "--seed", seed).returncode == 0
    images = {name: [r["image"] for r in _records(tmp_path / name)] for name in "abc"}
    assert images["a"] == images["b"]
    assert images["a"] != images["c"]


def test_codelab_split_is_first_19_percent_of_sorted_files(tmp_path: Path) -> None:
    for index in (15, 2, 0, 9, 1, 10, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14):  # any order on disk
        (tmp_path / f"flowers{index:02d}-10.tfrec").write_bytes(b"")
    train, validation = split_files(shard_files(tmp_path), 0.19)
    assert [f.name[:9] for f in validation] == ["flowers00", "flowers01", "flowers02"]
    assert len(train) == 13 and all(SHARD_NAME.match(f.name) for f in train)


def _photo(path: Path, size: tuple[int, int], colour: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0], 3), colour, dtype=np.uint8)
    pixels[:, : size[0] // 2] = 255 - colour  # left half differs: shows the centre crop
    Image.fromarray(pixels).save(path)


def test_import_fills_and_centre_crops(tmp_path: Path, grade_here) -> None:
    photos = tmp_path / "flower_photos"
    for index, name in enumerate(CLASSES):
        _photo(photos / name / f"{index}a.jpg", (400, 256), 40 * index)
        _photo(photos / name / f"{index}b.png", (256, 300), 40 * index)
    (photos / "LICENSE.txt").write_text("CC-BY")  # the public archive has one at the top
    process = grade_here("data", "import", photos, "--out", tmp_path / "shards", "--size", 96)
    assert process.returncode == 0, process.stderr
    assert "wrote 10 images (daisy 2, dandelion 2, roses 2, sunflowers 2, tulips 2)" \
        in process.stdout
    records = _records(tmp_path / "shards")
    _check_records(records, 96)
    assert sorted(r["class"] for r in records) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_synth_and_import_run_where_tensorflow_cannot_be_imported(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """As on an accelerator image with JAX alone: the shards are written without TensorFlow."""
    blocker = tmp_path / "blocker" / "tensorflow" / "__init__.py"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("raise ImportError('TensorFlow is blocked in this test')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(blocker.parent.parent), os.environ.get("PYTHONPATH")])))
    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                             text=True)
    assert "blocked in this test" in blocked.stderr
    photos = tmp_path / "photos"
    for index, name in enumerate(CLASSES):
        _photo(photos / name / "a.jpg", (120, 100), 40 * index)
    for command in (("synth", "--out", tmp_path / "synth", "--images", 10, "--size", 48),
                    ("import", photos, "--out", tmp_path / "import", "--size", 48)):
        process = run_grade("data", *command)
        assert process.returncode == 0, process.stderr
    _check_records(_records(tmp_path / "synth"), 48)
    _check_records(_records(tmp_path / "import"), 48)


@pytest.mark.parametrize("problem, expected", [
    ("unknown_class", "Unknown class folder 'orchids'"),
    ("unreadable", "Cannot read the image"),
    ("empty", "No photos found"),
    ("missing", "is not a folder"),
])
def test_import_refuses_bad_input_clearly(tmp_path: Path, problem: str, expected: str,
                                         grade_here) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    if problem == "unknown_class":
        _photo(photos / "daisy" / "1.jpg", (200, 200), 10)
        _photo(photos / "orchids" / "2.jpg", (200, 200), 10)
    elif problem == "unreadable":
        _photo(photos / "daisy" / "1.jpg", (200, 200), 10)
        (photos / "roses").mkdir()
        (photos / "roses" / "broken.jpg").write_bytes(b"not a jpeg at all")
    elif problem == "missing":
        photos = tmp_path / "nowhere"
    out = tmp_path / "out"
    process = grade_here("data", "import", photos, "--out", out)
    assert process.returncode == 1
    assert expected in process.stderr
    assert "Traceback" not in process.stderr
    assert not list(out.glob("*.tfrec"))
    if problem == "unreadable":
        assert "broken.jpg" in process.stderr


def test_synth_refuses_too_few_images(tmp_path: Path, grade_here) -> None:
    process = grade_here("data", "synth", "--out", tmp_path, "--images", 3)
    assert process.returncode == 1
    assert "at least one per class" in process.stderr


@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="../shared/flowers-photos is absent")
def test_import_reads_every_real_photo_folder(tmp_path: Path) -> None:
    # Only the listing: the full import runs in the calibrated test on real photos.
    from grader.training.data import list_photos

    photos = list_photos(SHARED_PHOTOS, tuple(CLASSES))
    on_disk = {index: sum(1 for f in (SHARED_PHOTOS / name).iterdir()
                          if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
               for index, name in enumerate(CLASSES)}
    assert Counter(label for _, label in photos) == on_disk
