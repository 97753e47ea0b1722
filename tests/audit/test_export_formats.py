"""The SIEM export formats (``gateway.audit.export``), record by record: OCSF API Activity
and RFC 5424 syslog, with exact values (a SIEM maps them by these fields and numbers).
The same through the CLI and a database: test_cli.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.audit.entry import Actor, AuditEntry, DecisionRecord, encode_entry
from gateway.audit.export import ocsf_record, render, syslog_line
from gateway.audit.jcs import canonical, loads
from gateway.audit.verify import entry_line

NOW = datetime(2026, 11, 27, 12, 0, 0, 250000, tzinfo=UTC)
DENIED = AuditEntry(
    time=NOW,
    event="access-decision",
    actor=Actor(participant="NTRNL-1", source="192.0.2.7"),
    dataset="sales",
    decision=DecisionRecord(result="deny", reasons=("too late",)),
    request_id="r1",
)


def test_an_ocsf_record_holds_every_mapped_field_and_the_entry() -> None:
    entry = loads(encode_entry(DENIED))
    assert ocsf_record(4, entry) == {
        "category_uid": 6,
        "class_uid": 6003,
        "activity_id": 2,
        "type_uid": 600302,
        "severity_id": 1,
        "status_id": 2,
        "time": 1_795_780_800_250,
        "metadata": {
            "version": "1.3.0",
            "product": {"name": "Sluis", "vendor_name": "Sluis"},
            "uid": "4",
            "sequence": 4,
        },
        "api": {"operation": "access-decision", "request": {"uid": "r1"}},
        "actor": {"user": {"uid": "NTRNL-1"}},
        "src_endpoint": {"ip": "192.0.2.7"},
        "unmapped": {"sluis_index": 4, "sluis_entry": entry},
        "resources": [{"name": "sales", "type": "dataset"}],
    }


@pytest.mark.parametrize(
    ("event", "activity"),
    [
        ("token-issued", 1),
        ("access-decision", 2),
        ("exchange-completed", 2),
        ("agreement-changed", 3),
        ("admin-change", 3),
        ("certificate-refused", 99),
        ("key-rotation", 99),
    ],
)
def test_each_event_has_its_ocsf_activity(event: str, activity: int) -> None:
    record = ocsf_record(0, {"event": event, "actor": {}})
    assert (record["activity_id"], record["type_uid"]) == (activity, 600300 + activity)
    assert record["status_id"] == (2 if event.endswith("-refused") else 1)
    assert record["actor"] == {"user": {"uid": None}}
    assert "resources" not in record


def test_an_entry_without_an_actor_has_no_user() -> None:
    record = ocsf_record(0, {"event": "admin-change"})
    assert (record["actor"], record["src_endpoint"], record["time"]) == (
        {"user": {"uid": None}},
        {"ip": None},
        None,
    )


def test_a_syslog_line_exactly() -> None:
    entry = loads(encode_entry(DENIED))
    assert syslog_line(3, entry) == (
        '<108>1 2026-11-27T12:00:00.250000Z - sluis - access-decision [sluis@32473 index="3" '
        f'event="access-decision"] {canonical(entry).decode()}'
    )
    allowed = {"event": "token-issued", "time": "t"}
    assert syslog_line(0, allowed).startswith("<110>1 t - sluis - token-issued ")


def test_syslog_fills_what_an_entry_lacks_and_escapes_what_it_holds() -> None:
    """RFC 5424: ``-`` for a missing value, MSGID at most 32 characters, ``"``, ``\\``
    and ``]`` escaped in a structured-data value."""
    assert syslog_line(7, {}) == '<110>1 - - sluis - - [sluis@32473 index="7" event="-"] {}'
    odd: dict[str, Any] = {"event": 'a"b\\c]d' + "x" * 40}
    line = syslog_line(1, odd)
    assert line.split(" ")[5] == ('a"b\\c]d' + "x" * 40)[:32]
    assert 'event="a\\"b\\\\c\\]d' + "x" * 40 + '"]' in line


def test_render_picks_the_format() -> None:
    data = encode_entry(DENIED.model_copy(update={"dataset": "café"}))
    ocsf = render("ocsf", 2, data)
    assert json.loads(ocsf) == ocsf_record(2, loads(data))
    assert '"name": "café"' in ocsf  # UTF-8 as it is, not \\u escapes
    assert render("syslog", 2, data) == syslog_line(2, loads(data))
    assert render("jsonl", 2, data) == entry_line(2, data)


def test_ocsf_time_is_whole_milliseconds() -> None:
    record = ocsf_record(0, {"time": "2026-11-27T12:00:00.250999Z"})
    assert record["time"] == 1_795_780_800_250
    assert isinstance(record["time"], int)
