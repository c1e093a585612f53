"""TFRecord files written without TensorFlow (grader.training.records reads them back).

Each record is framed as TensorFlow frames it: its length (uint64, little-endian), the masked
CRC32C of those 8 bytes, the data, the masked CRC32C of the data. The data CRCs of a whole file
are computed together (grader.training.crc32c).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from grader.training.crc32c import crc32c, crc32c_many, masked


def write(path: Path, records: Sequence[bytes]) -> None:
    """Write ``records`` as the TFRecord file ``path`` (uncompressed)."""
    buffer = b"".join(records)
    spans, start = [], 0
    for record in records:
        spans.append((start, len(record)))
        start += len(record)
    data_crcs = masked(crc32c_many(buffer, spans)).tolist() if records else []
    with open(path, "wb") as out:
        for record, data_crc in zip(records, data_crcs):
            length = struct.pack("<Q", len(record))
            out.write(length + struct.pack("<I", masked(crc32c(length))))
            out.write(record)
            out.write(struct.pack("<I", data_crc))
