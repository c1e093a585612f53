"""`grade data fetch`: download the public flower photo archive, verify it, unpack it, import it.

The download resumes: bytes arrive in ``DIR/.fetch/<name>.part`` and a rerun asks the server for
the rest (HTTP Range). Only a file whose SHA-256 matches the exercise's is unpacked; a mismatch
deletes the partial file so the next run starts clean.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from grader.errors import DataError
from grader.exercise import Dataset
from grader.io import sha256 as sha256_of
from grader.training.data import ShardSet, import_photos

CHUNK = 1 << 16
TIMEOUT = 30  # seconds without a byte before a download counts as stalled
Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def _open(url: str, start: int):
    request = urllib.request.Request(url, headers={"User-Agent": "flowers-grader"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part file is already complete (or longer)
            return None
        raise DataError(f"The server refused {url}: HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        host = urlparse(url).netloc or url
        reason = getattr(exc, "reason", exc)
        raise DataError(f"Cannot download from {host} ({reason}). Check the network "
                        f"connection, or download {url} elsewhere and unpack it, then run "
                        f"`grade data import FOLDER --out DIR`.") from None


def download(url: str, part: Path, expected_size: int | None, progress: Progress) -> Path:
    """Download ``url`` into ``part``, resuming from what is already there."""
    part.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start)
    if response is None:
        return part
    with response:
        resumed = start and response.status == 206
        if not resumed:
            start = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length else expected_size
        with open(part, "ab" if resumed else "wb") as handle:
            done = start
            progress(done, total)
            try:
                while block := response.read(CHUNK):
                    handle.write(block)
                    done += len(block)
                    progress(done, total)
            except (OSError, socket.timeout, http.client.HTTPException) as exc:
                raise _interrupted(url, done, str(exc)) from None
    if length and done < total:  # the server closed the connection early
        raise _interrupted(url, done, f"{total - done:,} bytes missing")
    return part


def _interrupted(url: str, done: int, why: str) -> DataError:
    return DataError(f"The download of {url} was interrupted after {done:,} bytes ({why}). "
                     f"Run the same command again to resume.")


def unpack(archive: Path, into: Path) -> None:
    """Unpack a .tgz safely (no absolute paths, links out of the folder, or devices)."""
    if into.exists():
        shutil.rmtree(into)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"Cannot unpack {archive.name}: {exc}. Delete {archive.parent} and "
                        f"run the command again.") from None


def fetch(dataset: Dataset, out: Path, classes: tuple[str, ...], size: int,
          progress: Progress = lambda done, total: None, url: str | None = None,
          sha256: str | None = None) -> ShardSet:
    """Download (resuming), verify, unpack and import the photo archive into shards in ``out``."""
    url, expected = url or dataset.url, (sha256 or dataset.sha256).lower()
    work = out / ".fetch"
    name = Path(urlparse(url).path).name or "archive.tgz"
    archive, part = work / name, work / f"{name}.part"
    if not (archive.exists() and sha256_of(archive) == expected):
        download(url, part, dataset.size if url == dataset.url else None, progress)
        actual = sha256_of(part)
        if actual != expected:
            part.unlink()
            raise DataError(f"The download of {url} is corrupted: its SHA-256 is {actual}, "
                            f"expected {expected}. The partial file was deleted; run the "
                            f"command again to download it afresh.")
        os.replace(part, archive)
    photos = work / "photos"
    unpack(archive, photos)
    root = photos / dataset.root
    written = import_photos(root if root.is_dir() else photos, out, classes, size)
    shutil.rmtree(photos, ignore_errors=True)  # the verified archive stays, for reruns
    return written
