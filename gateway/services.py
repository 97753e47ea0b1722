"""The service objects one running gateway shares across requests."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.agreements.service import AgreementService
from gateway.audit.log import AuditLog
from gateway.datasets.service import DatasetService
from gateway.dsp.consumer import ConsumerNegotiations
from gateway.dsp.consumer_transfer import ConsumerTransfers
from gateway.dsp.negotiation import NegotiationService
from gateway.dsp.transfer import TransferService
from gateway.exchange.service import ExchangeService
from gateway.oauth.capabilities import Capabilities
from gateway.oauth.service import OAuthService
from gateway.participants.service import ParticipantService
from gateway.ratelimit.service import Limits
from gateway.settings import Settings
from gateway.storage.db import Database
from gateway.telemetry import Telemetry
from gateway.trust import TrustMaterial


@dataclass(frozen=True)
class Services:
    """Built once in the app's lifespan; reached through ``app.state.services``."""

    settings: Settings
    db: Database
    trust: TrustMaterial
    participants: ParticipantService
    oauth: OAuthService
    audit: AuditLog
    datasets: DatasetService
    agreements: AgreementService
    exchange: ExchangeService
    telemetry: Telemetry
    limits: Limits | None = None  # refusal summaries and rate limits (issue 11)
    capabilities: Capabilities | None = None  # iSHARE /capabilities (issue 14)
    dsp: NegotiationService | None = None  # the Dataspace Protocol's negotiations (issue 14)
    transfers: TransferService | None = None  # and its HTTP-pull transfers (issue 14)
    dsp_consumer: ConsumerNegotiations | None = None  # DSP as the consumer (issue 14)
    dsp_consumer_transfers: ConsumerTransfers | None = None
