"""CRC32C (Castagnoli), as TFRecord files check their records with, in NumPy.

The standard library has no CRC32C, and a byte-at-a-time loop in Python takes 8 s of CPU for the
data of 2,400 real photos (37 MB), so the data CRCs of a whole file are computed together: every
256-byte chunk of every record is one lane of a slicing-by-4 CRC (64 vectorised steps), and each
record's chunk CRCs are then joined in order. That takes 0.2 s for the 37 MB (AMD EPYC, AVX2);
the lengths' CRCs, 8 bytes each, are computed a byte at a time.
"""

from __future__ import annotations

from functools import cache

import numpy as np

CASTAGNOLI = 0x82F63B78      # CRC32C's polynomial, bit-reflected
CHUNK = 256                  # bytes per lane of the vectorised CRC (a multiple of 4)


@cache
def _byte_table() -> tuple[int, ...]:
    """The register after one byte, for each value of (register ^ byte) & 0xFF."""
    table = []
    for value in range(256):
        for _ in range(8):
            value = (value >> 1) ^ (CASTAGNOLI if value & 1 else 0)
        table.append(value)
    return tuple(table)


def crc32c(data: bytes) -> int:
    """CRC32C, a byte at a time: for the 8-byte lengths, which are checked one by one."""
    table = _byte_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc: int | np.ndarray) -> int | np.ndarray:
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


def crc32c_many(buffer: bytes, spans: list[tuple[int, int]]) -> np.ndarray:
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
