"""Confine a dataset's relative path to its root: no absolute paths, no ``..``, no way out.

The path is resolved (links followed) and must still lie under the resolved root; for a
directory every file beneath it is checked the same way, so a link inside it that points
out of the root is refused too. Files are then opened by their resolved path.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from connectors.errors import ConnectorConfigError, PathRefused, SourceUnavailable


def confine(root: Path, relative: str) -> list[Path]:
    """The resolved files ``relative`` names under ``root``, or ``PathRefused``."""
    _check_text(relative)
    try:
        base = root.resolve(strict=True)
    except OSError as exc:
        raise ConnectorConfigError(f"the files root does not exist: {root}") from exc
    try:
        target = (base / relative).resolve(strict=True)
    except OSError as exc:
        raise SourceUnavailable(f"no such file under the root: {relative!r}") from exc
    _inside(base, target, relative)
    if target.is_file():
        return [target]
    if not target.is_dir():
        raise PathRefused(f"not a regular file or directory: {relative!r}")
    return _files_under(base, target, relative)


def _check_text(relative: str) -> None:
    if not relative or "\x00" in relative:
        raise PathRefused("empty path or NUL in path")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or relative[0] in "/\\":
        raise PathRefused(f"absolute paths are refused: {relative!r}")
    if ".." in posix.parts or ".." in windows.parts:
        raise PathRefused(f"'..' is refused in paths: {relative!r}")


def _inside(base: Path, target: Path, relative: str) -> None:
    if target != base and not target.is_relative_to(base):
        raise PathRefused(f"the path leaves the root through a link: {relative!r}")


def _files_under(base: Path, directory: Path, relative: str) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, names in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in [*sorted(names), *(d for d in dirs if Path(folder, d).is_symlink())]:
            if name.startswith((".", "_")):
                continue  # hidden and bookkeeping files, as pyarrow.dataset skips them
            path = Path(folder, name).resolve(strict=True)
            _inside(base, path, relative)
            if path.is_file():
                found.append(path)
    return found
