"""The server certificate, re-read when its mounted files change (issue 13).

cert-manager (or an operator's ``kubectl apply``) rotates the server certificate in place:
the kubelet swaps the Secret volume's files atomically. The gateway notices the change by
the files' stamps (inode, mtime, size) and loads the new pair into the live SSLContext, so
new handshakes present it while connections already open keep theirs. A pair that does not
load (half written, key and certificate not matching, a key readable by others) is
logged and the old one kept; the
next change is tried again.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

from gateway.settings import secret_file_exposure

log = logging.getLogger("sluis.server")

Stamp = tuple[tuple[int, int, int], ...]


def _stamp(paths: tuple[Path, ...]) -> Stamp | None:
    try:
        infos = [os.stat(path) for path in paths]  # noqa: PTH116 - os.stat follows the kubelet's symlinks like open does
    except OSError:
        return None
    return tuple((info.st_ino, info.st_mtime_ns, info.st_size) for info in infos)


class ServerCertificate:
    """Reloads ``cert`` and ``key`` into ``context`` when they change on disk."""

    def __init__(self, context: ssl.SSLContext, cert: Path, key: Path) -> None:
        self.context = context
        self.cert = cert
        self.key = key
        self._stamp = _stamp((cert, key))

    def check(self) -> bool:
        """Reload when the files changed since the last look; True when a new pair loaded."""
        stamp = _stamp((self.cert, self.key))
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            exposed = secret_file_exposure(self.key)
            if exposed is not None:
                log.warning("the changed server key %s %s, keeping the old", self.key, exposed)
                return False
            # A scratch context first: loading a bad pair into the live one could leave it
            # with the new certificate and no usable key.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert, self.key)
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            log.warning("the changed server certificate cannot be loaded, keeping the old: %s", exc)
            return False
        log.info("server certificate reloaded from %s", self.cert)
        return True
