"""What the policy engine is asked for one request of the exchange (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from certs import participant_uri
from policies import Iri, Request, State, build_state
from policies.model import Value
from policies.operands.data import AGGREGATE, COLUMNS, MAX_ROWS
from policies.vocab import ODRL

READ = ODRL + "read"
PURPOSE = ODRL + "purpose"


def policy_request(
    *,
    consumer_id: str,
    asset: str,
    purpose: str,
    columns: Sequence[str] = (),
    aggregate: bool = False,
    limit: int | None = None,
) -> Request:
    """``consumer_id`` reads ``asset`` for ``purpose`` (an IRI), maybe naming columns."""
    context: dict[str, tuple[Value, ...]] = {PURPOSE: (Iri(purpose),)}
    if columns:
        context[COLUMNS] = tuple(columns)
    context[AGGREGATE] = (aggregate,)
    if limit is not None:
        context[MAX_ROWS] = (limit,)
    return Request(participant_uri(consumer_id), READ, asset, MappingProxyType(context))


def policy_state(
    *,
    consumer_id: str,
    groups: Sequence[str],
    use_count: int,
    request_times: Sequence[datetime],
    agreement_start: datetime | None,
    privacy_spends: Sequence[tuple[datetime, Decimal]] = (),
) -> State:
    """The state of the world the exchange keeps for one agreement.

    ``groups`` are the party collections the registry lists for the consumer, so that a
    policy assigning ``urn:group:universities`` reaches its members. Built by
    ``policies.build_state``, as ``sluis policy eval --state`` and policy tests build theirs,
    so the same facts decide alike everywhere.
    """
    broader = {participant_uri(consumer_id): groups} if groups else {}
    return build_state(
        broader=broader,
        use_count=use_count,
        request_times=request_times,
        agreement_start=agreement_start,
        privacy_spends=privacy_spends,
    )
