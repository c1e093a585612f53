"""Read the grader's shards without TensorFlow: TFRecord framing, tf.train.Example, JPEG decoding.

A training process that runs Keras 3 on JAX has no TensorFlow to read shards with. This module
reads what grader.training.data writes with the standard library, NumPy and Pillow only, and
decodes it as ``grader.training.data.decode`` does: the same labels and the same pixels.

Every record's two CRC32Cs (of its length and of its data) are checked, as TensorFlow checks
them (grader.training.crc32c); the records are parsed by grader.training.example.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from grader.cost import usable_cores
from grader.errors import DataError
from grader.training import example
from grader.training.crc32c import crc32c, crc32c_many, masked
from grader.training.data import Split

REMAKE = "Make the shards again with `grade data synth` or `grade data import`."


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
        if masked(crc32c(buffer[offset:offset + 8])) != length_crc:
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
    computed = masked(crc32c_many(buffer, spans))
    bad = np.flatnonzero(computed != np.array(stored, dtype=np.uint32))
    if bad.size:
        raise _damaged(path, int(bad[0]), "has data that does not match its CRC")
    for start, length in spans:
        yield buffer[start:start + length]


def parse_example(record: bytes) -> dict[str, list]:
    """A serialized tf.train.Example's features: name → values (bytes, float or int)."""
    try:
        return example.features(record)
    except example.Malformed as exc:
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
                features = example.features(record)
            except example.Malformed as exc:
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
