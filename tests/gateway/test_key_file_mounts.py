"""Key files as the kubelet mounts them: ``0440 root:<fsGroup>`` is accepted, nothing wider.

With ``fsGroup: 10001`` and a Secret ``defaultMode: 0400`` (or 0440) the kubelet makes the
files ``0440 root:10001`` and runs the container's process with 10001 as a supplementary
group. These tests make the files exactly so (chown/chmod, so they need root) and load them
in a child process running as that user with that supplementary group, as the pod's does.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from certs.files import key_file_exposure
from gateway.settings import Settings, SettingsError, load_audit_key, load_signing_key
from tests.support.pki import write_key

POD_UID = 10001
FS_GROUP = 10001
OTHER_GROUP = 20002

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="making files owned by root:<fsGroup> needs root (chown)"
)


@pytest.fixture
def mount() -> Iterator[Path]:
    """A directory like a Secret volume: traversable by the pod's user, owned by root."""
    directory = Path(tempfile.mkdtemp(prefix="sluis-secret-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


def _key(directory: Path, mode: int, uid: int, gid: int) -> Path:
    path = write_key(directory / "key.pem", ed25519.Ed25519PrivateKey.generate())
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def _load_as_pod(key: Path, home: Path) -> tuple[int, str]:
    """Load ``key`` as both keys in a forked child running as the pod's user and groups.

    A fork, not a new interpreter: the pod's user cannot reach this machine's Python (it lives
    under root's home), and the loaders need nothing but the already imported modules.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and exits
        status, message = 0, "loaded"
        try:
            os.setgroups([FS_GROUP])
            os.setgid(POD_UID)
            os.setuid(POD_UID)
            settings = Settings(home=home, signing_key_file=key, audit_key_file=key)
            load_signing_key(settings)
            load_audit_key(settings)
        except SettingsError as exc:
            status, message = 3, str(exc)
        except BaseException as exc:  # noqa: BLE001 - the child must always report and exit
            status, message = 4, repr(exc)
        os.write(write, message.encode())
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    _, waited = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(waited), message


@pytest.mark.parametrize("mode", [0o440, 0o640], ids=["0440", "0640"])
def test_kubelet_secret_under_fs_group_is_accepted(mount: Path, mode: int) -> None:
    assert _load_as_pod(_key(mount, mode, 0, FS_GROUP), mount) == (0, "loaded")


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "reason"),
    [
        (0o444, 0, FS_GROUP, "readable by others"),
        (0o460, 0, FS_GROUP, "writable by its group"),
        (0o440, 4242, FS_GROUP, "owned by user 4242"),
        (0o440, POD_UID, FS_GROUP, "readable by its group"),
    ],
    ids=["world", "group-write", "other-owner", "own-file-group-read"],
)
def test_wider_modes_are_refused(mount: Path, mode: int, uid: int, gid: int, reason: str) -> None:
    status, message = _load_as_pod(_key(mount, mode, uid, gid), mount)
    assert status == 3, message
    assert reason in message


def test_group_read_by_a_group_the_process_is_not_in_is_refused(mount: Path) -> None:
    # The pod's process could not even open such a file; root (or a process with
    # CAP_DAC_READ_SEARCH) could, and the rule must refuse it anyway.
    info = _key(mount, 0o440, 0, OTHER_GROUP).stat()
    reason = key_file_exposure(info, uid=POD_UID, groups={POD_UID, FS_GROUP})
    assert reason is not None
    assert "which this process is not in" in reason
    assert key_file_exposure(info, uid=POD_UID, groups={POD_UID, OTHER_GROUP}) is None
