"""Key files: what ``read_private_key`` refuses, each by its code and words, and the one rule
(:func:`certs.files.key_file_exposure`) for who else may read a key, bit by bit."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

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


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "reason"),
    [
        # The reader's own file: no group or world bit at all.
        (0o600, UID, GID, None),
        (0o400, UID, GID, None),
        (0o700, UID, GID, None),
        (0o640, UID, GID, "is readable by its group: chmod 600 it"),
        (0o610, UID, GID, "is readable by its group: chmod 600 it"),
        (0o620, UID, GID, "is readable by its group: chmod 600 it"),
        (0o604, UID, GID, "is readable by others: chmod 600 it"),
        (0o601, UID, GID, "is readable by others: chmod 600 it"),
        (0o602, UID, GID, "is readable by others: chmod 600 it"),
        # Root's file: group-read only for one of the reader's groups, never write or exec.
        (0o400, 0, GID, None),
        (0o440, 0, GID, None),
        (0o640, 0, GID, None),
        (0o440, 0, 4242, "is readable by group 4242, which this process is not in: "
         "chmod 400 it, or mount it with the pod's fsGroup"),
        (0o400, 0, 4242, None),
        (0o460, 0, GID, "is writable by its group: chmod 440 it"),
        (0o450, 0, GID, "is writable by its group: chmod 440 it"),
        (0o420, 0, 4242, "is writable by its group: chmod 440 it"),
        (0o444, 0, GID, "is readable by others: chmod 600 it"),
        # Anyone else's file, however tight.
        (0o400, 1, GID, "is owned by user 1, neither this process's user nor root"),
        (0o600, 4242, GID, "is owned by user 4242, neither this process's user nor root"),
    ],
)  # fmt: skip
def test_the_key_file_rule_bit_by_bit(mode: int, uid: int, gid: int, reason: str | None) -> None:
    assert key_file_exposure(_info(mode, uid=uid, gid=gid), uid=UID, groups={GID, 7}) == reason


def test_a_readable_key_is_refused_with_its_path_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_private_key(path, generate_key("ec-p256"))
    path.chmod(0o644)
    refusal = _refusal(path)
    assert refusal.code == "key-permissions"
    assert refusal.detail == f"key file {path} is readable by others: chmod 600 it"


def test_a_missing_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    refusal = _refusal(path)
    assert refusal.code == "key-missing"
    assert refusal.detail == f"cannot open key file {path}: No such file or directory"


@pytest.mark.parametrize("key_type", ["ec-p256", "ed25519"])
def test_a_key_round_trips_through_its_file(tmp_path: Path, key_type: str) -> None:
    key = generate_key(key_type)  # type: ignore[arg-type]  # both KeyType values
    path = tmp_path / "k.key"
    write_private_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == KEY_MODE == 0o600
    assert path.read_bytes() == key_pem(key)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert read_private_key(path).public_key() == key.public_key()


def test_a_passphrase_encrypts_and_is_needed(tmp_path: Path) -> None:
    key = generate_key("ec-p256")
    path = tmp_path / "k.key"
    write_private_key(path, key, b"s3cret")
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert read_private_key(path, b"s3cret").public_key() == key.public_key()
    assert key_pem(key, b"") == key_pem(key)  # an empty passphrase encrypts nothing
    missing = _refusal(path)
    assert missing.code == "key-passphrase"
    assert missing.detail.startswith(f"key file {path}: ")
    wrong = _refusal(path, b"wrong")
    assert wrong.code == "key-passphrase"
    assert wrong.detail == f"key file {path} cannot be decrypted/read"
    plain = tmp_path / "plain.key"
    write_private_key(plain, key)
    assert _refusal(plain, b"s3cret").code == "key-passphrase"


def test_an_existing_key_file_is_named_in_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_private_key(path, generate_key("ed25519"))
    before = path.read_bytes()
    with pytest.raises(PKIError) as info:
        write_private_key(path, generate_key("ed25519"))
    assert info.value.code == "key-exists"
    assert info.value.detail == f"refusing to overwrite existing key file {path}"
    assert path.read_bytes() == before


def test_write_atomic_sets_the_mode_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "crl.pem"
    write_atomic(path, b"one")
    assert stat.S_IMODE(path.stat().st_mode) == PUBLIC_MODE == 0o644
    write_atomic(path, b"two", mode=0o600)
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crl.pem"]  # no temporary left


def test_write_atomic_leaves_nothing_behind_when_it_fails(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_bytes(b"x")  # a non-empty directory cannot be replaced
    with pytest.raises(IsADirectoryError):
        write_atomic(target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_ensure_private_dir_creates_and_tightens(tmp_path: Path) -> None:
    fresh = tmp_path / "a" / "b"
    ensure_private_dir(fresh)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    ensure_private_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_a_key_of_another_kind_is_named_in_the_refusal(tmp_path: Path) -> None:
    rsa_path = tmp_path / "rsa.key"
    rsa_path.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    rsa_path.chmod(0o600)
    refusal = _refusal(rsa_path)
    assert refusal.code == "unsupported-key"
    assert refusal.detail == f"key file {rsa_path} is not an EC or Ed25519 key"
