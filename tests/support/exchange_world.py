"""A small exchange world on a real database, served by in-process replicas (no HTTP).

Three datasets behind the files connector, a consumer with an active agreement for each,
and any number of replicas (connection pool, audit log and exchange service each) on the
one database: what the write-path tests and their crash child share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import metrics, trace

from certs import CertificateIdentity
from connectors import Format, Query
from gateway.agreements.schemas import AgreementRequest
from gateway.agreements.service import AgreementService
from gateway.audit.log import AuditLog
from gateway.auth.tokens import AccessClaims
from gateway.datasets.factory import create_connector
from gateway.datasets.service import DatasetService
from gateway.exchange.service import ExchangeService
from gateway.oauth.service import TokenCaller
from gateway.participants.schemas import Participant
from gateway.participants.service import AuthenticatedParticipant
from gateway.storage.db import Database
from gateway.telemetry import Telemetry
from tests.audit.logs import ORIGIN, SIGNER
from tests.support.pki import NOW
from tests.support.registry import files_connector, register_dataset, register_participants

PROVIDER, CONSUMER = "NTRNL-10000001", "NTRNL-10000002"
PURPOSE = "https://w3id.org/dpv#AcademicResearch"
LIMIT = 5
LIMITED = f"""
uid: urn:sluis:policy:limited
type: Offer
target: urn:sluis:dataset:limited
permissions: [{{action: read, constraints: [[count, lteq, {LIMIT}]]}}]
"""
OPEN = """
uid: urn:sluis:policy:open
type: Offer
target: urn:sluis:dataset:open
permissions: [{action: read}]
"""
RATED = """
uid: urn:sluis:policy:rated
type: Offer
target: urn:sluis:dataset:rated
permissions: [{action: read, data: {rate_limit: 100000/P1D}}]
"""
ASK = Query(columns=("machine",))
DATASETS = {"limited": LIMITED, "open": OPEN, "rated": RATED}


def party(pid: str, role: str) -> AuthenticatedParticipant:
    participant = Participant(
        id=pid, name=pid, roles=[role], status="active", created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    identity = CertificateIdentity(
        organization_id=pid, organization_name=pid, participant_uri=f"urn:sluis:participant:{pid}",
        roles=frozenset({role}), thumbprint_sha256="t", serial_number=1, subject="CN=x",
        issuer="CN=ca", not_after=NOW,
    )  # fmt: skip
    return AuthenticatedParticipant(participant, frozenset({role}), identity, "tls")


CALLER = TokenCaller(
    party(CONSUMER, "consumer"),
    AccessClaims(
        issuer="i", subject=CONSUMER, client_id=CONSUMER, audience=("a",),
        scopes=frozenset(f"dataset:{d}" for d in DATASETS), jti="j", issued_at=0,
        expires_at=2**40, thumbprint="t",
    ),
)  # fmt: skip


@dataclass
class Replica:
    db: Database
    log: AuditLog
    agreements: AgreementService
    exchange: ExchangeService

    async def query(self, dataset: str) -> None:
        """One query, read to its end (the completion entry queued)."""
        outcome = await self.exchange.query(CALLER, dataset, ASK, Format.JSONL, source=None)
        async for _ in outcome.rest:
            pass
        await outcome.rest.aclose()


@asynccontextmanager
async def replicas(
    url: str, count: int = 2, *, owner: str = "replica", fresh: bool = True
) -> AsyncIterator[list[Replica]]:
    """``count`` replicas on one database; ``fresh``: set the world up first."""
    if fresh:
        await setup_world(url)
    telemetry = Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())
    found = []
    for _ in range(count):
        db = Database(url)
        datasets = DatasetService(db, create_connector)
        log = AuditLog(db, SIGNER, ORIGIN)
        agreements = AgreementService(db, datasets, log)
        exchange = ExchangeService(db, datasets, agreements, log, telemetry, owner=owner)
        found.append(Replica(db, log, agreements, exchange))
    try:
        if fresh:
            for dataset in DATASETS:
                asked = await found[0].agreements.request(
                    party(CONSUMER, "consumer"), AgreementRequest(dataset=dataset, purpose=PURPOSE),
                    now=datetime.now(UTC),
                )  # fmt: skip
                assert asked.agreement.state == "active"
        yield found
    finally:
        for replica in found:
            await replica.log.close()
            await replica.db.dispose()


async def setup_world(url: str) -> None:
    """Migrate; register the provider, the consumer and the datasets."""
    setup = Database(url)
    await setup.upgrade()
    await register_participants(
        setup, [(PROVIDER, "P", ["provider"]), (CONSUMER, "C", ["consumer"])]
    )
    connector = files_connector()
    for dataset, policy in DATASETS.items():
        await register_dataset(
            setup, dataset, provider=PROVIDER, policy=policy, connector=connector
        )
    await setup.dispose()
