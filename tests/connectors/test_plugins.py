"""Third-party connectors found through the ``sluis.connectors`` entry-point group."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import ConnectorConfigError, Query
from connectors.registry import available, connector_type
from connectors.testing import InMemoryConnector
from tests.connectors.cases import collect

PLUGIN = """
import pyarrow as pa
from connectors.base import Connector
from connectors.plan import NONE


class Numbers(Connector):
    kind = "numbers"

    @property
    def pushdown(self):
        return NONE

    async def _schema(self):
        return pa.schema([("n", pa.int64())])

    async def _batches(self, query):
        yield pa.record_batch([pa.array(range(5), pa.int64())], names=["n"])


class NotAConnector:
    pass
"""


@pytest.fixture
def plugin_dist(tmp_path: Path) -> Iterator[None]:
    (tmp_path / "acme_numbers.py").write_text(PLUGIN)
    info = tmp_path / "acme_numbers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-numbers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sluis.connectors]\nnumbers = acme_numbers:Numbers\nbroken = acme_numbers:NotAConnector\n"
        "missing = acme_missing:Thing\nfiles = acme_numbers:Numbers\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_numbers", None)


@pytest.mark.usefixtures("plugin_dist")
def test_a_plugin_registers_and_streams_through_the_interface() -> None:
    assert available()["numbers"] == "acme_numbers:Numbers"
    connector = connector_type("numbers")("numbers")
    rows = asyncio.run(collect(connector, Query(columns=("n",), limit=3)))
    assert rows == [{"n": 0}, {"n": 1}, {"n": 2}]


@pytest.mark.usefixtures("plugin_dist")
@pytest.mark.parametrize("kind", ["broken", "missing", "nope"])
def test_a_bad_plugin_fails_closed(kind: str) -> None:
    with pytest.raises(ConnectorConfigError):
        connector_type(kind)


@pytest.mark.usefixtures("plugin_dist")
def test_a_plugin_cannot_replace_a_built_in() -> None:
    assert available()["files"] == "built-in"
    assert connector_type("memory") is InMemoryConnector
