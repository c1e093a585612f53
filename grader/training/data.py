"""Flower shards in the codelab's TFRecord format: write (synth, import), list, split and decode.

Shard files are named ``flowersNN-COUNT.tfrec`` and hold one ``tf.train.Example`` per photo with
the features ``image`` (JPEG bytes), ``class`` (int64), ``label`` (bytes), ``size`` (two int64:
height, width) and ``one_hot_class`` (five floats). They are written without TensorFlow
(grader.training.example, grader.training.tfrecord); TensorFlow, imported inside functions only,
reads them for training.
"""

from __future__ import annotations

import io
import math
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from grader.cost import usable_cores
from grader.errors import DataError
from grader.lazy import tensorflow
from grader.training import example, tfrecord

SHARD_PATTERN = "flowers*.tfrec"
SHARD_NAME = re.compile(r"^flowers(\d+)-(\d+)\.tfrec$")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
DEFAULT_SHARDS = 16  # the codelab serves the dataset as 16 shards
JPEG_QUALITY = 92
# Parallel calls of a tf.data map: every core this process may run on.
PARALLEL_CALLS = usable_cores()


@dataclass(frozen=True)
class ShardSet:
    """What a data command wrote."""
    folder: Path
    files: tuple[Path, ...]
    images: int
    per_class: tuple[int, ...]


@dataclass(frozen=True)
class Split:
    """Decoded images of one split: uint8 (N, size, size, 3) and int labels (N,)."""
    images: np.ndarray
    labels: np.ndarray
    files: tuple[str, ...]


# ---------------------------------------------------------------- writing

def _example(jpeg: bytes, class_index: int, classes: tuple[str, ...],
             hw: tuple[int, int]) -> bytes:
    """One serialized tf.train.Example of the codelab's features."""
    return example.encode({
        "image": [jpeg],
        "class": [class_index],
        "label": [classes[class_index].encode()],
        "size": list(hw),
        "one_hot_class": [1.0 if i == class_index else 0.0 for i in range(len(classes))],
    })


def encode_jpeg(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """RGB uint8 array → JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_shards(examples: Iterable[tuple[np.ndarray, int]], count: int, out_dir: Path,
                 classes: tuple[str, ...], shards: int = DEFAULT_SHARDS) -> ShardSet:
    """Write ``count`` (pixels, class) pairs as codelab shards into ``out_dir``.

    Shards are written into a temporary folder first and moved in at the end, so an interrupted
    run never leaves a half-written shard set; older shards in ``out_dir`` are replaced.
    """
    shards = max(1, min(shards, count))
    per_shard = math.ceil(count / shards)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shards-", dir=out_dir))
    per_class = [0] * len(classes)
    stream = iter(examples)
    for index in range(math.ceil(count / per_shard)):
        batch = [next(stream) for _ in range(min(per_shard, count - index * per_shard))]
        records = []
        for pixels, class_index in batch:
            per_class[class_index] += 1
            hw = (int(pixels.shape[0]), int(pixels.shape[1]))
            records.append(_example(encode_jpeg(pixels), class_index, classes, hw))
        tfrecord.write(staging / f"flowers{index:02d}-{len(batch)}.tfrec", records)
    return ShardSet(out_dir, _move_in(staging, out_dir), count, tuple(per_class))


def _move_in(staging: Path, out_dir: Path) -> tuple[Path, ...]:
    for old in out_dir.glob(SHARD_PATTERN):
        old.unlink()
    moved = []
    for path in sorted(staging.iterdir()):
        target = out_dir / path.name
        os.replace(path, target)
        moved.append(target)
    shutil.rmtree(staging, ignore_errors=True)
    return tuple(moved)


# ---------------------------------------------------------------- synth and import

def synthesize(out_dir: Path, classes: tuple[str, ...], images: int, size: int,
               seed: int, shards: int = DEFAULT_SHARDS, clutter: float = 1.0) -> ShardSet:
    """Write ``images`` procedural flowers (grader.training.synth) as shards; ``clutter`` scales the
    nuisances around the flowers (1: all of them, 0: none)."""
    from grader.training import synth

    if images < len(classes):
        raise DataError(f"--images {images} is too few: give at least one per class "
                        f"({len(classes)}).")
    if not 32 <= size <= 1024:
        raise DataError(f"--size {size} is out of range: use 32 to 1024 pixels.")
    if not 0.0 <= clutter <= 1.0:
        raise DataError(f"--clutter {clutter} is out of range: use 0 to 1.")
    return write_shards(synth.examples(images, size, seed, clutter), images, out_dir, classes,
                        shards)


def list_photos(photos_dir: Path, classes: tuple[str, ...]) -> list[tuple[Path, int]]:
    """The photos of a flower_photos-style folder (one sub-folder per class), checked."""
    if not photos_dir.is_dir():
        raise DataError(f"{photos_dir} is not a folder. Give the folder that holds one "
                        f"sub-folder per class ({', '.join(classes)}).")
    photos: list[tuple[Path, int]] = []
    for sub in sorted(p for p in photos_dir.iterdir() if p.is_dir()):
        if sub.name.startswith("."):
            continue
        if sub.name not in classes:
            raise DataError(f"Unknown class folder '{sub.name}' in {photos_dir}. The class "
                            f"folders must be among: {', '.join(classes)}. Rename or remove it.")
        photos += [(p, classes.index(sub.name)) for p in sorted(sub.iterdir())
                   if p.is_file() and not p.name.startswith(".")]
    if not photos:
        raise DataError(f"No photos found in {photos_dir}: expected sub-folders named "
                        f"{', '.join(classes)} holding images.")
    return photos


def fill_crop(path: Path, size: int) -> np.ndarray:
    """Open a photo, resize it so it fills ``size`` x ``size``, and crop the centre."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = size / min(image.size)
            width = max(size, round(image.width * scale))
            height = max(size, round(image.height * scale))
            image = image.resize((width, height), Image.Resampling.BICUBIC)
            left, top = (width - size) // 2, (height - size) // 2
            return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"Cannot read the image {path}: {exc}. Remove or replace the file, "
                        f"then run the import again.") from exc


def import_photos(photos_dir: Path, out_dir: Path, classes: tuple[str, ...], size: int,
                  seed: int = 0, shards: int = DEFAULT_SHARDS) -> ShardSet:
    """Turn a flower_photos-style folder into shards, shuffled so every shard mixes classes."""
    photos = list_photos(photos_dir, classes)
    random.Random(seed).shuffle(photos)
    # Decode everything before writing, so an unreadable photo stops the import with no output.
    pixels = [(fill_crop(path, size), label) for path, label in photos]
    return write_shards(iter(pixels), len(pixels), out_dir, classes, shards)


# ---------------------------------------------------------------- reading

def shard_files(data_dir: Path) -> list[Path]:
    """The sorted shard files of a data folder, or a DataError saying how to make them."""
    files = sorted(p for p in Path(data_dir).glob(SHARD_PATTERN) if SHARD_NAME.match(p.name))
    if not files:
        raise DataError(f"No flower shards ({SHARD_PATTERN}) in {data_dir}. Make some with "
                        f"`grade data synth --out {data_dir}` or `grade data import PHOTOS "
                        f"--out {data_dir}`.")
    return files


def split_files(files: list[Path], validation_split: float) -> tuple[list[Path], list[Path]]:
    """The codelab's split: the first ``validation_split`` of the sorted shard list validates."""
    cut = int(len(files) * validation_split)
    if cut == 0 or cut == len(files):
        raise DataError(f"{len(files)} shard file(s) cannot be split {validation_split:.0%} "
                        f"for validation by file. Write the data with more shards "
                        f"(the codelab uses {DEFAULT_SHARDS}).")
    return files[cut:], files[:cut]


def fixed(dataset):
    """``dataset`` without tf.data's autotuning (its parallelism and buffers are then the ones
    given). The autotuner's thread sleeps between rounds, and destroying an iterator waits for
    it to wake: at the end of `model.fit` the process sat idle for 8 of 48 s of a training
    (2 AVX2 cores), 30-45 s in `grade demo`. Fixed parallelism trained as fast."""
    options = tensorflow().data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def decode(files: Iterable[Path], image_size: int, limit: int = 0) -> Split:
    """Decode shard files into uint8 arrays, resized to ``image_size`` if they differ."""
    tf = tensorflow()

    names = [str(p) for p in files]
    features = {"image": tf.io.FixedLenFeature([], tf.string),
                "class": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        # the accurate integer IDCT (TensorFlow's default is the fast one): what Pillow
        # decodes for a JAX training (grader.training.records), so both see the same pixels
        image = tf.io.decode_jpeg(example["image"], channels=3, dct_method="INTEGER_ACCURATE")
        if image_size:
            image = tf.image.resize(image, [image_size, image_size])
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image, example["class"]

    dataset = fixed(tf.data.TFRecordDataset(names)).map(parse, num_parallel_calls=PARALLEL_CALLS)
    if limit:
        dataset = dataset.take(limit)
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(256).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        raise DataError(f"The shard files {names} hold no images.")
    return Split(np.concatenate(images), np.concatenate(labels).astype(np.int32), tuple(names))


def iter_records(files: Iterable[Path]) -> Iterator[dict[str, object]]:
    """Every record's features as Python values (for tests and checks of written shards)."""
    tf = tensorflow()

    for raw in tf.data.TFRecordDataset([str(p) for p in files]).as_numpy_iterator():
        example = tf.train.Example.FromString(raw)
        feature = example.features.feature
        yield {
            "image": feature["image"].bytes_list.value[0],
            "class": feature["class"].int64_list.value[0],
            "label": feature["label"].bytes_list.value[0].decode(),
            "size": list(feature["size"].int64_list.value),
            "one_hot_class": list(feature["one_hot_class"].float_list.value),
        }
