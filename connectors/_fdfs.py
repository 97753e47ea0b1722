"""A read-only pyarrow filesystem over descriptors we opened: pyarrow reads what was checked.

pyarrow's CSV and JSON readers close the file they are handed, and a dataset opens each
fragment again for every scan, so a bare file object does not do. This filesystem names
each descriptor ``"0"``, ``"1"``, ...; every open gives pyarrow a new native file on the
same open file (``/proc/self/fd/N`` reopens the descriptor's file, not a path; where
``/proc`` is missing, a Python file on a duplicate of the descriptor). Closing happens
under the same lock as opening, so a descriptor number reused after ``close`` can never
be opened in its place.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from connectors.paths import close_all

_PROC = Path("/proc/self/fd").is_dir()


class DescriptorFiles(pafs.FileSystemHandler):  # type: ignore[misc]  # pyarrow has no stubs
    """Read-only handler over open descriptors; ``close`` ends every later open."""

    def __init__(self, fds: list[int]) -> None:
        self._fds = {str(i): fd for i, fd in enumerate(fds)}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def paths(self) -> list[str]:
        """The names to hand pyarrow.dataset, one per descriptor."""
        return list(self._fds)

    def filesystem(self) -> pafs.PyFileSystem:
        """This handler as a pyarrow filesystem."""
        return pafs.PyFileSystem(self)

    def close(self) -> None:
        """Close the descriptors; any later open fails."""
        with self._lock:
            if not self._closed:
                self._closed = True
                close_all(list(self._fds.values()))

    def _fd(self, path: str) -> int:
        if self._closed:
            raise OSError(errno.EBADF, "the dataset's files are closed")
        try:
            return self._fds[path.lstrip("/")]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None

    def open_input_file(self, path: str) -> pa.NativeFile:
        """A new native file on the descriptor's open file."""
        with self._lock:
            fd = self._fd(path)
            if _PROC:
                return pa.OSFile(f"/proc/self/fd/{fd}")
            return pa.PythonFile(os.fdopen(os.dup(fd), "rb"), mode="r")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        """The same as ``open_input_file``."""
        return self.open_input_file(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        """Each descriptor as a regular file of its size."""
        with self._lock:
            sizes = [os.fstat(self._fd(p)).st_size for p in paths]
        return [
            pafs.FileInfo(p, pafs.FileType.File, size=n) for p, n in zip(paths, sizes, strict=True)
        ]

    def get_type_name(self) -> str:
        """pyarrow's name for this kind of filesystem."""
        return "sluis-descriptors"

    def normalize_path(self, path: str) -> str:
        """Names are used as they are."""
        return path

    def equals(self, other: Any) -> bool:
        """Only the same handler."""
        return other is self

    def get_file_info_selector(self, selector: Any) -> list[pafs.FileInfo]:
        """Not listable: the files were chosen when they were opened."""
        raise NotImplementedError("a descriptor filesystem is not listed")

    def _read_only(self, *_: Any) -> Any:
        raise PermissionError(errno.EROFS, "read-only")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_output_stream = open_append_stream = _read_only
