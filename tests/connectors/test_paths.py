"""``connectors.paths`` on its own: what a dataset's path may name, and each refusal's words.

Real files, links and directories under ``tmp_path``; no connector around it. The limits
at their boundary (40 links, 64 nested directories), the spellings of a path that are
refused before any walk, and what a directory listing holds and skips.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from connectors import ConnectorConfigError, PathRefused, SourceUnavailable
from connectors.paths import MAX_DEPTH, MAX_LINKS, ConfinedRoot


def _files(root: Path, relative: str) -> list[list[str]]:
    confined = ConfinedRoot(root, relative)
    try:
        return confined.files()
    finally:
        confined.close()


def _read(root: Path, relative: str, parts: list[str]) -> bytes:
    confined = ConfinedRoot(root, relative)
    try:
        fd = confined.open_file(parts)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()
    finally:
        confined.close()


def _refusal(root: Path, relative: str) -> str:
    with pytest.raises(PathRefused) as refused:
        _files(root, relative)
    return refused.value.reason


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("", "empty path or NUL in path"),
        ("a\x00b", "empty path or NUL in path"),
        ("/etc/passwd", "absolute paths are refused: '/etc/passwd'"),
        ("\\\\server\\share", "absolute paths are refused: '\\\\\\\\server\\\\share'"),
        ("C:\\data", "absolute paths are refused: 'C:\\\\data'"),
        ("C:data", "absolute paths are refused: 'C:data'"),
        ("\\data", "absolute paths are refused: '\\\\data'"),
        ("a/../b", "'..' is refused in paths: 'a/../b'"),
        ("a\\..\\b", "'..' is refused in paths: 'a\\\\..\\\\b'"),
    ],
)
def test_each_refused_spelling_before_any_walk(tmp_path: Path, relative: str, reason: str) -> None:
    with pytest.raises(PathRefused) as refused:
        ConfinedRoot(tmp_path, relative)
    assert refused.value.reason == reason


def test_a_missing_root_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError) as refused:
        ConfinedRoot(tmp_path / "gone", "a.csv")
    assert refused.value.reason == f"the files root does not exist: {tmp_path / 'gone'}"


def test_dots_and_empty_components_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x")
    assert _files(tmp_path, "./d//a.csv") == [[".", "d", "", "a.csv"]]
    assert _read(tmp_path, "d/a.csv", [".", "d", "", "a.csv"]) == b"x"


def test_a_directory_lists_its_regular_files_in_order_and_skips_hidden_ones(
    tmp_path: Path,
) -> None:
    for name in ("b.csv", "a.csv", ".hidden.csv", "_meta.csv", "sub/c.csv", "_skip/d.csv"):
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_text(name)
    (tmp_path / "d" / "linked").symlink_to("sub")  # a link to a directory: not descended
    (tmp_path / "d" / "sub" / "e.csv").symlink_to("c.csv")  # a link deeper down: followed
    assert _files(tmp_path, "d") == [
        ["d", "a.csv"],
        ["d", "b.csv"],
        ["d", "sub", "c.csv"],
        ["d", "sub", "e.csv"],
    ]
    assert _read(tmp_path, "d", ["d", "sub", "c.csv"]) == b"sub/c.csv"


def test_the_root_itself_is_a_directory_dataset(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    assert _files(tmp_path, ".") == [[".", "a.csv"]]


def test_forty_links_are_followed_and_forty_one_refused(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    target = "data.csv"
    for i in range(MAX_LINKS + 1):
        (tmp_path / f"l{i}").symlink_to(target)
        target = f"l{i}"
    assert _files(tmp_path, f"l{MAX_LINKS - 1}") == [[f"l{MAX_LINKS - 1}"]]
    assert _refusal(tmp_path, f"l{MAX_LINKS}") == f"a link loop, or too many links: 'l{MAX_LINKS}'"


def test_directories_nested_to_the_limit_are_read_and_one_deeper_refused(tmp_path: Path) -> None:
    deep = tmp_path / "d"
    for i in range(MAX_DEPTH):
        deep = deep / f"n{i}"
    deep.mkdir(parents=True)
    (deep / "a.csv").write_text("x")
    assert len(_files(tmp_path, "d")) == 1
    (deep / "n").mkdir()
    (deep / "n" / "b.csv").write_text("x")
    assert _refusal(tmp_path, "d") == "directories nested too deeply: 'd'"


def test_links_with_absolute_targets_under_either_spelling_of_the_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "data").mkdir(parents=True)
    (real / "data" / "a.csv").write_text("x")
    alias = tmp_path / "alias"
    alias.symlink_to(real)  # the root as configured is a link; targets may use either path
    (real / "via-real.csv").symlink_to(real / "data" / "a.csv")
    (real / "via-alias.csv").symlink_to(alias / "data" / "a.csv")
    for name in ("via-real.csv", "via-alias.csv"):
        assert _read(alias, name, [name]) == b"x"
    (real / "out.csv").symlink_to(tmp_path / "elsewhere.csv")
    assert _refusal(alias, "out.csv") == "the path leaves the root through a link: 'out.csv'"


def test_a_relative_link_may_climb_inside_the_root_but_not_out(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "x.csv").write_text("x")
    (tmp_path / "a" / "b" / "up.csv").symlink_to("../../x.csv")
    (tmp_path / "a" / "b" / "out.csv").symlink_to("../../../x.csv")
    (tmp_path / "a" / "b" / "dotted.csv").symlink_to("./.././/../x.csv")  # "." stays put
    assert _read(tmp_path, "a/b/up.csv", ["a", "b", "up.csv"]) == b"x"
    assert _read(tmp_path, "a/b/dotted.csv", ["a", "b", "dotted.csv"]) == b"x"
    assert _refusal(tmp_path, "a/b/out.csv") == (
        "the path leaves the root through a link: 'a/b/out.csv'"
    )


def test_what_is_missing_or_not_a_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "dangling.csv").symlink_to("gone.csv")
    with pytest.raises(SourceUnavailable) as missing:
        _files(tmp_path, "gone.csv")
    assert missing.value.reason == "no such file under the root: 'gone.csv'"
    with pytest.raises(SourceUnavailable) as through_a_file:
        _files(tmp_path, "a.csv/b.csv")
    assert through_a_file.value.reason == "no such file under the root: 'a.csv/b.csv'"
    assert _refusal(tmp_path, "dangling.csv") == "a dangling link: 'dangling.csv'"


def test_a_file_replaced_by_a_directory_before_its_open_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x")
    confined = ConfinedRoot(tmp_path, "d")
    try:
        listed = confined.files()
        (tmp_path / "d" / "a.csv").unlink()
        (tmp_path / "d" / "a.csv").mkdir()
        with pytest.raises(PathRefused) as refused:
            confined.open_file(listed[0])
        assert refused.value.reason == "no longer a regular file: 'd'"
    finally:
        confined.close()


def test_a_dangling_link_in_a_directory_refuses_the_dataset(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("x")
    (tmp_path / "d" / "x.csv").symlink_to("gone.csv")
    assert _refusal(tmp_path, "d") == "a dangling link: 'd'"


def test_a_file_named_as_a_directory_is_not_read(tmp_path: Path) -> None:
    """``a.csv/`` ends in an empty component: ``a.csv`` must still be a directory."""
    (tmp_path / "a.csv").write_text("x")
    for relative in ("a.csv/", "a.csv/."):
        with pytest.raises(SourceUnavailable) as missing:
            _files(tmp_path, relative)
        assert missing.value.reason == f"no such file under the root: {relative!r}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens a file whatever its mode")
def test_an_entry_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "a.csv").write_text("x")
    (tmp_path / "d" / "sub" / "locked.csv").write_text("x")
    (tmp_path / "d" / "sub" / "locked.csv").chmod(0)
    with pytest.raises(SourceUnavailable) as refused:
        _files(tmp_path, "d")
    assert refused.value.reason == "cannot open 'locked.csv' under the root"


def test_an_entry_that_cannot_be_opened_is_named_whoever_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above as root too: the kernel's ``EACCES`` on the entry's open stood in for."""
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "a.csv").write_text("x")
    (tmp_path / "d" / "sub" / "locked.csv").write_text("x")
    real_open = os.open

    def refusing_open(
        path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        if path == "locked.csv":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(SourceUnavailable) as refused:
        _files(tmp_path, "d")
    assert type(refused.value) is SourceUnavailable
    assert refused.value.reason == "cannot open 'locked.csv' under the root"


def _race_on_readlink(monkeypatch: pytest.MonkeyPatch, link: str, *, before: bool) -> None:
    """Remove ``link`` just before (or just after) the walk reads it: a link changed under it.

    The kernel's answers stay real: only the moment of the removal is chosen, the one a
    concurrent writer would have to hit.
    """
    real_readlink = os.readlink

    def racing_readlink(path: str, *, dir_fd: int | None = None) -> str:
        if path != link:
            return real_readlink(path, dir_fd=dir_fd)
        if before:
            os.unlink(path, dir_fd=dir_fd)
            return real_readlink(path, dir_fd=dir_fd)  # ENOENT, the kernel's own
        target = real_readlink(path, dir_fd=dir_fd)
        os.unlink(path, dir_fd=dir_fd)
        return target

    monkeypatch.setattr(os, "readlink", racing_readlink)


def test_a_link_removed_between_its_open_and_its_reading_is_refused_as_a_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``O_NOFOLLOW`` answered ``ELOOP`` (a link), then no link to read: nothing is followed."""
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "l.csv").symlink_to("a.csv")
    _race_on_readlink(monkeypatch, "l.csv", before=True)
    assert _refusal(tmp_path, "l.csv") == "a link loop, or too many links: 'l.csv'"
    assert not (tmp_path / "l.csv").is_symlink()


def test_a_link_in_a_directory_removed_after_its_reading_is_a_dangling_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read as a link, gone when walked from the root: the entry is named, the dataset refused.

    One directory down, so the entry's name is the last of three parts, not the second.
    """
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "a.csv").write_text("x")
    (tmp_path / "d" / "sub" / "x.csv").symlink_to("a.csv")
    _race_on_readlink(monkeypatch, "x.csv", before=False)
    assert _refusal(tmp_path, "d") == "a dangling link: 'x.csv': 'd'"
    assert not (tmp_path / "d" / "sub" / "x.csv").is_symlink()


def test_a_root_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "root.csv").write_text("x")
    with pytest.raises(ConnectorConfigError) as refused:
        ConfinedRoot(tmp_path / "root.csv", "a.csv")
    assert refused.value.reason == f"the files root does not exist: {tmp_path / 'root.csv'}"


def test_a_link_to_a_file_used_as_a_directory_is_a_refusal(tmp_path: Path) -> None:
    """Missing after a link is a dangling link (refused), not an unavailable source."""
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "l").symlink_to("a.csv")
    assert _refusal(tmp_path, "l/b.csv") == "a dangling link: 'l/b.csv'"


@pytest.mark.parametrize("name", ["X.csv", "XX", "x"])
def test_a_relative_name_of_any_first_letter_is_read(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("x")
    assert _read(tmp_path, name, [name]) == b"x"
