"""bench/jsonl.py runs, and the encoders it compares write the same rows."""

from __future__ import annotations

import json

import pytest

from bench import jsonl


def test_the_encoders_agree_and_the_table_prints(capsys: pytest.CaptureFixture[str]) -> None:
    for batch in jsonl.batches(3_000):
        old = [json.loads(line) for line in jsonl._old(batch).splitlines()]
        new = [json.loads(line) for line in jsonl._jsonl(batch).splitlines()]
        assert old == new == batch.to_pylist()
    jsonl.main(2_000)
    assert "orjson per batch" in capsys.readouterr().out
