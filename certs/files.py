"""File-system edge for the CA directory: key files (0600, never overwritten) and atomic writes.

Private keys are PKCS#8 PEM, unencrypted unless a passphrase is given (CA keys only).
An unencrypted key is protected by its file mode alone: keep the CA directory off shared disks.
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
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
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


def read_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Load one of our signing keys; PKIError ``key-permissions`` if group/world can read it.

    Also ``key-missing``, ``key-passphrase`` (encrypted without / with a wrong passphrase),
    ``unsupported-key``.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise PKIError("key-missing", f"cannot open key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode) or mode & 0o077:
            raise PKIError(
                "key-permissions",
                f"key file {path} must be a regular file with mode 0600 (is {mode & 0o777:o})",
            )
        data = handle.read()
    return _parse_key(path, data, passphrase)


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
