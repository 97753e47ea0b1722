"""A read-only pyarrow filesystem over a ``ConfinedRoot``: every open is a confined walk.

pyarrow's CSV and JSON readers close the file they are handed, and a dataset opens each
fragment again for every scan, so a bare file object does not do. This filesystem names
each file ``"0"``, ``"1"``, ...; every open walks to it again beneath the root descriptor
(``connectors.paths``, no link followed the kernel's way) and gives pyarrow a native file
on the descriptor it got: ``/proc/self/fd/N`` reopens that open file, not a path (where
``/proc`` is missing, a Python file on the descriptor). Opening and closing share a lock,
so once ``close`` has run no open reaches the root's descriptor number again.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from connectors.paths import ConfinedRoot

_PROC = Path("/proc/self/fd").is_dir()


class ConfinedFiles(pafs.FileSystemHandler):  # type: ignore[misc]  # pyarrow has no stubs
    """Read-only handler over the files a ``ConfinedRoot`` lists; ``close`` ends all opens."""

    def __init__(self, root: ConfinedRoot) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._files = {str(i): parts for i, parts in enumerate(root.files())}
        except BaseException:
            root.close()
            raise

    @property
    def paths(self) -> list[str]:
        """The names to hand pyarrow.dataset, one per file."""
        return list(self._files)

    def filesystem(self) -> pafs.PyFileSystem:
        """This handler as a pyarrow filesystem."""
        return pafs.PyFileSystem(self)

    def close(self) -> None:
        """Close the root; any later open fails."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._root.close()

    def _open(self, path: str) -> int:
        if self._closed:
            raise OSError(errno.EBADF, "the dataset's files are closed")
        try:
            parts = self._files[path.lstrip("/")]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None
        return self._root.open_file(parts)

    def open_descriptor(self, path: str) -> int:
        """A descriptor of a fresh confined open of ``path``; the caller closes it."""
        with self._lock:
            return self._open(path)

    def open_input_file(self, path: str) -> pa.NativeFile:
        """A native file on a fresh confined open of ``path``."""
        return native_file(self.open_descriptor(path))

    def open_input_stream(self, path: str) -> pa.NativeFile:
        """The same as ``open_input_file``."""
        return self.open_input_file(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        """Each name as a regular file of its size now."""
        return [pafs.FileInfo(p, pafs.FileType.File, size=self._size(p)) for p in paths]

    def _size(self, path: str) -> int:
        with self._lock:
            fd = self._open(path)
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def get_type_name(self) -> str:
        """pyarrow's name for this kind of filesystem."""
        return "sluis-confined"

    def normalize_path(self, path: str) -> str:
        """Names are used as they are."""
        return path

    def equals(self, other: Any) -> bool:
        """Only the same handler."""
        return other is self

    def get_file_info_selector(self, selector: Any) -> list[pafs.FileInfo]:
        """Not listable: the files were chosen when the root was opened."""
        raise NotImplementedError("a confined filesystem is not listed")

    def _read_only(self, *_: Any) -> Any:
        raise PermissionError(errno.EROFS, "read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only


def native_file(fd: int) -> pa.NativeFile:
    """A native file on the open file ``fd`` (taken over: closed here or by the file)."""
    if not _PROC:
        return pa.PythonFile(os.fdopen(fd, "rb"), mode="r")
    try:
        return pa.OSFile(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
