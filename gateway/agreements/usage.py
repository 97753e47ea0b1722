"""All SQL for usage state: what count, rate and elapsed-time limits see.

Usage state belongs to a consumer's use of a dataset under one policy version
(:class:`UsageKey`), not to an agreement: ending an agreement and asking for a new one
continues the same count, rate window and start. :func:`spend` is the one place a use is
counted: one conditional increment (``use_count < cap``, agreement still active), the use's
row and, for a policy with a rate limit, its time buckets. The exchange runs it as the
``effect`` of the decision entry, in the audit log's batch transaction, so a use and the
entry that explains it commit together or not at all.

Rate windows are counted in buckets (:data:`WIDTHS`), never by reading every use: a window
of length ``W`` sums the buckets of the widest width that cuts ``W`` into at least
:data:`MIN_BUCKETS`, from the bucket holding the window's start. That first bucket may hold
uses from just before the window, so a count can be too high by at most ``W / 20`` worth of
uses, never too low: a rate limit can refuse a little early, never admit one too many.

Pruning: every :data:`PRUNE_EVERY`-th use of a key, :func:`spend` deletes that key's rows no
window can read any more (:func:`prune`), in the same transaction: buckets older than the
first one the policy's longest window of their width reads, and use rows older than both
:data:`RATE_WINDOW` and the policy's longest window, each less :data:`PRUNE_MARGIN`. The
policy is the key's own (its hash is in the key), so its windows are exactly the ones that
read the key's rows. A key holds at most the rows its windows cover plus the rows of
``PRUNE_EVERY`` uses. The usage count itself and the audit log are never pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.log import stage
from gateway.audit.repository import execute_one
from gateway.storage.models import (
    AgreementRow,
    UsageBucketRow,
    UsageEventRow,
    UsageStateRow,
    UTCDateTime,
)
from gateway.storage.sql import insert_or_add, insert_unless_present
from policies.operands.temporal import add_duration

RATE_WINDOW = timedelta(days=31)  # how far back :func:`read` returns use times (history)
WIDTHS = (1, 60, 3600, 86400)  # bucket widths in seconds; migration 0011 carries this copy
MIN_BUCKETS = 20  # a window is cut into at least this many buckets (else width 1 s)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PRUNE_EVERY = 64  # a key's rows no window reads are deleted at every 64th use of it
#: Kept beyond the longest window: a decision's ``now`` may lag the pruning use's (it was
#: decided before its batch ran, or on a replica whose clock is behind), by far less.
PRUNE_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class UsageKey:
    """Whose use of what, under which policy version."""

    consumer_id: str
    dataset_id: str
    policy_hash: str

    def columns(self) -> dict[str, str]:
        """The key as column values."""
        return {
            "consumer_id": self.consumer_id,
            "dataset_id": self.dataset_id,
            "policy_hash": self.policy_hash,
        }


@dataclass(frozen=True)
class Usage:
    """What the policy engine is told: uses so far, recent use times, the start."""

    use_count: int
    request_times: tuple[datetime, ...]
    started_at: datetime | None


_STATE: Table = UsageStateRow.__table__  # type: ignore[assignment]  # a Table, typed FromClause
_AGREEMENTS: Table = AgreementRow.__table__  # type: ignore[assignment]
_EVENTS: Table = UsageEventRow.__table__  # type: ignore[assignment]
_BUCKETS: Table = UsageBucketRow.__table__  # type: ignore[assignment]


def _where(
    key: UsageKey, table: type[UsageStateRow] | type[UsageEventRow] | type[UsageBucketRow]
) -> ColumnElement[bool]:
    return and_(
        table.consumer_id == key.consumer_id,
        table.dataset_id == key.dataset_id,
        table.policy_hash == key.policy_hash,
    )


_KEY_COLUMNS = ("consumer_id", "dataset_id", "policy_hash")  # UsageKey.columns()'s names


def _key_is(table: Table) -> ColumnElement[bool]:
    """The key's columns of ``table`` equal to binds of their own names (run a SELECT of it
    with :meth:`UsageKey.columns`)."""
    return and_(*(table.c[name] == bindparam(name) for name in _KEY_COLUMNS))


# Built once and run with the key bound (per request for a policy with rate windows: built
# per call, SQLAlchemy's expressions cost more Python than the query)
_CURRENT = select(_STATE.c.use_count, _STATE.c.started_at).where(_key_is(_STATE))


@lru_cache(maxsize=8)  # by the number of bucket widths asked for (a policy has a few)
def _windows_query(widths: int) -> Select[int, int, int]:
    """The key's buckets of ``:wN`` width from bucket ``:bN`` on, for N below ``widths``."""
    wanted = or_(
        *(
            and_(_BUCKETS.c.width == bindparam(f"w{i}"), _BUCKETS.c.bucket >= bindparam(f"b{i}"))
            for i in range(widths)
        )
    )
    columns = (_BUCKETS.c.width, _BUCKETS.c.bucket, _BUCKETS.c.uses)
    return select(*columns).where(_key_is(_BUCKETS), wanted)


async def start(session: AsyncSession, key: UsageKey, now: datetime) -> None:
    """Begin counting for ``key`` at ``now``, unless it began before (then nothing changes)."""
    values = {**key.columns(), "use_count": 0, "started_at": now, "updated_at": now}
    await insert_unless_present(session, UsageStateRow, values)


async def read(session: AsyncSession, key: UsageKey, since: datetime) -> Usage | None:
    """The state for ``key`` with the times of its uses after ``since``; None before a start.

    One query: the state row joined to its recent uses (one row per use, or one without).
    """
    recent = and_(
        UsageEventRow.consumer_id == UsageStateRow.consumer_id,
        UsageEventRow.dataset_id == UsageStateRow.dataset_id,
        UsageEventRow.policy_hash == UsageStateRow.policy_hash,
        UsageEventRow.at > since,
    )
    rows = (
        await session.execute(
            select(UsageStateRow.use_count, UsageStateRow.started_at, UsageEventRow.at)
            .outerjoin(UsageEventRow, recent)
            .where(_where(key, UsageStateRow))
            .order_by(UsageEventRow.seq)
        )
    ).all()
    if not rows:
        return None
    times = tuple(at for _, _, at in rows if at is not None)
    return Usage(rows[0].use_count, times, rows[0].started_at)


async def counts(session: AsyncSession, keys: set[UsageKey]) -> dict[UsageKey, int]:
    """Uses spent under each of ``keys`` (0 where none began)."""
    found: dict[UsageKey, int] = dict.fromkeys(keys, 0)
    consumers = {k.consumer_id for k in keys}
    if not consumers:
        return found
    rows = await session.execute(
        select(
            UsageStateRow.consumer_id,
            UsageStateRow.dataset_id,
            UsageStateRow.policy_hash,
            UsageStateRow.use_count,
        ).where(UsageStateRow.consumer_id.in_(consumers))
    )
    for consumer_id, dataset_id, policy_hash, used in rows.all():
        key = UsageKey(consumer_id, dataset_id, policy_hash)
        if key in found:
            found[key] = used
    return found


def width_for(window: str) -> int:
    """The bucket width (seconds) that counts a window of ``window`` (ISO 8601 duration)."""
    seconds = (add_duration(_EPOCH, window) - _EPOCH).total_seconds()
    return max((w for w in WIDTHS if seconds / w >= MIN_BUCKETS), default=WIDTHS[0])


def _since(window: str, now: datetime) -> datetime:
    """Where the window ending at ``now`` begins, as the policy engine measures it."""
    return now - (add_duration(now, window) - now)


async def current(
    session: AsyncSession, key: UsageKey, windows: tuple[str, ...], now: datetime
) -> tuple[int, datetime, tuple[int, ...]] | None:
    """Uses so far, the start, and the uses in each of ``windows`` ending at ``now``.

    One SELECT of the state row; a second one of the buckets only when ``windows`` is not
    empty. Neither depends on how many uses there were. None before the state began.
    """
    row = (await session.execute(_CURRENT, key.columns())).first()
    if row is None:
        return None
    counts = await window_counts(session, key, windows, now) if windows else ()
    return row.use_count, row.started_at, counts


async def window_counts(
    session: AsyncSession, key: UsageKey, windows: tuple[str, ...], now: datetime
) -> tuple[int, ...]:
    """Uses in each of ``windows`` ending at ``now`` (one SELECT of at most ~1,500 buckets)."""
    firsts: dict[int, int] = {}
    for window in windows:
        width = width_for(window)
        first = int(_since(window, now).timestamp()) // width
        firsts[width] = min(first, firsts.get(width, first))
    values: dict[str, object] = dict(key.columns())
    for i, (width, first) in enumerate(firsts.items()):
        values[f"w{i}"], values[f"b{i}"] = width, first
    rows = (await session.execute(_windows_query(len(firsts)), values)).all()
    counts = []
    for window in windows:
        width = width_for(window)
        first = int(_since(window, now).timestamp()) // width
        counts.append(sum(uses for w, b, uses in rows if w == width and b >= first))
    return tuple(counts)


def request_times(
    windows: tuple[str, ...], counts: tuple[int, ...], now: datetime, *, cap: int
) -> tuple[datetime, ...]:
    """Use times that give the policy engine ``counts[i]`` uses in ``windows[i]``.

    The engine counts times in ``(now - W, now]``. The smallest window's uses are placed at
    ``now``; each larger window's extra uses just outside the next smaller window. Each
    window sees at most ``cap`` (a rate limit plus one is enough to decide it), so the
    tuple stays small whatever the history.
    """
    spans: dict[timedelta, int] = {}
    for window, count in zip(windows, counts, strict=True):
        span = add_duration(now, window) - now
        spans[span] = max(count, spans.get(span, 0))
    times: list[datetime] = []
    inner: timedelta | None = None
    for span in sorted(spans):
        extra = min(spans[span], cap) - len(times)
        if extra > 0:
            times.extend([now if inner is None else now - inner] * extra)
        inner = span
    return tuple(times)


async def agreement_active(session: AsyncSession, agreement_id: str) -> bool:
    """Whether the agreement is (still) active."""
    found = await session.scalar(select(AgreementRow.state).where(AgreementRow.id == agreement_id))
    return found == "active"


async def spend(
    session: AsyncSession,
    key: UsageKey,
    now: datetime,
    *,
    agreement_id: str,
    cap: int | None,
    widths: tuple[int, ...] = (),
    windows: tuple[str, ...] = (),
) -> int | None:
    """Count one use under ``agreement_id`` if the count is below ``cap`` (no cap: None)
    and the agreement is still active; the new count, or None (nothing changed).

    One conditional UPDATE: it succeeds only while the limit allows and the agreement is
    active, so neither two requests nor two replicas can spend the last use twice, and a
    revocation that commits first stops it; no read before it, no retry after it. The
    use's row (``seq`` = its number) and, for a policy with a rate limit, its buckets of
    ``widths`` are written with it. Every :data:`PRUNE_EVERY`-th use, the key's rows that
    none of ``windows`` (the policy's rate windows) can read any more are deleted.
    """
    values: dict[str, object] = {"agreement": agreement_id, "cap": cap, "spent_at": now}
    values |= {"consumer": key.consumer_id, "dataset": key.dataset_id, "policy": key.policy_hash}
    # On SQLite one hop to the driver's thread (through the session's connection, four)
    _, row = await execute_one(session, _spend_statement(cap is not None), values)
    if row is None:
        return None
    new = row[0]
    await stage(session, UsageEventRow, {**key.columns(), "seq": new, "at": now})
    if widths:
        seconds = int(now.timestamp())
        rows = [{**key.columns(), "width": w, "bucket": seconds // w, "uses": 1} for w in widths]
        await insert_or_add(session, UsageBucketRow, rows, "uses")
    if new % PRUNE_EVERY == 0:
        await prune(session, key, windows, now)
    return int(new)


@lru_cache(maxsize=2)
def _spend_statement(capped: bool) -> Update:
    """The conditional UPDATE of ``spend``, built once (with or without a cap) and run with
    its values bound: building it and its cache key on every use cost more CPU than the
    rest of the use. Core on the tables (not the ORM entities): it skips the ORM's
    bulk-update machinery (session synchronisation); nothing here is tracked."""
    state, agreements = _STATE, _AGREEMENTS
    still_active = exists().where(
        agreements.c.id == bindparam("agreement"), agreements.c.state == "active"
    )
    cap = bindparam("cap", type_=Integer)
    conditions = [
        state.c.consumer_id == bindparam("consumer"),
        state.c.dataset_id == bindparam("dataset"),
        state.c.policy_hash == bindparam("policy"),
        still_active,
    ]
    if capped:
        conditions.append(state.c.use_count < cap)
    return (
        update(state)
        .where(*conditions)
        .values(
            use_count=state.c.use_count + 1, updated_at=bindparam("spent_at", type_=UTCDateTime())
        )
        .returning(state.c.use_count)
    )


def prune_bounds(windows: tuple[str, ...], now: datetime) -> tuple[datetime, dict[int, int]]:
    """What a key whose policy has rate ``windows`` must keep at ``now`` (pure): use rows
    from the time returned, and of each bucket width the buckets from the one given.

    Each window counts as its longest span on any calendar (a month can be 31 days,
    a year 366), so a request made later, when the window may reach further back, still
    finds every bucket it reads."""
    oldest = now - RATE_WINDOW - PRUNE_MARGIN
    firsts: dict[int, int] = {}
    for window in windows:
        since = now - longest_span(window) - PRUNE_MARGIN
        oldest = min(oldest, since)
        width = width_for(window)
        first = int(since.timestamp()) // width
        firsts[width] = min(first, firsts.get(width, first))
    return oldest, firsts


#: Starts covering every run of month lengths (four years, one of them a leap year).
_SPAN_STARTS = tuple(datetime(2000 + m // 12, m % 12 + 1, 1, tzinfo=UTC) for m in range(48))


@lru_cache(maxsize=256)  # a policy's few windows (the text is the key)
def longest_span(window: str) -> timedelta:
    """The longest time ``window`` (ISO 8601 duration) can span, wherever it starts."""
    return max(add_duration(start, window) - start for start in _SPAN_STARTS)


async def prune(
    session: AsyncSession, key: UsageKey, windows: tuple[str, ...], now: datetime
) -> None:
    """Delete ``key``'s use rows and buckets that none of ``windows`` (its policy's rate
    windows) ending at ``now`` or later can read (two DELETEs, each one key's range)."""
    oldest, firsts = prune_bounds(windows, now)
    connection = await session.connection()
    events = _EVENTS.c
    await connection.execute(
        delete(_EVENTS).where(
            events.consumer_id == key.consumer_id,
            events.dataset_id == key.dataset_id,
            events.policy_hash == key.policy_hash,
            events.at < oldest,
        )
    )
    if not firsts:
        return
    buckets = _BUCKETS.c
    stale = or_(*(and_(buckets.width == w, buckets.bucket < b) for w, b in firsts.items()))
    await connection.execute(
        delete(_BUCKETS).where(
            buckets.consumer_id == key.consumer_id,
            buckets.dataset_id == key.dataset_id,
            buckets.policy_hash == key.policy_hash,
            stale,
        )
    )
