"""Confine a dataset's relative path to its root and open what it names, with no race.

The path is walked one component at a time from a descriptor of the root, each component
opened relative to its parent's descriptor with ``O_NOFOLLOW`` (userspace
``RESOLVE_BENEATH``): a symbolic link is read and its target walked the same way, an
absolute target only when it names a place under the root, ``..`` only down to the root.
A link that leads out of the root, a link loop or more than ``MAX_LINKS`` links is a
``PathRefused``; so is a dangling link. Every open is such a walk and the descriptor it
yields is what is read, so a link swapped after a check cannot lead a read out of the root.

``ConfinedRoot`` holds the root open for one read: ``files()`` lists the regular files the
dataset's path names (a directory through its descriptor; hidden and ``_`` names skipped,
as pyarrow.dataset does; real subdirectories walked, a link to a directory checked but not
descended into), and ``open_file`` opens one of them, walking again. Special files (FIFOs,
devices, sockets) are never opened for reading: they are opened non-blocking and dropped
by their type; a socket, which no ``open`` reaches (``ENXIO``), is dropped by that error.
Named directly, a special file is a ``PathRefused``. Only the root and the file being
opened hold descriptors, whatever the number of files.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from pathlib import Path, PurePosixPath, PureWindowsPath

from connectors.errors import ConnectorConfigError, PathRefused, SourceUnavailable

MAX_LINKS = 40  # as Linux allows in one path lookup
MAX_DEPTH = 64  # nested directories under a directory dataset
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


class ConfinedRoot:
    """The dataset's root held open for one read; what ``relative`` names, listed and opened."""

    def __init__(self, root: Path, relative: str) -> None:
        _check_text(relative)
        try:
            resolved = root.resolve(strict=True)
            self._fd = os.open(resolved, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ConnectorConfigError(f"the files root does not exist: {root}") from exc
        self._walker = _Walker(self._fd, _prefixes(root), relative)
        self._parts = relative.split("/")

    def files(self) -> list[list[str]]:
        """The path (from the root) of each regular file: the file itself, or a directory's."""
        return self._walker.list_files(self._parts)

    def open_file(self, parts: list[str]) -> int:
        """A descriptor of the regular file at ``parts``, walked again; the caller closes it."""
        fd = self._walker.open(parts)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._walker.refused("no longer a regular file")
        return fd

    def close(self) -> None:
        """Close the root."""
        os.close(self._fd)


def _check_text(relative: str) -> None:
    if not relative or "\x00" in relative:
        raise PathRefused("empty path or NUL in path")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or relative[0] in "/\\":
        raise PathRefused(f"absolute paths are refused: {relative!r}")
    if ".." in posix.parts or ".." in windows.parts:
        raise PathRefused(f"'..' is refused in paths: {relative!r}")


def _prefixes(root: Path) -> tuple[PurePosixPath, ...]:
    """The spellings of the root an absolute link target may start with."""
    return tuple(dict.fromkeys([PurePosixPath(root.resolve()), PurePosixPath(root.absolute())]))


class _Walker:
    """Opens paths beneath one root descriptor; never follows a link the kernel's way."""

    def __init__(self, root_fd: int, prefixes: tuple[PurePosixPath, ...], relative: str) -> None:
        self._root = root_fd
        self._prefixes = prefixes
        self._relative = relative

    def list_files(self, parts: list[str]) -> list[list[str]]:
        """``parts`` when it names a regular file, or every regular file beneath it."""
        fd = self.open(parts)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode):
                return [parts]
            if stat.S_ISDIR(mode):
                return self.files_under(fd, parts)
            raise self.refused("not a regular file or directory")
        finally:
            os.close(fd)

    def open(self, parts: list[str]) -> int:
        """A descriptor of what ``parts`` (from the root) names, every link confined."""
        stack: list[int] = []  # the directories walked, below the root
        pending, links = deque(parts), 0
        try:
            while pending:
                name = pending.popleft()
                if name in ("", "."):
                    continue
                if name == "..":
                    if not stack:
                        raise self.refused("the path leaves the root through a link")
                    os.close(stack.pop())
                    continue
                here = stack[-1] if stack else self._root
                target = self._step(name, here, bool(pending), links)
                if isinstance(target, int):
                    stack.append(target)
                    continue
                links += 1
                if target.startswith("/"):
                    _close_all(stack)
                    stack = []
                pending.extendleft(reversed(self._link_parts(target)))
            return stack.pop() if stack else os.dup(self._root)
        finally:
            _close_all(stack)

    def _step(self, name: str, here: int, more: bool, links: int) -> int | str:
        """The opened component, or the text of the link it is."""
        try:
            fd = os.open(name, _OPEN, dir_fd=here)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a socket: no descriptor, refused by its type
                raise _SpecialFile(f"not a regular file or directory: {self._relative!r}") from exc
            target = _readlink(name, here)
            if target is None:
                raise self._missing(exc, links) from exc
            if links >= MAX_LINKS:
                raise self.refused("a link loop, or too many links") from exc
            return target
        if more and not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._missing(OSError(errno.ENOTDIR, name), links)
        return fd

    def _link_parts(self, target: str) -> list[str]:
        if not target.startswith("/"):
            return target.split("/")
        path = PurePosixPath(target)
        for prefix in self._prefixes:
            if path.is_relative_to(prefix):
                return list(path.relative_to(prefix).parts)
        raise self.refused("the path leaves the root through a link")

    def files_under(self, directory: int, parts: list[str], depth: int = 0) -> list[list[str]]:
        """The path of every regular file beneath ``directory`` (named by ``parts``)."""
        if depth > MAX_DEPTH:
            raise self.refused("directories nested too deeply")
        found: list[list[str]] = []
        for name in sorted(os.listdir(directory)):
            if not name.startswith((".", "_")):
                found += self._entry(directory, [*parts, name], depth)
        return found

    def _entry(self, directory: int, parts: list[str], depth: int) -> list[list[str]]:
        linked = False
        try:
            fd = os.open(parts[-1], _OPEN, dir_fd=directory)
        except OSError as exc:
            linked = True
            if exc.errno == errno.ENXIO:
                return []  # a socket, which no open reaches: a special file, not read
            if _readlink(parts[-1], directory) is None:
                raise SourceUnavailable(f"cannot open {parts[-1]!r} under the root") from exc
            try:
                fd = self.open(parts)  # a link: walked from the root, confined the same way
            except _SpecialFile:
                return []  # a link to a socket
            except SourceUnavailable as exc:
                raise self.refused(f"a dangling link: {parts[-1]!r}") from exc
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode):
                return [parts]
            if stat.S_ISDIR(mode) and not linked:
                return self.files_under(fd, parts, depth + 1)
            return []  # a link to a directory, or a special file: not read
        finally:
            os.close(fd)

    def refused(self, why: str) -> PathRefused:
        """A refusal naming the dataset's path."""
        return PathRefused(f"{why}: {self._relative!r}")

    def _missing(self, exc: OSError, links: int) -> Exception:
        if exc.errno == errno.ELOOP:
            return self.refused("a link loop, or too many links")
        if links:
            return self.refused("a dangling link")
        return SourceUnavailable(f"no such file under the root: {self._relative!r}")


class _SpecialFile(PathRefused):
    """What the path names is a socket: it has no descriptor to look at, so no type check."""


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _readlink(name: str, directory: int) -> str | None:
    try:
        return os.readlink(name, dir_fd=directory)
    except OSError:
        return None
