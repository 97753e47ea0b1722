"""Key files: what ``read_private_key`` refuses, each by its code and words, and the one rule
(:func:`certs.files.key_file_exposure`) for who else may read a key, bit by bit."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from certs import PKIError
from certs.files import (
    KEY_MODE,
    PUBLIC_MODE,
    ensure_private_dir,
    key_file_exposure,
    key_pem,
    read_private_key,
    write_atomic,
    write_private_key,
)
from certs.keys import generate_key

UID, GID = 1000, 1000


def _refusal(path: Path, passphrase: bytes | None = None) -> PKIError:
    with pytest.raises(PKIError) as info:
        read_private_key(path, passphrase)
    return info.value


def _info(mode: int, *, uid: int = UID, gid: int = GID) -> os.stat_result:
    return os.stat_result((stat.S_IFREG | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))


def test_a_directory_named_as_the_key_is_refused_as_no_key_file(tmp_path: Path) -> None:
    """Opening a directory read-only succeeds; ``fdopen`` then raised IsADirectoryError."""
    folder = tmp_path / "issuing-ca.key"
    folder.mkdir(mode=0o700)
    refusal = _refusal(folder)
    assert refusal.code == "key-permissions"
    assert refusal.detail == f"key file {folder} is not a regular file"


def test_a_fifo_named_as_the_key_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """A FIFO blocks ``open`` until someone writes; the key loader must not hang on one."""
    fifo = tmp_path / "server.key"
    os.mkfifo(fifo, 0o600)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_private_key(fifo)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():
        with fifo.open("wb"):  # release the blocked reader, then fail
            pass
        reader.join()
        pytest.fail("read_private_key blocked on a FIFO until a writer came")
    assert len(outcome) == 1
    assert isinstance(outcome[0], PKIError)
    assert outcome[0].code == "key-permissions"
    assert outcome[0].detail == f"key file {fifo} is not a regular file"
