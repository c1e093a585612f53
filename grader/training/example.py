"""tf.train.Example in the protobuf wire format, read and written without TensorFlow or protobuf:
what grader.training.records needs from the grader's shards (bytes, float and int64 features),
and what grader.training.data writes into them."""

from __future__ import annotations

import struct
from collections.abc import Iterator


class Malformed(ValueError):
    """Bytes that are not a tf.train.Example; the caller says where they came from."""


def _varint(data: memoryview, offset: int) -> tuple[int, int]:
    """A varint at ``offset`` (at most 10 bytes, as unsigned 64 bits) and the offset after it."""
    value = shift = 0
    while shift < 70:
        if offset >= len(data):
            raise Malformed("a varint runs past the end")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, offset
        shift += 7
    raise Malformed("a varint is longer than 10 bytes")


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of a message: an int for a varint, the bytes for the
    others. Groups (wire types 3 and 4) are refused: tf.train.Example has none."""
    offset = 0
    while offset < len(data):
        key, offset = _varint(data, offset)
        number, wire = key >> 3, key & 7
        if number == 0 or wire not in (0, 1, 2, 5):
            raise Malformed(f"field {number} has wire type {wire}")
        if wire == 0:
            value, offset = _varint(data, offset)
            yield number, wire, value
            continue
        if wire == 2:
            size, offset = _varint(data, offset)
        else:
            size = 8 if wire == 1 else 4
        if offset + size > len(data):
            raise Malformed(f"field {number} runs past the end")
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
                raise Malformed("a packed float list is not a whole number of floats")
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
        raise Malformed(f"a feature name is not UTF-8: {key!r}") from exc
    return name, _feature(_merged(parts))


def features(record: bytes) -> dict[str, list]:
    """A serialized tf.train.Example's features: name → values (bytes, float or int); raises
    Malformed for bytes that are not one."""
    features: dict[str, list] = {}
    for block in _messages(memoryview(record), 1):        # Example.features
        for entry in _messages(block, 1):                  # Features.feature, a map
            name, values = _entry(entry)
            features[name] = values
    return features


# ---------------------------------------------------------------- writing

def varint(value: int) -> bytes:
    """``value`` as a varint; a negative int64 takes ten bytes of two's complement."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    """One field: its key, then ``payload``, prefixed with its length for wire type 2."""
    sized = varint(len(payload)) + payload if wire == 2 else payload
    return varint(number << 3 | wire) + sized


def _feature_bytes(name: str, values: list) -> bytes:
    """A Feature: bytes, float or int64 values, by the Python type of all of them."""
    if values and all(isinstance(value, bytes) for value in values):
        return field(1, 2, b"".join(field(1, 2, value) for value in values))
    if values and all(isinstance(value, float) for value in values):
        return field(2, 2, field(1, 2, struct.pack(f"<{len(values)}f", *values)))
    if values and all(isinstance(value, int) for value in values):
        return field(3, 2, field(1, 2, b"".join(varint(value) for value in values)))
    raise TypeError(f"feature {name!r} needs a non-empty list of bytes, floats or ints")


def encode(features: dict[str, list]) -> bytes:
    """A tf.train.Example of ``features`` (name → a list of bytes, floats or ints), serialized
    as protobuf does with ``deterministic=True``: map entries by name, numbers packed."""
    entries = b"".join(
        field(1, 2, field(1, 2, name.encode()) + field(2, 2, _feature_bytes(name, values)))
        for name, values in sorted(features.items()))
    return field(1, 2, entries)
