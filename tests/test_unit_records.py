"""The shards are written (grader.training.example, tfrecord) and read (grader.training.records)
without TensorFlow: checked against TensorFlow's own serialization, reading and decoding, and on
damaged files."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from grader.errors import DataError
from grader.training import data, example, records
from grader.training.example import field, varint

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
IMAGE_SIZE = 192
IMAGES = 40
Shards = Callable[[int], list[Path]]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Shards:
    """Synthetic shards (40 images in 3 files) written at a given size, once per size."""
    made: dict[int, list[Path]] = {}

    def make(size: int) -> list[Path]:
        if size not in made:
            folder = tmp_path_factory.mktemp(f"shards-{size}")
            made[size] = list(data.synthesize(folder, CLASSES, IMAGES, size, seed=5,
                                              shards=3).files)
        return made[size]
    return make


# ---------------------------------------------------------------- records and examples

def test_records_equal_tensorflows_reading(shards: Shards) -> None:
    files = shards(IMAGE_SIZE)
    ours = [records.parse_example(record) for path in files
            for record in records.read_records(path)]
    assert {name for example in ours for name in example} == {
        "image", "class", "label", "size", "one_hot_class"}
    as_iter_records = [{"image": example["image"][0], "class": example["class"][0],
                        "label": example["label"][0].decode(), "size": example["size"],
                        "one_hot_class": example["one_hot_class"]} for example in ours]
    assert as_iter_records == list(data.iter_records(files))
    assert len(ours) == IMAGES


def _entry(name: str, feature: bytes) -> bytes:
    return field(1, 2, field(1, 2, name.encode()) + field(2, 2, feature))


def _unusual_example() -> bytes:
    """An Example in encodings TensorFlow's writer does not use: unpacked and packed values in
    one list, negative and extreme int64s, empty features, unknown fields (not inside a map
    entry: protobuf's own parser then drops the whole entry)."""
    ints = (b"".join(field(1, 0, varint(v)) for v in (-1, 2**63 - 1, -2**63, 0))
            + field(1, 2, varint(5) + varint(-7)))
    floats = field(1, 5, struct.pack("<f", 1.5)) + field(1, 2, struct.pack("<2f", 0.25, -3))
    names = field(1, 2, b"") + field(1, 2, b"\xff\x00")
    features = (_entry("ints", field(3, 2, ints) + field(9, 2, b"unknown"))
                + _entry("floats", field(2, 2, floats))
                + _entry("names", field(1, 2, names))
                + _entry("empty", b"")
                + field(3, 1, b"\0" * 8) + field(4, 5, b"\0" * 4))
    return field(7, 0, varint(300)) + field(1, 2, features)


def test_parse_example_reads_what_protobuf_reads() -> None:
    raw = _unusual_example()
    example = data.tensorflow().train.Example.FromString(raw)
    theirs = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        theirs[name] = list(getattr(feature, kind).value) if kind else []
    ours = records.parse_example(raw)
    assert ours == theirs
    assert ours["ints"] == [-1, 2**63 - 1, -2**63, 0, 5, -7]
    assert ours["floats"] == [1.5, 0.25, -3.0] and ours["names"] == [b"", b"\xff\x00"]


@pytest.mark.parametrize("raw", [
    _unusual_example()[:-3],                      # cut inside a field
    field(1, 2, b"") + b"\x80" * 11,              # a varint longer than ten bytes
    b"\x0b",                                      # a group (wire type 3)
    field(1, 2, field(1, 2, field(2, 2, field(2, 2, field(1, 2, b"\0\0\0"))))),  # 3-byte float
], ids=["truncated", "long-varint", "group", "partial-float"])
def test_parse_example_refuses_malformed_bytes(raw: bytes) -> None:
    with pytest.raises(DataError, match="not a tf.train.Example"):
        records.parse_example(raw)


def test_encode_writes_what_protobuf_writes() -> None:
    features = {"image": [b"\xff\xd8 jpeg", b""], "class": [3], "size": [192, 7],
                "ints": [-1, 2**63 - 1, -2**63, 0], "one_hot_class": [0.0, 1.0, -2.5],
                "label": ["roses".encode()]}
    train = data.tensorflow().train
    kinds = {bytes: lambda v: train.Feature(bytes_list=train.BytesList(value=v)),
             int: lambda v: train.Feature(int64_list=train.Int64List(value=v)),
             float: lambda v: train.Feature(float_list=train.FloatList(value=v))}
    theirs = train.Example(features=train.Features(feature={
        name: kinds[type(values[0])](values) for name, values in features.items()}))
    assert example.encode(features) == theirs.SerializeToString(deterministic=True)
    assert records.parse_example(example.encode(features)) == features


@pytest.mark.parametrize("values", [[], [1, 2.0], ["text"]], ids=["empty", "mixed", "str"])
def test_encode_refuses_values_it_cannot_type(values: list) -> None:
    with pytest.raises(TypeError, match="'feature'"):
        example.encode({"feature": values})


# ---------------------------------------------------------------- damaged files

def _record_offsets(buffer: bytes) -> list[int]:
    offsets, offset = [], 0
    while offset < len(buffer):
        offsets.append(offset)
        offset += 16 + struct.unpack_from("<Q", buffer, offset)[0]
    return offsets


def _flip(buffer: bytearray, offset: int) -> bytes:
    buffer[offset] ^= 0x10
    return bytes(buffer)


@pytest.mark.parametrize("change, record, what", [
    (lambda b, at: _flip(b, at[2] + 12 + 500), 2, "does not match its CRC"),
    (lambda b, at: _flip(b, at[3] + 1), 3, "corrupted length"),
    (lambda b, at: bytes(b[:at[-1] + 12 + 300]), -1, "cut short"),
    (lambda b, at: bytes(b[:at[-1] + 5]), -1, "cut short"),
], ids=["data-byte", "length-byte", "truncated-in-data", "truncated-in-header"])
def test_damaged_file_raises_data_error_naming_file_and_record(
        shards: Shards, tmp_path: Path, change: Callable[[bytearray, list[int]], bytes],
        record: int, what: str) -> None:
    source = shards(IMAGE_SIZE)[0]
    offsets = _record_offsets(source.read_bytes())
    path = tmp_path / source.name
    path.write_bytes(change(bytearray(source.read_bytes()), offsets))
    index = record % len(offsets)   # -1: the last record
    with pytest.raises(DataError) as raised:
        list(records.read_records(path))
    message = str(raised.value)
    assert str(path) in message and f"record {index} " in message and what in message
    assert message.endswith("`grade data synth` or `grade data import`.")
    with pytest.raises(DataError, match="is damaged"):
        records.decode([path], IMAGE_SIZE)


def test_decode_refuses_shards_without_images(tmp_path: Path) -> None:
    empty = tmp_path / "flowers00-0.tfrec"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="hold no images"):
        records.decode([empty], IMAGE_SIZE)


# ---------------------------------------------------------------- decoding

@pytest.mark.parametrize("stored", [IMAGE_SIZE, 100, 331], ids=["same", "up", "down"])
def test_decode_equals_tensorflows_bit_for_bit(shards: Shards, stored: int) -> None:
    """JPEG decoding (both with the accurate integer IDCT) and the resize both ways are
    TensorFlow's, bit for bit: a JAX training sees the pixels a TensorFlow one sees."""
    files = shards(stored)
    ours, theirs = records.decode(files, IMAGE_SIZE), data.decode(files, IMAGE_SIZE)
    assert ours.images.shape == (IMAGES, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert ours.images.dtype == np.uint8 and ours.labels.dtype == np.int32
    np.testing.assert_array_equal(ours.images, theirs.images)
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    assert ours.files == theirs.files == tuple(str(path) for path in files)


def test_decode_limit_takes_the_first_images_across_files(shards: Shards) -> None:
    files = shards(IMAGE_SIZE)
    whole = records.decode(files, IMAGE_SIZE)
    first = records.decode(files, IMAGE_SIZE, limit=17)   # the first file holds 14
    assert len(first.labels) == 17 and first.files == whole.files
    np.testing.assert_array_equal(first.images, whole.images[:17])
    np.testing.assert_array_equal(first.labels, data.decode(files, IMAGE_SIZE, limit=17).labels)
    assert len(records.decode(files, IMAGE_SIZE, limit=1000).labels) == IMAGES


def test_decode_without_size_keeps_stored_size_and_refuses_mixed_sizes(shards: Shards) -> None:
    assert records.decode(shards(100), 0).images.shape == (IMAGES, 100, 100, 3)
    with pytest.raises(DataError, match="give an image size"):
        records.decode(shards(100) + shards(IMAGE_SIZE), 0)


# ---------------------------------------------------------------- without TensorFlow

def test_writing_reading_and_decoding_never_import_tensorflow(tmp_path: Path) -> None:
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from grader.training import data, records\n"
            "assert 'tensorflow' not in sys.modules, 'imported by the import'\n"
            f"files = data.synthesize(Path(sys.argv[1]), {CLASSES!r}, {IMAGES}, 100,\n"
            "                         seed=5).files\n"
            "assert 'tensorflow' not in sys.modules, 'imported by synthesize'\n"
            "split = records.decode(files, 64)\n"
            "assert 'tensorflow' not in sys.modules, 'imported by decode'\n"
            "print(split.images.shape)\n")
    process = subprocess.run([sys.executable, "-c", code, tmp_path], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip() == f"({IMAGES}, 64, 64, 3)"
