"""Response bodies of the audit API. Hashes are standard base64 with padding (as in
checkpoints); proofs are RFC 9162 audit paths, bottom-up."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.audit.encoding import encode_base64
from gateway.audit.records import AuditRecord, ConsistencyProof, InclusionProof


class EntryOut(BaseModel):
    """One entry with its log index."""

    index: int
    entry: dict[str, Any]

    @classmethod
    def of(cls, record: AuditRecord) -> EntryOut:
        """From a stored record."""
        return cls(index=record.index, entry=record.json())


class EntryPage(BaseModel):
    """A page of entries; pass ``next_after`` as ``after`` (``next_before`` as ``before``,
    newest first) for the next page."""

    entries: list[EntryOut]
    next_after: int | None
    next_before: int | None = None  # appended (issue 15): paging newest first
    next_cursor: str | None = None  # appended (issue 15): paging sorted by a column


class CountsOut(BaseModel):
    """How many entries, by event type and by decision result (as stored: not a proof)."""

    total: int
    events: dict[str, int]
    decisions: dict[str, int]

    @classmethod
    def of(cls, rows: list[tuple[str, str | None, int]]) -> CountsOut:
        """From ``(event, decision, count)`` rows."""
        events: dict[str, int] = {}
        decisions: dict[str, int] = {}
        for event, decision, count in rows:
            events[event] = events.get(event, 0) + count
            if decision is not None:
                decisions[decision] = decisions.get(decision, 0) + count
        return cls(total=sum(n for _, _, n in rows), events=events, decisions=decisions)


class ConsumerCount(BaseModel):
    """One consumer's access decisions on a dataset."""

    participant: str
    count: int


class DatasetActivity(BaseModel):
    """Access decisions on one dataset: permits, denials, and the busiest consumers."""

    dataset: str
    permit: int
    deny: int
    top_consumers: list[ConsumerCount]


class ActivityOut(BaseModel):
    """Access decisions per dataset in a window, busiest first (as stored: not a proof)."""

    datasets: list[DatasetActivity]

    @classmethod
    def of(cls, rows: list[tuple[str, str, str | None, int]], top: int) -> ActivityOut:
        """From ``(dataset, participant, decision, count)`` rows; ``top`` consumers each."""
        decided: dict[str, dict[str, int]] = {}
        consumers: dict[str, dict[str, int]] = {}
        for dataset, participant, decision, count in rows:
            tally = decided.setdefault(dataset, {"permit": 0, "deny": 0})
            tally[decision or "deny"] = tally.get(decision or "deny", 0) + count
            mine = consumers.setdefault(dataset, {})
            mine[participant] = mine.get(participant, 0) + count
        datasets = [
            DatasetActivity(
                dataset=dataset,
                permit=tally["permit"],
                deny=tally["deny"],
                top_consumers=[
                    ConsumerCount(participant=p, count=n)
                    for p, n in sorted(consumers[dataset].items(), key=lambda i: (-i[1], i[0]))[
                        :top
                    ]
                ],
            )
            for dataset, tally in decided.items()
        ]
        datasets.sort(key=lambda d: (-(d.permit + d.deny), d.dataset))
        return cls(datasets=datasets)


class InclusionOut(BaseModel):
    """An inclusion proof: verify with RFC 9162 §2.1.3.2 against a checkpoint's root."""

    index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]

    @classmethod
    def of(cls, proof: InclusionProof) -> InclusionOut:
        """From a proof value."""
        return cls(
            index=proof.index,
            tree_size=proof.tree_size,
            leaf_hash=encode_base64(proof.leaf_hash),
            hashes=[encode_base64(h) for h in proof.hashes],
        )


class ConsistencyOut(BaseModel):
    """A consistency proof between two tree sizes (RFC 9162 §2.1.4.2)."""

    size1: int
    size2: int
    hashes: list[str]

    @classmethod
    def of(cls, proof: ConsistencyProof) -> ConsistencyOut:
        """From a proof value."""
        return cls(
            size1=proof.size1, size2=proof.size2, hashes=[encode_base64(h) for h in proof.hashes]
        )
