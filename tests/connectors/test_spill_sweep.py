"""Spill directories a killed server left behind are removed at start-up, and nothing else is
(issue 12). A real child process claims a directory and is killed with SIGKILL; the gateway's
own start-up (its lifespan, on SQLite) does the sweep."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.spill import OWNER, PREFIX, _claim, sweep
from gateway.app import create_app
from tests.support.audit_site import start
from tests.support.pki import Pki
from tests.support.server import gateway_settings

CLAIM = """
import sys, tempfile
from pathlib import Path
from connectors.spill import PREFIX, _claim
workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=sys.argv[1]))
_claim(workdir)
(workdir / "tmp").mkdir()
(workdir / "tmp" / "duckdb_temp_block-1.block").write_bytes(b"x" * 4096)
print(workdir, flush=True)
sys.stdin.read()
"""


def _killed_server_dir(spill: Path) -> Path:
    """A query directory claimed by a process that was then killed with SIGKILL."""
    spill.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(spill)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    workdir = Path(child.stdout.readline().strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.stdin is not None
    child.stdin.close()
    child.stdout.close()
    return workdir


@pytest.fixture
def others(tmp_path: Path) -> Iterator[tuple[Path, list[Path]]]:
    """A spill directory holding what is not ours or not abandoned: (spill, those paths)."""
    spill = tmp_path / "spill"
    outside = tmp_path / "outside"
    (outside / OWNER).parent.mkdir(parents=True)
    (outside / OWNER).write_bytes(b"")
    spill.mkdir()
    foreign = spill / f"{PREFIX}foreign"  # our prefix, no marker
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not ours")
    linked = spill / f"{PREFIX}link"  # a link to a directory with a marker
    linked.symlink_to(outside, target_is_directory=True)
    marker_link = spill / f"{PREFIX}marker-link"  # the marker is a link
    marker_link.mkdir()
    (marker_link / OWNER).symlink_to(outside / OWNER)
    other = spill / "other"
    other.mkdir()
    (other / OWNER).write_bytes(b"")  # a marker, not our prefix
    live = spill / f"{PREFIX}live"
    live.mkdir()
    held = _claim(live)  # a query running now (its lock is held)
    try:
        yield spill, [foreign, linked, marker_link, other, live, outside / OWNER]
    finally:
        os.close(held)


def test_a_killed_servers_directory_is_removed_and_nothing_else(
    others: tuple[Path, list[Path]],
) -> None:
    spill, kept = others
    left = _killed_server_dir(spill)
    assert (left / OWNER).is_file()
    assert sweep(spill) == 1
    assert not left.exists()
    assert all(path.exists() or path.is_symlink() for path in kept)
    assert (spill / f"{PREFIX}foreign" / "keep.txt").read_text() == "not ours"


def test_a_missing_spill_directory_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert sweep(tmp_path / "absent") == 0


def test_a_running_query_holds_its_marker_locked(tmp_path: Path) -> None:
    workdir = tmp_path / f"{PREFIX}x"
    workdir.mkdir()
    held = _claim(workdir)
    probe = os.open(workdir / OWNER, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(probe)
        os.close(held)


def test_the_gateway_sweeps_at_start_up(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    settings = gateway_settings(pki, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'sluis.db'}")
    left = _killed_server_dir(settings.spill_directory)
    foreign = settings.spill_directory / f"{PREFIX}foreign"
    foreign.mkdir()
    asyncio.run(start(create_app(settings)))
    assert not left.exists()
    assert foreign.is_dir()
