"""Export formats for SIEMs: JSON lines, OCSF and RFC 5424 syslog (pure).

Every record carries its entry's log index. Only ``jsonl`` is read back by
``sluis audit verify``: it holds each entry exactly (re-canonicalized, RFC 8785, it hashes
to the Merkle leaf). OCSF and syslog records also embed the whole entry, so a SIEM keeps
everything the audit log knows, but their framing is not verified.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gateway.audit.jcs import canonical, loads
from gateway.audit.verify import entry_line

ExportFormat = Literal["jsonl", "ocsf", "syslog"]

OCSF_VERSION = "1.3.0"
_API_ACTIVITY = 6003  # OCSF class "API Activity", category 6 "Application Activity"
_ACTIVITY = {"token-issued": 1, "access-decision": 2, "exchange-completed": 2}
_ACTIVITY |= {"agreement-changed": 3, "admin-change": 3}
_OTHER = 99
#: RFC 5424 structured-data ID. 32473 is the example enterprise number (RFC 5612).
SYSLOG_SD_ID = "sluis@32473"
_LOG_AUDIT = 13  # syslog facility "log audit"
_INFO, _WARNING = 6, 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def render(fmt: ExportFormat, index: int, data: bytes) -> str:
    """One record of entry ``index`` (canonical bytes ``data``) in ``fmt``, no newline."""
    if fmt == "jsonl":
        return entry_line(index, data)
    if fmt == "ocsf":
        return json.dumps(ocsf_record(index, loads(data)), ensure_ascii=False, sort_keys=True)
    return syslog_line(index, loads(data))


def failed(entry: dict[str, Any]) -> bool:
    """Whether the entry records a refusal or a denial."""
    decision = entry.get("decision") or {}
    return str(entry.get("event", "")).endswith("-refused") or decision.get("result") == "deny"


def ocsf_record(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    """An OCSF API Activity event for one entry; the entry itself under ``unmapped``."""
    activity = _ACTIVITY.get(str(entry.get("event")), _OTHER)
    actor = entry.get("actor") or {}
    record: dict[str, Any] = {
        "category_uid": 6,
        "class_uid": _API_ACTIVITY,
        "activity_id": activity,
        "type_uid": _API_ACTIVITY * 100 + activity,
        "severity_id": 1,
        "status_id": 2 if failed(entry) else 1,
        "time": _epoch_ms(entry.get("time")),
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Sluis", "vendor_name": "Sluis"},
            "uid": str(index),
            "sequence": index,
        },
        "api": {"operation": entry.get("event"), "request": {"uid": entry.get("request_id")}},
        "actor": {"user": {"uid": actor.get("participant")}},
        "src_endpoint": {"ip": actor.get("source")},
        "unmapped": {"sluis_index": index, "sluis_entry": entry},
    }
    if entry.get("dataset"):
        record["resources"] = [{"name": entry["dataset"], "type": "dataset"}]
    return record


def syslog_line(index: int, entry: dict[str, Any]) -> str:
    """An RFC 5424 line: index and event as structured data, the entry as the message."""
    pri = _LOG_AUDIT * 8 + (_WARNING if failed(entry) else _INFO)
    event = _sd_value(str(entry.get("event", "-")))
    params = f'index="{index}" event="{event}"'
    msgid = str(entry.get("event", "-"))[:32]
    message = canonical(entry).decode()
    return (
        f"<{pri}>1 {entry.get('time', '-')} - sluis - {msgid} [{SYSLOG_SD_ID} {params}] {message}"
    )


def _sd_value(value: str) -> str:
    """RFC 5424 §6.3.3: escape ``"``, ``\\`` and ``]`` in a parameter value."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    return (datetime.fromisoformat(value) - _EPOCH) // timedelta(milliseconds=1)
