"""`grade data fetch` end to end against an HTTP server on 127.0.0.1 that the test starts.

The server serves a flower_photos-style archive the test builds; it honours Range requests, and
can be told to cut a download short or to serve corrupted bytes.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.training.data import iter_records, shard_files

CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def _archive() -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index, name in enumerate(CLASSES * 2):
            image = io.BytesIO()
            pixels = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(image, format="JPEG")
            info = tarfile.TarInfo(f"flower_photos/{name}/{index}.jpg")
            info.size = len(image.getvalue())
            tar.addfile(info, io.BytesIO(image.getvalue()))
        licence = tarfile.TarInfo("flower_photos/LICENSE.txt")
        licence.size = 5
        tar.addfile(licence, io.BytesIO(b"CC-BY"))
    return buffer.getvalue()


class Server:
    """What the handler serves, and how it misbehaves."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.cut_after: int | None = None   # close the connection after this many bytes
        self.corrupt = False
        self.requests: list[str | None] = []  # the Range header of each request


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = bytes(b ^ 0xFF for b in server.body) if server.corrupt else server.body
            wanted = self.headers.get("Range")
            server.requests.append(wanted)
            start = int(wanted.split("=")[1].rstrip("-")) if wanted else 0
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            chunk = body[start:]
            if server.cut_after is not None:
                chunk = chunk[:server.cut_after]
                server.cut_after = None
            self.wfile.write(chunk)

    return Handler


@pytest.fixture
def served() -> Iterator[tuple[Server, str, str]]:
    body = _archive()
    state = Server(body)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/flower_photos.tgz"
    yield state, url, hashlib.sha256(body).hexdigest()
    httpd.shutdown()


@pytest.fixture
def _fetch(grade_here):
    def fetch(out: Path, url: str, sha: str):
        return grade_here("data", "fetch", "--out", out, "--size", 64, "--url", url,
                          "--sha256", sha)
    return fetch


def test_fetch_downloads_verifies_and_imports(served, tmp_path: Path, _fetch) -> None:
    state, url, sha = served
    process = _fetch(tmp_path, url, sha)
    assert process.returncode == 0, process.stderr
    assert "wrote 10 images (daisy 2, dandelion 2, roses 2, sunflowers 2, tulips 2)" \
        in process.stdout
    records = list(iter_records(shard_files(tmp_path)))
    assert len(records) == 10 and {len(r["image"]) > 0 for r in records} == {True}
    assert (tmp_path / ".fetch" / "flower_photos.tgz").exists()
    # A rerun reuses the verified archive: no second download.
    assert _fetch(tmp_path, url, sha).returncode == 0
    assert state.requests == [None]


def test_an_interrupted_download_resumes(served, tmp_path: Path, _fetch) -> None:
    state, url, sha = served
    state.cut_after = len(state.body) // 3
    first = _fetch(tmp_path, url, sha)
    assert first.returncode == 1
    assert "interrupted" in first.stderr and "again to resume" in first.stderr
    assert "Traceback" not in first.stderr
    part = tmp_path / ".fetch" / "flower_photos.tgz.part"
    assert part.stat().st_size == len(state.body) // 3
    second = _fetch(tmp_path, url, sha)
    assert second.returncode == 0, second.stderr
    assert state.requests == [None, f"bytes={len(state.body) // 3}-"]
    assert len(shard_files(tmp_path)) == 10 and not part.exists()


def test_a_corrupted_download_is_refused_and_restarts_clean(served, tmp_path: Path,
                                                            _fetch) -> None:
    state, url, sha = served
    state.corrupt = True
    process = _fetch(tmp_path, url, sha)
    assert process.returncode == 1
    assert "is corrupted" in process.stderr and sha in process.stderr
    assert not list(tmp_path.glob("*.tfrec"))
    assert not (tmp_path / ".fetch" / "flower_photos.tgz.part").exists()
    state.corrupt = False
    assert _fetch(tmp_path, url, sha).returncode == 0
    assert state.requests == [None, None]


def test_offline_gives_a_clear_error(tmp_path: Path, _fetch) -> None:
    # Nothing listens on this port: connection refused, as on a machine without network.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = _fetch(tmp_path, f"http://127.0.0.1:{port}/flower_photos.tgz", "0" * 64)
    assert process.returncode == 1
    assert "Cannot download from 127.0.0.1" in process.stderr
    assert "Check the network" in process.stderr and "Traceback" not in process.stderr
