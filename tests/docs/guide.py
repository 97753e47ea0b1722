"""Run a markdown guide's shell blocks in order, as a reader would, and compare their output.

A ```sh block is run with bash (``set -euo pipefail``); a ```text block right after it is
the output the guide shows, matched loosely: ``...`` inside a line stands for any text, a
line that is only ``...`` for any number of lines. Other blocks are only read. The working
directory and exported variables carry from one block to the next; each block is its own
process group, so whatever it leaves running in the background can be ended afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^## (.+)$", re.MULTILINE)

# set -a: a variable a block assigns reaches the next blocks, as in the reader's one shell.
PRELUDE = """set -euo pipefail -a
source "$GUIDE_STATE/env"
cd "$(cat "$GUIDE_STATE/pwd")"
"""
SAVE = """
declare -px > "$GUIDE_STATE/env"
pwd > "$GUIDE_STATE/pwd"
"""


@dataclass(frozen=True)
class Block:
    """One shell block: the section it is in, its line, its code and the output shown."""

    section: str
    line: int
    code: str
    expected: str | None


def shell_blocks(markdown: str) -> list[Block]:
    """The ```sh blocks of ``markdown`` in order, each with the ```text block after it."""
    headings = [(m.start(), m.group(1).strip()) for m in HEADING.finditer(markdown)]
    out: list[Block] = []
    fences = list(FENCE.finditer(markdown))
    for i, fence in enumerate(fences):
        if fence.group(1) != "sh":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        shown = (
            after is not None
            and after.group(1) == "text"
            and not markdown[fence.end() : after.start()].strip()
        )
        expected = after.group(2) if shown and after is not None else None
        section = next((t for pos, t in reversed(headings) if pos < fence.start()), "")
        line = markdown.count("\n", 0, fence.start()) + 1
        out.append(Block(section, line, fence.group(2), expected))
    return out


def pattern(expected: str) -> re.Pattern[str]:
    """The regular expression for an expected output (see the module docstring)."""
    parts = []
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            text = ".*?".join(re.escape(p) for p in line.rstrip().split("..."))
            parts.append(text + r"[ \t]*\n")
    return re.compile("".join(parts), re.DOTALL)


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` (trailing blanks and blank last lines aside) matches ``expected``."""
    lines = [line.rstrip() for line in actual.rstrip("\n").split("\n")]
    return pattern(expected).fullmatch("\n".join(lines) + "\n") is not None


class GuideRunner:
    """Runs blocks in ``workdir`` with ``env``; :meth:`close` ends what they left running."""

    def __init__(self, workdir: Path, env: dict[str, str], *, timeout: float) -> None:
        self.state = workdir / ".guide-state"
        self.state.mkdir()
        (self.state / "env").write_text("")
        (self.state / "pwd").write_text(str(workdir))
        self.env = {**env, "GUIDE_STATE": str(self.state)}
        self.timeout = timeout
        self.groups: list[int] = []

    def run(self, block: Block) -> tuple[int, str]:
        """Exit status and output (stdout and stderr together) of one block."""
        process = subprocess.Popen(
            ["/bin/bash", "-c", PRELUDE + block.code + SAVE],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.groups.append(process.pid)
        try:
            output, _ = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return -1, f"{output}\n(timed out after {self.timeout} s)"
        return process.returncode, output

    def close(self) -> None:
        """Terminate every process group a block started (a server left running, say)."""
        for group in self.groups:
            _end_group(group)


def _end_group(group: int) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
