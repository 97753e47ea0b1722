"""The files connector against hostile trees: links swapped while reading, loops, dangling
links, special files (issue 12). Real files, real links, a real racing thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from connectors import ConnectorError, PathRefused, Query
from connectors.files import FileFormat, FilesConfig, FilesConnector
from tests.connectors.cases import collect

SCHEMA = pa.schema([("id", pa.int64())])
INSIDE, OUTSIDE = 1, 666


def _csv(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"id\n{value}\n")


def _read(root: Path, path: str) -> list[int]:
    config = FilesConfig(root=root, path=path, format=FileFormat.CSV, schema=SCHEMA)
    return [r["id"] for r in asyncio.run(collect(FilesConnector("x", config), Query()))]


def _open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_a_directory_swapped_for_a_link_while_reading_never_reads_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    _csv(root / "d" / "data.csv", INSIDE)
    _csv(outside / "data.csv", OUTSIDE)
    done = threading.Event()

    def swap() -> None:  # bounded: stops when the reader is done, or after this many swaps
        for _ in range(200_000):
            if done.is_set():
                return
            (root / "d").rename(root / "d-real")
            (root / "d").symlink_to(outside)
            time.sleep(0.001)  # hold each state a moment (pacing only, nothing is timed)
            (root / "d").unlink()
            (root / "d-real").rename(root / "d")
            time.sleep(0.001)

    swapper = threading.Thread(target=swap)
    swapper.start()
    seen: list[int] = []
    try:
        for _ in range(300):
            with contextlib.suppress(ConnectorError):  # mid-swap: refused or missing
                seen += _read(root, "d/data.csv")
    finally:
        done.set()
        swapper.join()
    assert OUTSIDE not in seen
    assert seen == [INSIDE] * len(seen)
    assert seen  # the race was run: some reads fell between the swaps


def test_a_link_loop_inside_a_directory_is_a_path_refusal(tmp_path: Path) -> None:
    _csv(tmp_path / "parts" / "a.csv", INSIDE)
    (tmp_path / "parts" / "b.csv").symlink_to("c.csv")
    (tmp_path / "parts" / "c.csv").symlink_to("b.csv")
    with pytest.raises(PathRefused, match="loop"):
        _read(tmp_path, "parts")


def test_a_dangling_link_inside_a_directory_is_a_path_refusal(tmp_path: Path) -> None:
    _csv(tmp_path / "parts" / "a.csv", INSIDE)
    (tmp_path / "parts" / "b.csv").symlink_to("gone.csv")
    with pytest.raises(PathRefused, match="dangling"):
        _read(tmp_path, "parts")


def test_links_that_stay_inside_are_followed_relative_and_absolute(tmp_path: Path) -> None:
    _csv(tmp_path / "data" / "real.csv", INSIDE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rel.csv").symlink_to("../data/real.csv")
    (tmp_path / "sub" / "abs.csv").symlink_to(tmp_path / "data" / "real.csv")
    (tmp_path / "sub" / "chain.csv").symlink_to("rel.csv")
    for path in ("sub/rel.csv", "sub/abs.csv", "sub/chain.csv"):
        assert _read(tmp_path, path) == [INSIDE]


@pytest.mark.parametrize("target", ["../../outside.csv", "/etc/passwd", "../sub/../../x.csv"])
def test_links_that_climb_out_are_refused(tmp_path: Path, target: str) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    _csv(tmp_path / "outside.csv", OUTSIDE)
    (root / "sub" / "link.csv").symlink_to(target)
    with pytest.raises(PathRefused):
        _read(root, "sub/link.csv")


def test_a_fifo_is_never_opened_for_reading(tmp_path: Path) -> None:
    _csv(tmp_path / "parts" / "a.csv", INSIDE)
    os.mkfifo(tmp_path / "parts" / "pipe.csv")
    assert _read(tmp_path, "parts") == [INSIDE]  # the pipe is skipped, and nothing blocks
    with pytest.raises(PathRefused):
        _read(tmp_path, "parts/pipe.csv")


@contextlib.contextmanager
def _socket_at(path: Path) -> Iterator[None]:
    """A listening Unix socket at ``path`` (bound in its directory: paths are short)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    here = Path.cwd()
    with socket.socket(socket.AF_UNIX) as sock:
        os.chdir(path.parent)
        try:
            sock.bind(path.name)
        finally:
            os.chdir(here)
        yield


def test_a_socket_is_skipped_in_a_directory_and_refused_by_name(tmp_path: Path) -> None:
    """A socket cannot be opened at all (ENXIO): skipped by its type, like a FIFO, and
    named directly a path refusal; it used to make the whole directory unavailable."""
    _csv(tmp_path / "parts" / "a.csv", INSIDE)
    with _socket_at(tmp_path / "parts" / "sock.csv"):
        (tmp_path / "parts" / "link.csv").symlink_to("sock.csv")
        assert _read(tmp_path, "parts") == [INSIDE]
        for path in ("parts/sock.csv", "parts/link.csv"):
            with pytest.raises(PathRefused) as refused:
                _read(tmp_path, path)
            assert refused.value.reason == f"not a regular file or directory: {path!r}"
        with pytest.raises(PathRefused) as refused:
            _read(tmp_path, "parts/sock.csv/a.csv")
        assert refused.value.reason == "not a regular file or directory: 'parts/sock.csv/a.csv'"


def test_a_fifo_named_directly_is_refused_by_its_type(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(PathRefused) as refused:
        _read(tmp_path, "pipe.csv")
    assert refused.value.reason == "not a regular file or directory: 'pipe.csv'"


def test_no_descriptor_is_left_open(tmp_path: Path) -> None:
    _csv(tmp_path / "parts" / "a.csv", INSIDE)
    _csv(tmp_path / "parts" / "b.csv", INSIDE)
    (tmp_path / "parts" / "loop.csv").symlink_to("loop.csv")
    before = _open_fds()
    for _ in range(5):
        with pytest.raises(PathRefused):
            _read(tmp_path, "parts")
        assert _read(tmp_path, "parts/a.csv") == [INSIDE]
    assert _open_fds() == before


def test_a_directory_of_many_files_reads_under_a_low_descriptor_limit(tmp_path: Path) -> None:
    for i in range(300):
        _csv(tmp_path / "parts" / f"{i:03}.csv", INSIDE)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (_open_fds() + 64, hard))
    try:
        assert _read(tmp_path, "parts") == [INSIDE] * 300
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
