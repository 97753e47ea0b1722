"""CA keys as the kubelet mounts them, read by the pod's user: the gateway's one key-file rule.

A CRL refresh (``sluis certs crl``) in a pod reads the issuing CA's key from a Secret. With
``fsGroup: 10001`` and ``defaultMode: 0440`` the kubelet makes the file ``0440 root:10001``
and runs the process as UID 10001 with 10001 as a supplementary group. Mounted as a volume,
the file is reached through the kubelet's atomic-writer links (``name -> ..data/name``,
``..data -> ..<timestamp>``); mounted with ``subPath`` it is the file itself. The CA
directory (index, CRL) lives on a volume the pod's user owns. Each test builds that layout
(chown/chmod, so it needs root) and signs a CRL in a forked child running as that user.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.errors import PKIError
from certs.store import ISSUING, CADirectory

POD_UID = 10001
FS_GROUP = 10001
NOW = datetime(2026, 6, 1, tzinfo=UTC)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="making files owned by root:<fsGroup> needs root (chown)"
)


@pytest.fixture(scope="module")
def template() -> Iterator[Path]:
    """One CA, made once; each test copies it (key generation is the slow part)."""
    base = Path(tempfile.mkdtemp(prefix="sluis-ca-"))
    try:
        CADirectory.init(base / "pki", name="Mounted", key_type="ec-p256", now=NOW)
        yield base / "pki"
    finally:
        shutil.rmtree(base)


@pytest.fixture
def pod_dirs(template: Path) -> Iterator[tuple[Path, Path]]:
    """(CA directory owned by the pod's user, empty Secret mount point owned by root)."""
    base = Path(tempfile.mkdtemp(prefix="sluis-pod-"))
    base.chmod(0o755)
    ca_dir, secret = base / "pki", base / "secret"
    shutil.copytree(template, ca_dir)
    for path in (ca_dir, *ca_dir.iterdir()):
        os.chown(path, POD_UID, POD_UID)
    secret.mkdir(mode=0o755)
    try:
        yield ca_dir, secret
    finally:
        shutil.rmtree(base)


def _kubelet_volume(secret: Path, name: str, data: bytes, mode: int, gid: int) -> Path:
    """The kubelet's atomic-writer layout of one Secret key; returns the visible path."""
    stamp = secret / "..2026_06_01_12_00_00.123456789"
    stamp.mkdir(mode=0o755)
    real = stamp / name
    real.write_bytes(data)
    os.chown(real, 0, gid)
    real.chmod(mode)
    (secret / "..data").symlink_to(stamp.name)
    visible = secret / name
    visible.symlink_to(f"..data/{name}")
    return visible


def _as_pod(action: Callable[[], object]) -> tuple[int, str]:
    """Run ``action`` in a forked child as the pod's user and groups: (exit code, message)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and exits
        status, message = 0, "ok"
        try:
            os.setgroups([FS_GROUP])
            os.setgid(POD_UID)
            os.setuid(POD_UID)
            action()
        except PKIError as exc:
            status, message = 3, f"{exc.code}: {exc}"
        except BaseException as exc:  # noqa: BLE001 - the child must always report and exit
            status, message = 4, repr(exc)
        os.write(write, message.encode())
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    _, waited = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(waited), message


def _mount_key(ca_dir: Path, secret: Path, shape: str, mode: int, gid: int) -> None:
    key = ca_dir / f"{ISSUING}.key"
    data = key.read_bytes()
    key.unlink()
    if shape == "volume":
        key.symlink_to(_kubelet_volume(secret, key.name, data, mode, gid))
        os.lchown(key, POD_UID, POD_UID)
    else:  # subPath: a bind mount of the file itself, same owner and mode
        key.write_bytes(data)
        os.chown(key, 0, gid)
        key.chmod(mode)


@pytest.mark.parametrize("shape", ["volume", "subPath"])
def test_ca_key_mounted_0440_root_fs_group_signs_a_crl(
    pod_dirs: tuple[Path, Path], shape: str
) -> None:
    ca_dir, secret = pod_dirs
    _mount_key(ca_dir, secret, shape, 0o440, FS_GROUP)
    before = (ca_dir / "crl.pem").read_bytes()
    assert _as_pod(lambda: CADirectory(ca_dir).refresh_crl(now=NOW)) == (0, "ok")
    assert (ca_dir / "crl.pem").read_bytes() != before


@pytest.mark.parametrize(
    ("mode", "gid", "reason"),
    [
        (0o444, FS_GROUP, "readable by others"),
        (0o460, FS_GROUP, "writable by its group"),
    ],
    ids=["world", "group-write"],
)
def test_wider_ca_key_mounts_are_refused(
    pod_dirs: tuple[Path, Path], mode: int, gid: int, reason: str
) -> None:
    ca_dir, secret = pod_dirs
    _mount_key(ca_dir, secret, "volume", mode, gid)
    status, message = _as_pod(lambda: CADirectory(ca_dir).refresh_crl(now=NOW))
    assert status == 3, message
    assert message.startswith("key-permissions")
    assert reason in message


def test_the_owner_may_not_share_the_ca_key_with_its_group(pod_dirs: tuple[Path, Path]) -> None:
    ca_dir, _ = pod_dirs
    (ca_dir / f"{ISSUING}.key").chmod(0o640)  # owned by the pod's user: 0600 or nothing
    status, message = _as_pod(lambda: CADirectory(ca_dir).refresh_crl(now=NOW))
    assert status == 3, message
    assert "readable by its group" in message
