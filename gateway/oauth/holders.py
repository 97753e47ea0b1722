"""Who holds a certificate right now: the one check behind every caller and every token.

A certificate chain is held by a participant when the chain verifies against the trust
store and the current CRLs (:func:`certs.verify`, so an expired or revoked certificate
fails) and its organisation is a registered, active participant. The HTTP layer runs this
on every request's client certificate (gateway/http/deps.py); introspection runs it on the
certificate a token is bound to (gateway/oauth/service.py). The participant comes from the
in-memory registry (gateway/registry.py); the HTTP layer keeps the result per TLS
connection only while the CRLs and the registry snapshot are unchanged, so a suspension or
a new CRL counts from the next request (in another replica: within the registry's bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from cryptography import x509

import certs
from gateway.participants.service import AuthenticatedParticipant, ParticipantService
from gateway.trust import TrustMaterial


async def verified_holder(
    participants: ParticipantService,
    chain: Sequence[x509.Certificate],
    trust: TrustMaterial,
    source: Literal["tls", "proxy"],
    now: datetime,
) -> AuthenticatedParticipant:
    """The active participant holding ``chain`` at ``now``.

    Raises ``certs.CertificateRejected`` (401) or ``Forbidden`` (403).
    """
    identity = certs.verify(chain, trust.store, trust.crls(), now=now)
    return await participants.authenticate(identity, source)
