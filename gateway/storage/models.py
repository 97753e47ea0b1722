"""ORM tables. Every change here comes with an Alembic revision in migrations/versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite keeps no zone, PostgreSQL does; this makes both give the same value back.
    Naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002 - signature fixed by TypeDecorator
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002 - signature fixed by TypeDecorator
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the driver returns datetimes here
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Sluis table."""


class ParticipantRow(Base):
    """A registered organisation: the subject of certificates, agreements and audit entries."""

    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Appended in revision 0005: party collections (IRIs) the organisation belongs to.
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)


class OAuthClientRow(Base):
    """An OAuth2 client: always a registered participant, authenticated one way."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    auth_method: Mapped[str] = mapped_column(String(32))
    profile: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TokenKeyRow(Base):
    """A token-signing public key; retired keys stay published until their tokens expire."""

    __tablename__ = "token_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RevokedTokenRow(Base):
    """A revoked access token (by jti), kept until it would be refused anyway (auth/windows.py)."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsedAssertionRow(Base):
    """A client assertion's jti, kept while the assertion is accepted: each may be used once."""

    __tablename__ = "used_assertions"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# --- audit log (issue 5): appended; see gateway/audit/log.py and migration 0003 ---------


class AuditHeadRow(Base):
    """The audit log's one head row: its size. Updating it serialises the sequencers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class AuditEntryRow(Base):
    """One audit entry: its canonical bytes, leaf hash, and columns the filters use."""

    __tablename__ = "audit_entries"
    # Filters walk (column, idx) in index order and stop after a page (migration 0014);
    # counts by event and decision read their own covering index (bench/console.py).
    __table_args__ = (
        Index("ix_audit_entries_participant_idx", "participant", "idx"),
        Index("ix_audit_entries_dataset_idx", "dataset", "idx"),
        Index("ix_audit_entries_event_idx", "event", "idx"),
        Index("ix_audit_entries_event_decision_time", "event", "decision", "time"),
        # Sorting by a column pages on (column, idx); filters by what an entry touched,
        # its trace and its exchange walk (column, idx) too (migration 0019).
        Index("ix_audit_entries_time_idx", "time", "idx"),
        Index("ix_audit_entries_decision_idx", "decision", "idx"),
        Index("ix_audit_entries_target_idx", "target", "idx"),
        Index("ix_audit_entries_trace_id_idx", "trace_id", "idx"),
        Index("ix_audit_entries_request_id_idx", "request_id", "idx"),
        # the console's charts and activity, covered (migration 0020)
        Index(
            "ix_audit_entries_event_time_activity",
            "event",
            "time",
            "dataset",
            "participant",
            "decision",
        ),
    )

    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[str] = mapped_column(String(32))
    participant: Mapped[str | None] = mapped_column(String(512), nullable=True)
    dataset: Mapped[str | None] = mapped_column(String(512), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # appended (issue 15, migration 0019): as written in the entry's canonical bytes
    target: Mapped[str | None] = mapped_column(String(512), nullable=True)
    trace_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(512), nullable=True)


class AuditNodeRow(Base):
    """A complete perfect-subtree node of the audit tree (level 0 are the leaves)."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpointRow(Base):
    """A signed checkpoint (C2SP signed note) of the audit tree at ``size`` leaves."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PolicyVersionRow(Base):
    """One version of a usage policy, by its canonical hash; agreements point at one."""

    __tablename__ = "policy_versions"

    hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    uid: Mapped[str] = mapped_column(String(512))
    format: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetRow(Base):
    """A dataset a provider shares: its connector (operator-controlled) and usage policy."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    provider_id: Mapped[str] = mapped_column(String(64), ForeignKey("participants.id"))
    asset: Mapped[str] = mapped_column(String(512))
    connector: Mapped[dict[str, Any]] = mapped_column(JSON)
    policy_hash: Mapped[str] = mapped_column(String(128), ForeignKey("policy_versions.hash"))
    approval: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AgreementRow(Base):
    """A consumer's agreement to use a dataset for a purpose, under one policy version.

    At most one agreement per consumer and dataset is live (``requested`` or ``active``):
    the partial unique index ``uq_agreements_live`` (revision 0006) makes the database say so.
    """

    __tablename__ = "agreements"
    __table_args__ = (
        Index(
            "uq_agreements_live",
            "consumer_id",
            "dataset_id",
            unique=True,
            sqlite_where=text("state IN ('requested', 'active')"),
            postgresql_where=text("state IN ('requested', 'active')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(128), ForeignKey("datasets.id"), index=True)
    consumer_id: Mapped[str] = mapped_column(String(64), ForeignKey("participants.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    policy_hash: Mapped[str] = mapped_column(String(128), ForeignKey("policy_versions.hash"))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Frozen since revision 0006: uses are counted in usage_state, not per agreement.
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# --- usage state (issue 11, revision 0006): what limits count, kept across agreements -----


class UsageStateRow(Base):
    """A consumer's use of a dataset under one policy version: what count and time limits see.

    It outlives agreements: ending one and asking again does not reset it.
    """

    __tablename__ = "usage_state"

    consumer_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("participants.id"), primary_key=True
    )
    dataset_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("datasets.id"), primary_key=True
    )
    policy_hash: Mapped[str] = mapped_column(
        String(128), ForeignKey("policy_versions.hash"), primary_key=True
    )
    use_count: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())  # elapsedTime counts from here
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsageEventRow(Base):
    """One spent use under a usage state (rate windows look at these); ``seq`` is its number."""

    __tablename__ = "usage_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["consumer_id", "dataset_id", "policy_hash"],
            ["usage_state.consumer_id", "usage_state.dataset_id", "usage_state.policy_hash"],
        ),
    )

    consumer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class PrivacySpendRow(Base):
    """The epsilon (nano-units) and delta one private query spent; ``seq`` is its use's number."""

    __tablename__ = "privacy_spends"
    __table_args__ = (
        ForeignKeyConstraint(
            ["consumer_id", "dataset_id", "policy_hash"],
            ["usage_state.consumer_id", "usage_state.dataset_id", "usage_state.policy_hash"],
        ),
        Index("ix_privacy_spends_key_at", "consumer_id", "dataset_id", "policy_hash", "at"),
    )

    consumer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    epsilon_nano: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[float | None] = mapped_column(Float, nullable=True)


class UsageBucketRow(Base):
    """Uses under a usage state in one time bucket: what rate windows count (O(1) per request).

    ``width`` is the bucket's length in seconds (1, 60, 3600 or 86400), ``bucket`` the start
    of the bucket in seconds since the epoch divided by ``width``. Written only for a policy
    with a rate limit; a window of length ``W`` reads the buckets of the widest width that
    still cuts ``W`` into at least 20 (see gateway/agreements/usage.py).
    """

    __tablename__ = "usage_buckets"
    __table_args__ = (
        ForeignKeyConstraint(
            ["consumer_id", "dataset_id", "policy_hash"],
            ["usage_state.consumer_id", "usage_state.dataset_id", "usage_state.policy_hash"],
        ),
    )

    consumer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    width: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    uses: Mapped[int] = mapped_column(Integer)


class OpenExchangeRow(Base):
    """A permitted exchange whose completion entry is not written yet.

    Inserted with the decision entry (same transaction), deleted with the completion entry;
    what a gateway finds under its own ``owner`` at start was cut off by a crash, and gets
    an ``exchange-interrupted`` entry naming the decision.
    """

    __tablename__ = "open_exchanges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    consumer_id: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GatewayInstanceRow(Base):
    """A gateway process (its ``instance_name``) and when it last said it was alive.

    Each process refreshes its row on a timer; the open exchanges of an instance not seen
    for ``instance_stale_after`` are closed as interrupted by any other (a Kubernetes pod
    replaced after its node was lost never starts again under its name).
    """

    __tablename__ = "gateway_instances"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AgreementHoldRow(Base):
    """A provider's revocation: the consumer's next agreement waits for explicit approval.

    Set when the provider revokes, cleared when the provider approves again.
    """

    __tablename__ = "agreement_holds"

    consumer_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("participants.id"), primary_key=True
    )
    dataset_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("datasets.id"), primary_key=True
    )
    agreement_id: Mapped[str] = mapped_column(String(64), ForeignKey("agreements.id"))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- bound certificates (issue 11): appended; see gateway/oauth/service.py and migration 0009


class BoundCertificateRow(Base):
    """A certificate some live access token is bound to, so introspection can re-verify it.

    Kept until the last token bound to it is no longer accepted (gateway/auth/windows.py).
    """

    __tablename__ = "bound_certificates"

    thumbprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain_pem: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class RateCounterRow(Base):
    """One fixed-window counter shared by all replicas (gateway/ratelimit, issue 11)."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger)


class AuditIdentityRow(Base):
    """The audit log's identity, fixed when the log is created: its origin and keys.

    ``first_key`` and ``key`` are C2SP verifier key strings (name, key ID, public key): the
    key the log began with and the one that signs now (they differ after a hand-over).
    """

    __tablename__ = "audit_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    origin: Mapped[str] = mapped_column(String(255))
    first_key: Mapped[str] = mapped_column(String(512))
    key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RegistryVersionRow(Base):
    """One row (revision 0012): incremented by every transaction that changes participants,
    clients, datasets, policy versions, agreements or revoked tokens (gateway/registry.py)."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class DspNegotiationRow(Base):
    """A DSP contract negotiation on the provider side (revision 0013).

    ``state`` is the DSP state (REQUESTED .. FINALIZED, TERMINATED); ``agreement_id`` is the
    Sluis agreement it maps onto (the same policy check, the same entries).
    """

    __tablename__ = "dsp_negotiations"

    provider_pid: Mapped[str] = mapped_column(String(80), primary_key=True)
    consumer_pid: Mapped[str] = mapped_column(String(256))
    consumer_id: Mapped[str] = mapped_column(String(64), ForeignKey("participants.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(String(128), ForeignKey("datasets.id"))
    offer_id: Mapped[str] = mapped_column(String(512))
    callback_address: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16))
    agreement_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("agreements.id"), nullable=True, index=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DspTransferRow(Base):
    """A DSP transfer process (HTTP-pull) on the provider side (revision 0013).

    ``token_jti`` is the Sluis access token the last TransferStartMessage carried (never the
    token itself); suspension, completion and termination revoke it.
    """

    __tablename__ = "dsp_transfers"

    provider_pid: Mapped[str] = mapped_column(String(80), primary_key=True)
    consumer_pid: Mapped[str] = mapped_column(String(256))
    consumer_id: Mapped[str] = mapped_column(String(64), ForeignKey("participants.id"), index=True)
    agreement_id: Mapped[str] = mapped_column(String(64), ForeignKey("agreements.id"))
    dataset_id: Mapped[str] = mapped_column(String(128), ForeignKey("datasets.id"))
    format: Mapped[str] = mapped_column(String(64))
    callback_address: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16))
    token_jti: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DspOutboxRow(Base):
    """A provider's DSP message to a consumer's callback (revision 0017), stored in the
    transaction of the state change it follows, deleted from the work list only when delivered
    or given up (``status``: pending, delivered, given-up).

    A TransferStartMessage is stored without its token (``message`` has no authorization
    property): a re-send after a restart mints a new token bound to ``token_thumbprint``.
    ``lease_until`` keeps two senders (the request's own, the background one, another
    replica) from sending the same row at once.
    """

    __tablename__ = "dsp_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process: Mapped[str] = mapped_column(String(100), index=True)
    dataset_id: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(2048))
    path: Mapped[str] = mapped_column(String(512))
    message: Mapped[dict[str, Any]] = mapped_column(JSON)
    token_thumbprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_dsp_outbox_due", "status", "next_attempt_at"),)


class DspConsumerNegotiationRow(Base):
    """A DSP contract negotiation this gateway asked for as the consumer (revision 0018).

    ``provider_url`` is the provider's DSP base URL; ``provider_id`` the participant (in this
    gateway's registry) whose client certificate the provider's callbacks must present;
    ``agreement_id`` the provider's Agreement ``@id`` once AGREED; ``offer`` the Offer the
    request carried (revision 0021; None for older rows), what a counter-offer must equal.
    """

    __tablename__ = "dsp_consumer_negotiations"

    consumer_pid: Mapped[str] = mapped_column(String(80), primary_key=True)
    provider_pid: Mapped[str | None] = mapped_column(String(256), nullable=True)
    provider_url: Mapped[str] = mapped_column(String(2048))
    provider_id: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64), ForeignKey("participants.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(String(256))
    offer_id: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    agreement_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    offer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)


class DspConsumerTransferRow(Base):
    """A DSP transfer process (HTTP-pull) this gateway asked for as the consumer (0018).

    ``token`` is the access token of the provider's last TransferStartMessage: bound to this
    gateway's own client certificate (``dsp_client_cert``), useless without its key; it is
    cleared when the transfer leaves STARTED.
    """

    __tablename__ = "dsp_consumer_transfers"

    consumer_pid: Mapped[str] = mapped_column(String(80), primary_key=True)
    provider_pid: Mapped[str | None] = mapped_column(String(256), nullable=True)
    negotiation_pid: Mapped[str] = mapped_column(
        String(80), ForeignKey("dsp_consumer_negotiations.consumer_pid")
    )
    provider_url: Mapped[str] = mapped_column(String(2048))
    provider_id: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64), ForeignKey("participants.id"), index=True)
    dataset_id: Mapped[str] = mapped_column(String(256))
    agreement_id: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
