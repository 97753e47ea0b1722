"""Heavy engines a gateway needs only for some queries are not imported when it starts.

Every module a process imports stays in its memory (pymalloc does not hand the code back),
so an idle gateway carries each one: OpenDP adds about 20 MiB, DuckDB about 50 MiB (issue
12's memory bound). Each is imported by the first query that needs it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

LAZY = ("opendp", "duckdb")


@pytest.mark.parametrize("module", LAZY)
def test_starting_the_gateway_does_not_import(module: str) -> None:
    probe = (
        "import sys\n"
        "import gateway.app, gateway.server, gateway.cli.main\n"
        f"print({module!r} in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr[-2000:]
