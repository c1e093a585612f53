"""Decoded data, prepared once: the shards' JPEGs decoded and resized to uint8 arrays.

Every trusted training reads these arrays, never the JPEGs. ``grade notebook`` decodes into
memory; ``grade batch`` decodes once into a file cache (``CACHE/data-…/``, ``.npy`` files that
every training process of the batch memory-maps). A cache entry is named by the shards'
fingerprint (their names, sizes and SHA-256), so changed data is never read from a stale cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.io import sha256
from grader.lazy import backend
from grader.training import data, records
from grader.training.data import Split

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
# How the pixels were decoded, in the entry's name: entries decoded another way are not read.
# "islow": libjpeg's accurate integer IDCT, in TensorFlow and Pillow alike.
DECODER = "islow"


@dataclass(frozen=True)
class Source:
    """One folder of shards, decoded at one size; split for validation, or whole (test data)."""
    folder: Path
    image_size: int
    validation_split: float | None   # None: one split named "all"

    def names(self) -> tuple[str, ...]:
        return ("all",) if self.validation_split is None else ("train", "val")


@dataclass(frozen=True)
class Loaded:
    splits: dict[str, Split]
    decoded: bool          # True when this call decoded the JPEGs (a cache miss)
    fingerprint: str


def fingerprint(folder: Path) -> str:
    """SHA-256 over the shard files' names, sizes and contents."""
    digest = hashlib.sha256()
    for path in data.shard_files(folder):
        digest.update(f"{path.name}\0{path.stat().st_size}\0{sha256(path)}\n".encode())
    return digest.hexdigest()


def _decode(source: Source) -> dict[str, Split]:
    # A JAX training process has no TensorFlow: it reads the shards itself (the same pixels)
    decode = data.decode if backend() == "tensorflow" else records.decode
    files = data.shard_files(source.folder)
    if source.validation_split is None:
        return {"all": decode(files, source.image_size)}
    train, val = data.split_files(files, source.validation_split)
    return {"train": decode(train, source.image_size), "val": decode(val, source.image_size)}


def load(source: Source, cache: Path | None = None) -> Loaded:
    """The decoded splits of ``source``: from the cache when it has them, else decoded now (and
    stored in the cache, when there is one)."""
    digest = fingerprint(source.folder)
    if cache is None:
        return Loaded(_decode(source), True, digest)
    entry = cache / _entry_name(source, digest)
    if not (entry / MANIFEST).is_file():
        _store(source, digest, entry)
        splits, decoded = _read(entry, source), True
    else:
        splits, decoded = _read(entry, source), False
    return Loaded(splits, decoded, digest)


def cached(source: Source, cache: Path) -> bool:
    """Whether ``cache`` holds the decoded splits of ``source`` already."""
    return (cache / _entry_name(source, fingerprint(source.folder)) / MANIFEST).is_file()


def _entry_name(source: Source, digest: str) -> str:
    split = "all" if source.validation_split is None else f"{source.validation_split:g}"
    return f"data-{digest[:20]}-{source.image_size}px-{split}-{DECODER}"


def _store(source: Source, digest: str, entry: Path) -> None:
    """Decode into a staging folder and rename it into place: readers never see half."""
    started = time.perf_counter()
    splits = _decode(source)
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        for name, split in splits.items():
            np.save(staging / f"{name}-images.npy", split.images)
            np.save(staging / f"{name}-labels.npy", split.labels)
        manifest = {"fingerprint": digest, "folder": str(source.folder.resolve()),
                    "image_size": source.image_size,
                    "validation_split": source.validation_split,
                    "counts": {name: len(split.labels) for name, split in splits.items()},
                    "files": {name: list(split.files) for name, split in splits.items()},
                    "seconds": round(time.perf_counter() - started, 2)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        try:
            os.rename(staging, entry)
        except OSError:  # another process stored the same entry first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("decoded %s into %s in %.1f s", source.folder, entry, time.perf_counter() - started)


def _read(entry: Path, source: Source) -> dict[str, Split]:
    manifest = json.loads((entry / MANIFEST).read_text())
    return {name: Split(np.load(entry / f"{name}-images.npy", mmap_mode="r"),
                        np.load(entry / f"{name}-labels.npy"),
                        tuple(manifest["files"][name]))
            for name in source.names()}


def capped(split: Split, limit: int) -> Split:
    """The first ``limit`` images of a split (all of them for 0), as a profile asks."""
    if not limit or limit >= len(split.labels):
        return split
    return Split(split.images[:limit], split.labels[:limit], split.files)
