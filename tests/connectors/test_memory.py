"""The in-memory connector, with every stage pushed down and with none: same answers."""

from __future__ import annotations

import asyncio

import pytest

from connectors import ALL_PUSHDOWN, NO_PUSHDOWN, Pushdown
from connectors.testing import InMemoryConnector
from tests.connectors.cases import CASES, check_case, collect, sample_rows, sample_table

PUSHDOWNS = {
    "all": ALL_PUSHDOWN,
    "none": NO_PUSHDOWN,
    "filter_only": frozenset({Pushdown.FILTER}),
    "no_aggregate": frozenset({Pushdown.FILTER, Pushdown.ORDER, Pushdown.LIMIT}),
}


@pytest.mark.parametrize("pushdown", PUSHDOWNS)
@pytest.mark.parametrize("case", CASES)
def test_answers_match_the_reference(case: str, pushdown: str) -> None:
    connector = InMemoryConnector("sample", sample_table(), pushdown=PUSHDOWNS[pushdown])
    check_case(connector, case, sample_rows())


def test_the_source_gets_only_what_it_can_do() -> None:
    connector = InMemoryConnector("sample", sample_table(), pushdown=frozenset({Pushdown.FILTER}))
    asyncio.run(collect(connector, CASES["group"]))
    (seen,) = connector.seen
    assert seen.where == CASES["group"].where
    assert not seen.aggregates
    assert not seen.order_by
    assert set(seen.columns) == {"region", "amount", "qty", "day"}


def test_small_batches_still_merge_groups() -> None:
    connector = InMemoryConnector("sample", sample_table(), pushdown=NO_PUSHDOWN, batch_size=7)
    check_case(connector, "group", sample_rows())
    check_case(connector, "order_limit", sample_rows())
