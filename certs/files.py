"""File-system edge for the CA directory: key files (0600, never overwritten) and atomic writes.

Private keys are PKCS#8 PEM, unencrypted unless a passphrase is given (CA keys only).
An unencrypted key is protected by its file mode alone: keep the CA directory off shared disks.
Reading a key applies the one key-file rule (:func:`key_file_exposure`), which the gateway's
own key loaders share: 0600/0400 owned by the reader, or ``0440 root:<fsGroup>`` as the kubelet
mounts a Secret.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from certs.errors import PKIError
from certs.keys import PrivateKey

KEY_MODE = 0o600
PUBLIC_MODE = 0o644
# Reading follows a symlink: the kubelet mounts a Secret's files as ``name -> ..data/name``.
# The rule is checked on the file actually opened (fstat), so a link gains nothing.
# O_NONBLOCK: a FIFO at the key's path would otherwise block ``open`` until a writer came;
# opened this way it is refused as not a regular file (no effect on regular files).
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted with the best available scheme when ``passphrase``."""
    encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase:
        encryption = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    """Create ``path`` with mode 0600 from the start and write the key; never overwrite.

    PKIError ``key-exists`` when the file (or a symlink) is already there.
    """
    data = key_pem(key, passphrase)
    try:
        fd = os.open(path, _CREATE_FLAGS | getattr(os, "O_CLOEXEC", 0), KEY_MODE)
    except FileExistsError as exc:
        raise PKIError("key-exists", f"refusing to overwrite existing key file {path}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def key_file_exposure(info: os.stat_result, *, uid: int, groups: set[int]) -> str | None:
    """Why a private key file with ``info`` is exposed to others, or None when it is not.

    The rule is PostgreSQL's for its server key, narrowed to the process's own group:

    - owned by the process's user (``uid``): no group or world bits at all (0600, 0400);
    - owned by root: group-read is also allowed (0640, 0440), but only when the file's group
      is one of the process's own ``groups``, so the only readers besides root are this
      process's group. That is how the kubelet mounts a Secret with ``defaultMode: 0400``
      (or 0440) under a pod ``fsGroup``: ``0440 root:<fsGroup>``, the fsGroup being a
      supplementary group of the container's process;
    - anything else (world bits, group write, another owner, a foreign group) is refused.
    """
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IRWXO:
        return "is readable by others: chmod 600 it"
    if info.st_uid == uid:
        return "is readable by its group: chmod 600 it" if mode & stat.S_IRWXG else None
    if info.st_uid != 0:
        return f"is owned by user {info.st_uid}, neither this process's user nor root"
    return _root_owned_exposure(mode, info.st_gid, groups)


def _root_owned_exposure(mode: int, gid: int, groups: set[int]) -> str | None:
    if mode & (stat.S_IWGRP | stat.S_IXGRP):
        return "is writable by its group: chmod 440 it"
    if mode & stat.S_IRGRP and gid not in groups:
        return (
            f"is readable by group {gid}, which this process is not in: "
            "chmod 400 it, or mount it with the pod's fsGroup"
        )
    return None


def exposure_here(info: os.stat_result) -> str | None:
    """:func:`key_file_exposure` of ``info`` for this process's user and groups."""
    return key_file_exposure(info, uid=os.geteuid(), groups={os.getegid(), *os.getgroups()})


def read_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Load one of our signing keys; PKIError ``key-permissions`` if others can read it.

    "Others" as :func:`key_file_exposure` says: a Secret the kubelet mounts ``0440
    root:<fsGroup>`` for a process in that group is fine, 0640 owned by the reader is not.

    Also ``key-missing``, ``key-passphrase`` (encrypted without / with a wrong passphrase),
    ``unsupported-key``.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise PKIError("key-missing", f"cannot open key file {path}: {exc.strerror}") from exc
    info = _regular_file(fd, path)
    with os.fdopen(fd, "rb") as handle:
        exposed = exposure_here(info)
        if exposed is not None:
            raise PKIError("key-permissions", f"key file {path} {exposed}")
        data = handle.read()
    return _parse_key(path, data, passphrase)


def _regular_file(fd: int, path: Path) -> os.stat_result:
    """``fd``'s status; PKIError ``key-permissions`` (and ``fd`` closed) unless a regular file.

    Checked before ``fdopen``, which refuses a directory with an OSError of its own.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PKIError("key-permissions", f"key file {path} is not a regular file")
    return info


def _parse_key(path: Path, data: bytes, passphrase: bytes | None) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise PKIError("key-passphrase", f"key file {path}: {exc}") from exc
    except ValueError as exc:  # wrong passphrase or not a key; the message holds no key bytes
        raise PKIError("key-passphrase", f"key file {path} cannot be decrypted/read") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise PKIError("unsupported-key", f"key file {path} is not an EC or Ed25519 key")


def write_atomic(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Replace ``path`` atomically (temporary file in the same directory, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or tighten an existing directory to 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
