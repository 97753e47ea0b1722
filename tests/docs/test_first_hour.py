"""docs/first-hour.md runs as written: every ```sh block, in order, against a fresh home.

The guide starts its own gateway (``sluis serve ... &``) on ``$SLUIS_PORT``, which this
test chooses; whatever a block leaves running is ended when the test ends.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.background import free_port
from tests.docs.guide import GuideRunner, matches, shell_blocks

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "first-hour.md"
ROLES = ("Operator", "Provider", "Consumer", "Security officer")
BLOCK_TIMEOUT = 120.0


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[GuideRunner]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUIS_")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "SLUIS_PORT": str(free_port()),
        "REPO": str(REPO),
        "HOME": str(tmp_path),  # nothing the guide writes lands in the real home
        "COLUMNS": "200",
    }
    guide = GuideRunner(tmp_path, env, timeout=BLOCK_TIMEOUT)
    try:
        yield guide
    finally:
        guide.close()


def test_every_role_has_blocks() -> None:
    sections = {block.section.split(":")[0] for block in shell_blocks(GUIDE.read_text())}
    assert set(ROLES) <= sections


def test_the_guide_runs_as_written(runner: GuideRunner) -> None:
    for block in shell_blocks(GUIDE.read_text()):
        status, output = runner.run(block)
        where = f"docs/first-hour.md line {block.line} ({block.section})"
        assert status == 0, f"{where} failed ({status}):\n{block.code}\n--- output:\n{output}"
        if block.expected is not None:
            assert matches(block.expected, output), (
                f"{where}: output no longer matches the guide\n--- guide shows:\n"
                f"{block.expected}--- got:\n{output}"
            )


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("a ... c\n", "a b b c\n", True),
        ("a\n...\nz\n", "a\nb\nc\nz\n", True),
        ("a\n...\nz\n", "a\nz\n", True),
        ("a b\n", "a c\n", False),
        ("a\n", "a\nextra\n", False),
    ],
)
def test_loose_matching(expected: str, actual: str, ok: bool) -> None:
    assert matches(expected, actual) is ok


def test_the_readme_queries_the_guides_dataset() -> None:
    """The README's curl example names the guide's dataset and only columns its data has."""
    readme = (REPO / "README.md").read_text()
    example = next(b.code for b in shell_blocks(readme) if "oauth2/token" in b.code)
    guide = GUIDE.read_text()
    header = guide.split("spindle_sensors.csv <<'EOF'\n", 1)[1].split("\n", 1)[0].split(",")
    assert "/v1/datasets/spindle-sensors/" in example
    named = re.findall(r'"column": "(\w+)"|"group_by": \["(\w+)"\]', example)
    columns = {name for pair in named for name in pair if name}
    columns |= {c for found in re.findall(r"columns=([\w,]+)", example) for c in found.split(",")}
    assert columns, "the README example names no column"
    assert columns <= set(header), f"not in the guide's data: {columns - set(header)}"
