"""Read the grader's shards without TensorFlow: TFRecord framing, tf.train.Example, JPEG decoding.

A training process that runs Keras 3 on JAX has no TensorFlow to read shards with. This module
reads what grader.training.data writes with the standard library, NumPy and Pillow only, and
decodes it as ``grader.training.data.decode`` does: the same labels and the same pixels.

Every record's two CRC32Cs (of its length and of its data) are checked, as TensorFlow checks
them. The standard library has no CRC32C, and a byte-at-a-time loop in Python takes 8 s of CPU
for the data of 2,400 real photos (37 MB), so the data CRCs of a whole file are computed together
in NumPy: every 256-byte chunk of every record is one lane of a slicing-by-4 CRC (64 vectorised
steps), and each record's chunk CRCs are then joined in order. That takes 0.2 s for the 37 MB
(AMD EPYC, AVX2); the lengths' CRCs, 8 bytes each, are computed a byte at a time.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from grader.cost import usable_cores
from grader.errors import DataError
from grader.training.data import Split

REMAKE = "Make the shards again with `grade data synth` or `grade data import`."
CASTAGNOLI = 0x82F63B78      # CRC32C's polynomial, bit-reflected
CHUNK = 256                  # bytes per lane of the vectorised CRC (a multiple of 4)


# ---------------------------------------------------------------- CRC32C

@cache
def _byte_table() -> tuple[int, ...]:
    """The register after one byte, for each value of (register ^ byte) & 0xFF."""
    table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ (CASTAGNOLI if value & 1 else 0)
        table.append(value)
    return tuple(table)


def _crc32c(data: bytes) -> int:
    """CRC32C, a byte at a time: for the 8-byte lengths, which are checked one by one."""
    table = _byte_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int | np.ndarray) -> int | np.ndarray:
    """TFRecord's masked CRC, of an int or of a uint32 array (which wraps at 2**32 itself)."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@cache
def _shift_tables(zeros: int) -> tuple[np.ndarray, np.ndarray]:
    """What ``zeros`` zero bytes make of a CRC register, as two 65,536-entry tables: look up
    the register's low and high 16 bits and xor. A CRC is linear, so each entry is the xor of
    what the zero bytes make of its index's single bits."""
    table = _byte_table()
    images = []
    for bit in range(32):
        crc = 1 << bit
        for _ in range(zeros):
            crc = table[crc & 0xFF] ^ (crc >> 8)
        images.append(crc)
    index = np.arange(1 << 16, dtype=np.uint32)
    halves = []
    for first in (0, 16):
        half = np.zeros(1 << 16, np.uint32)
        for bit in range(16):
            half ^= ((index >> bit) & 1) * np.uint32(images[first + bit])
        halves.append(half)
    return halves[0], halves[1]


@cache
def _start_prefix() -> bytes:
    """The 4 bytes that take a zero register to 0xFFFFFFFF, CRC32C's start value: a message
    behind them (and behind any zeros, which leave a zero register zero) gets its CRC from a
    register started at zero. Found by running four zero-byte steps backwards (the top bytes
    of the table's entries are all different, so each step's byte is known)."""
    table = _byte_table()
    by_top = {entry >> 24: value for value, entry in enumerate(table)}
    crc = 0xFFFFFFFF
    for _ in range(4):
        low = by_top[crc >> 24]
        crc = ((crc ^ table[low]) << 8) | low
    return crc.to_bytes(4, "little")


def _crc32c_many(buffer: bytes, spans: list[tuple[int, int]]) -> np.ndarray:
    """CRC32C of many (start, length) spans of ``buffer`` at once, as uint32.

    Each span goes behind its start prefix, right-aligned in whole CHUNK-byte chunks padded with
    zeros in front, so that every chunk's CRC can be computed side by side from a zero register.
    """
    lengths = np.array([length for _, length in spans], dtype=np.int64) + 4
    chunks = -(-lengths // CHUNK)
    ends = np.cumsum(chunks) * CHUNK
    padded = np.zeros(int(ends[-1]) if spans else 0, np.uint8)
    source = np.frombuffer(buffer, np.uint8)
    prefix = np.frombuffer(_start_prefix(), np.uint8)
    for (start, length), end in zip(spans, ends.tolist()):
        padded[end - length - 4:end - length] = prefix
        padded[end - length:end] = source[start:start + length]
    return _join(_chunk_crcs(padded), chunks) ^ np.uint32(0xFFFFFFFF)


def _chunk_crcs(padded: np.ndarray) -> np.ndarray:
    """The CRC (from a zero register) of every CHUNK bytes, 4 bytes per step for all chunks."""
    words = np.ascontiguousarray(padded.view("<u4").reshape(-1, CHUNK // 4).T)
    low, high = _shift_tables(4)
    crc = np.zeros(words.shape[1], np.uint32)
    for word in words:
        crc ^= word
        crc = low[crc & 0xFFFF] ^ high[crc >> 16]
    return crc


def _join(lanes: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    """Each span's CRC from its chunks' CRCs: CRC(a + b) = shift(CRC(a), len(b)) ^ CRC(b) from
    a zero register. The spans' chunks are right-aligned in a grid (zero chunks in front change
    nothing), so that all spans take one step per row."""
    count = int(chunks.max()) if len(chunks) else 0
    first = np.repeat(np.cumsum(chunks) - chunks, chunks)
    rows = np.arange(len(lanes)) - first + np.repeat(count - chunks, chunks)
    grid = np.zeros((count, len(chunks)), np.uint32)
    grid[rows, np.repeat(np.arange(len(chunks)), chunks)] = lanes
    low, high = _shift_tables(CHUNK)
    crc = np.zeros(len(chunks), np.uint32)
    for row in grid:
        crc = low[crc & 0xFFFF] ^ high[crc >> 16] ^ row
    return crc


# ---------------------------------------------------------------- TFRecord framing

def _damaged(path: Path, index: int, what: str) -> DataError:
    return DataError(f"{path} is damaged: record {index} {what}. {REMAKE}")


def _frame(path: Path, buffer: bytes) -> tuple[list[tuple[int, int]], list[int]]:
    """The (start, length) of every record's data and its stored masked CRC, each length's own
    CRC checked before the length is believed."""
    spans, stored = [], []
    offset = 0
    while offset < len(buffer):
        index = len(spans)
        if offset + 12 > len(buffer):
            raise _damaged(path, index, "is cut short (the file is truncated)")
        length, length_crc = struct.unpack_from("<QI", buffer, offset)
        if _masked(_crc32c(buffer[offset:offset + 8])) != length_crc:
            raise _damaged(path, index, "has a corrupted length")
        start = offset + 12
        if start + length + 4 > len(buffer):
            raise _damaged(path, index, "is cut short (the file is truncated)")
        spans.append((start, length))
        stored.append(struct.unpack_from("<I", buffer, start + length)[0])
        offset = start + length + 4
    return spans, stored


def read_records(path: Path) -> Iterator[bytes]:
    """The records of one TFRecord file. The whole file is read and every CRC checked before
    the first record is given, so a damaged file gives none (shards are a few MB each)."""
    try:
        buffer = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read the shard file {path}: {exc.strerror}. {REMAKE}") from exc
    spans, stored = _frame(path, buffer)
    computed = _masked(_crc32c_many(buffer, spans))
    bad = np.flatnonzero(computed != np.array(stored, dtype=np.uint32))
    if bad.size:
        raise _damaged(path, int(bad[0]), "has data that does not match its CRC")
    for start, length in spans:
        yield buffer[start:start + length]


# ---------------------------------------------------------------- tf.train.Example

class _Malformed(ValueError):
    """Bytes that are not a tf.train.Example; the caller says where they came from."""


def _varint(data: memoryview, offset: int) -> tuple[int, int]:
    """A varint at ``offset`` (at most 10 bytes, as unsigned 64 bits) and the offset after it."""
    value = shift = 0
    while shift < 70:
        if offset >= len(data):
            raise _Malformed("a varint runs past the end")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, offset
        shift += 7
    raise _Malformed("a varint is longer than 10 bytes")


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of a message: an int for a varint, the bytes for the
    others. Groups (wire types 3 and 4) are refused: tf.train.Example has none."""
    offset = 0
    while offset < len(data):
        key, offset = _varint(data, offset)
        number, wire = key >> 3, key & 7
        if number == 0 or wire not in (0, 1, 2, 5):
            raise _Malformed(f"field {number} has wire type {wire}")
        if wire == 0:
            value, offset = _varint(data, offset)
            yield number, wire, value
            continue
        if wire == 2:
            size, offset = _varint(data, offset)
        else:
            size = 8 if wire == 1 else 4
        if offset + size > len(data):
            raise _Malformed(f"field {number} runs past the end")
        yield number, wire, data[offset:offset + size]
        offset += size


def _messages(data: memoryview, number: int) -> Iterator[memoryview]:
    """The embedded messages of field ``number``; other fields are skipped."""
    for field, wire, value in _fields(data):
        if field == number and wire == 2:
            yield value


def _merged(parts: list[memoryview]) -> memoryview:
    """A message field given any number of times: protobuf merges them, as if concatenated."""
    return parts[0] if len(parts) == 1 else memoryview(b"".join(parts))


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _bytes_list(data: memoryview) -> list:
    return [bytes(value) for value in _messages(data, 1)]


def _float_list(data: memoryview) -> list:
    values: list[float] = []
    for field, wire, value in _fields(data):
        if field == 1 and wire == 5:
            values.append(struct.unpack("<f", value)[0])
        elif field == 1 and wire == 2:   # packed
            if len(value) % 4:
                raise _Malformed("a packed float list is not a whole number of floats")
            values += struct.unpack(f"<{len(value) // 4}f", value)
    return values


def _int64_list(data: memoryview) -> list:
    values: list[int] = []
    for field, wire, value in _fields(data):
        if field == 1 and wire == 0:
            values.append(_signed(value))
        elif field == 1 and wire == 2:   # packed
            offset = 0
            while offset < len(value):
                number, offset = _varint(value, offset)
                values.append(_signed(number))
    return values


_LISTS = {1: _bytes_list, 2: _float_list, 3: _int64_list}   # Feature's oneof, by field number


def _feature(data: memoryview) -> list:
    """A Feature's values. Its oneof given twice: the same kind merges, another replaces."""
    kind, values = 0, []
    for field, wire, value in _fields(data):
        if field in _LISTS and wire == 2:
            parsed = _LISTS[field](value)
            values = values + parsed if field == kind else parsed
            kind = field
    return values


def _entry(data: memoryview) -> tuple[str, list]:
    """One entry of Features' map: key (field 1), Feature (field 2)."""
    key, parts = b"", []
    for field, wire, value in _fields(data):
        if field == 1 and wire == 2:
            key = bytes(value)
        elif field == 2 and wire == 2:
            parts.append(value)
    try:
        name = key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed(f"a feature name is not UTF-8: {key!r}") from exc
    return name, _feature(_merged(parts))


def _example(record: bytes) -> dict[str, list]:
    features: dict[str, list] = {}
    for block in _messages(memoryview(record), 1):        # Example.features
        for entry in _messages(block, 1):                  # Features.feature, a map
            name, values = _entry(entry)
            features[name] = values
    return features


def parse_example(record: bytes) -> dict[str, list]:
    """A serialized tf.train.Example's features: name → values (bytes, float or int)."""
    try:
        return _example(record)
    except _Malformed as exc:
        raise DataError(f"A record is not a tf.train.Example: {exc}. {REMAKE}") from exc


# ---------------------------------------------------------------- decoding

class _Image(NamedTuple):
    jpeg: bytes
    where: str      # "Record N of FILE", for messages


def _one(features: dict[str, list], name: str, kind: type, where: str) -> Any:
    """The single value of a feature, as tf.io.FixedLenFeature([]) requires it."""
    values = features.get(name, [])
    if len(values) != 1 or not isinstance(values[0], kind):
        raise DataError(f"{where} has no single {kind.__name__} feature '{name}' (it has "
                        f"{values[:3]!r}). {REMAKE}")
    return values[0]


def _images(names: tuple[str, ...], limit: int) -> tuple[list[_Image], list[int]]:
    """The JPEG bytes and class of every record, the first ``limit`` only when one is given."""
    images: list[_Image] = []
    labels: list[int] = []
    for name in names:
        for index, record in enumerate(read_records(Path(name))):
            where = f"Record {index} of {name}"
            try:
                features = _example(record)
            except _Malformed as exc:
                raise DataError(f"{where} is not a tf.train.Example: {exc}. {REMAKE}") from exc
            images.append(_Image(_one(features, "image", bytes, where), where))
            labels.append(_one(features, "class", int, where))
            if len(images) == limit:
                return images, labels
    return images, labels


class _Taps(NamedTuple):
    lower: np.ndarray    # source index below each output pixel
    upper: np.ndarray    # source index above it
    weight: np.ndarray   # float32 share of ``upper``


def _taps(source: int, size: int) -> _Taps:
    """TensorFlow's half-pixel bilinear taps along one axis (HalfPixelScaler and
    compute_interpolation_weights in resize_bilinear_op.cc), in float32 as there."""
    scale = np.float32(source) / np.float32(size)
    centre = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(centre)
    return _Taps(np.maximum(floor, 0).astype(np.intp),
                 np.minimum(np.ceil(centre), source - 1).astype(np.intp),
                 centre - floor)


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """``tf.image.resize(pixels, [size, size])`` (bilinear, half-pixel centres, no antialiasing),
    then rounded half to even and clipped into uint8, as grader.training.data.decode does.
    TensorFlow interpolates along each of two rows, then between them; so does this, with the
    same float32 operations in the same order, so the result is the same bit for bit."""
    height, width, channels = pixels.shape
    rows, columns = _taps(height, size), _taps(width, size)
    # Rows as lines of width * channels values: gathering values from 2-D lines is several
    # times faster than gathering pixels from a 3-D array.
    lanes = np.arange(channels)
    lower = (columns.lower[:, None] * channels + lanes).ravel()
    upper = (columns.upper[:, None] * channels + lanes).ravel()
    lines = pixels.reshape(height, width * channels).astype(np.float32)
    # left + (right - left) * weight, in place: a fresh array per operation was up to 5x slower.
    left, lines = lines[:, lower], lines[:, upper]
    lines -= left
    lines *= np.repeat(columns.weight, channels)
    lines += left
    top, lines = lines[rows.lower], lines[rows.upper]
    lines -= top
    lines *= rows.weight[:, None]
    lines += top
    np.clip(np.rint(lines, out=lines), 0, 255, out=lines)
    return lines.astype(np.uint8).reshape(size, size, channels)


def _pixels(image: _Image, size: int) -> np.ndarray:
    """One JPEG as RGB uint8, resized to ``size`` x ``size`` (when given) if it is not."""
    try:
        with Image.open(io.BytesIO(image.jpeg)) as opened:
            pixels = np.asarray(opened if opened.mode == "RGB" else opened.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{image.where} holds an image that cannot be decoded: {exc}. "
                        f"{REMAKE}") from exc
    if size and pixels.shape[:2] != (size, size):
        return _resize(pixels, size)
    return pixels


def decode(files: Iterable[Path], image_size: int, limit: int = 0) -> Split:
    """Decode shard files into uint8 arrays, resized to ``image_size`` if they differ: what
    grader.training.data.decode gives, without TensorFlow.

    Pillow decodes the JPEGs in a thread per core (it lets go of the GIL meanwhile), with
    libjpeg-turbo and the accurate integer IDCT (JDCT_ISLOW), as grader.training.data asks
    TensorFlow to: the pixels are the same bit for bit. (TensorFlow's default, the fast IDCT,
    which Pillow cannot be asked for without also giving up fancy upsampling, changed two thirds
    of the values, by one level on average and at most 12 over 2,400 real photos.)
    """
    names = tuple(str(path) for path in files)
    images, labels = _images(names, limit)
    if not images:
        raise DataError(f"The shard files {list(names)} hold no images. {REMAKE}")
    with ThreadPoolExecutor(usable_cores()) as pool:
        decoded = pool.map(lambda image: _pixels(image, image_size), images)
        first = next(decoded)
        out = np.empty((len(images), *first.shape), np.uint8)
        out[0] = first
        for index, pixels in enumerate(decoded, start=1):
            if pixels.shape != first.shape:
                raise DataError(f"{images[index].where} is {pixels.shape[1]}x{pixels.shape[0]} "
                                f"pixels, not {first.shape[1]}x{first.shape[0]} like the "
                                f"first: give an image size.")
            out[index] = pixels
    return Split(out, np.array(labels, dtype=np.int32), names)
