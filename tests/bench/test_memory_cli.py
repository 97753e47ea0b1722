"""The memory benchmark's command line: its options parsed, a bad size refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.memory import _arguments


def test_defaults_and_options_are_parsed() -> None:
    assert _arguments([]).size_gb == 1.05
    parsed = _arguments(["2", "--only", "csv,arrow", "--file", "data/x.csv", "--before", "old"])
    assert (parsed.size_gb, parsed.only) == (2.0, "csv,arrow")
    assert (parsed.file, parsed.before) == (Path("data/x.csv"), Path("old"))


@pytest.mark.parametrize(
    ("argv", "words"),
    [(["-1"], "size_gb must be positive"), (["big"], "invalid float value: 'big'")],
)
def test_a_bad_size_exits_2_with_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _arguments(argv)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err.splitlines()[-1]
