"""Downloads a notebook makes, served offline: TFDS's ``tf_flowers`` made from the archive.

``tfds.load('tf_flowers')`` downloads flower_photos.tgz and checks it against TFDS's registered
checksum; the grading machine has no network. ``prepare_tfds`` builds the prepared dataset with
TFDS's own builder, reading a local archive instead of downloading it, into DATA/tfds. The
grading kernel's TFDS data directory is that folder when it exists, so ``tfds.load`` reads the
prepared files and never downloads. ``grade data fetch`` prepares it from the verified archive;
``grade data tfds`` from any archive in the same layout (folders of JPEGs per class).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.errors import DataError

TFDS_FOLDER = "tfds"       # under the --data folder
DATASET = "tf_flowers"


def tfds_dir(data_dir: Path) -> Path | None:
    """The prepared TFDS folder of a data folder, or None."""
    folder = data_dir / TFDS_FOLDER
    return folder if (folder / DATASET).is_dir() else None


def prepare_tfds(archive: Path, data_dir: Path) -> Path:
    """Prepare ``tf_flowers`` from ``archive`` (a .tgz of flower_photos/<class>/*.jpg) into
    DATA/tfds; returns that folder."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("tensorflow-datasets is not installed: install the grader with its "
                        "student runtime (make install).") from None
    from grader.lazy import tensorflow
    tensorflow()  # TFDS imports TensorFlow: quietly, once
    tfds.disable_progress_bar()

    if not archive.is_file():
        raise DataError(f"{archive} does not exist.")
    out = data_dir / TFDS_FOLDER
    manager = tfds.download.DownloadManager
    original = manager.download

    def local(self, url_or_urls):  # the one download tf_flowers makes
        return str(archive.resolve())

    manager.download = local
    try:
        with tempfile.TemporaryDirectory(prefix="flowers-grader-tfds-") as downloads:
            builder = tfds.builder(DATASET, data_dir=str(out))
            builder.download_and_prepare(
                download_dir=downloads,
                download_config=tfds.download.DownloadConfig(
                    verify_ssl=False, download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
    except Exception as exc:  # a corrupt archive, a full disk: say which archive
        raise DataError(f"Cannot prepare TFDS's {DATASET} from {archive}: "
                        f"{type(exc).__name__}: {exc}") from None
    finally:
        manager.download = original
    return out
