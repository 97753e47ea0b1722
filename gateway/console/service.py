"""What the console's charts and agreement views are made of (issue 15).

Counts read from the log as stored (not proofs: the entry pages verify); uses left read from
the agreement's policy version (``policies.bounds.stated_use_limit``) and the usage state.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.agreements import repository as agreements_repo
from gateway.agreements.schemas import Agreement
from gateway.agreements.service import AgreementService
from gateway.audit.jcs import loads
from gateway.audit.log import AuditLog
from gateway.audit.repository import CountFilter
from gateway.audit.schemas import ActivityOut
from gateway.console import charts
from gateway.console import repository as repo
from gateway.console.schemas import AgreementEvent, OfficerAgreement
from gateway.datasets.service import DatasetService
from gateway.errors import GatewayError, NotFound
from gateway.storage.db import Database
from policies.bounds import stated_use_limit

MAX_DENIALS = 50_000  # denials read per chart: their reasons are inside the entries
MAX_BUCKETS = 200
MAX_HISTORY = 1000
MAX_AGREEMENTS = 1000  # the limits chart looks at the most recently changed ones
TOP_DATASETS = 6
TOP_REASONS = 12
NEAR_LIMIT = 0.8  # an agreement at 80% of its uses or more is drawn in red
HOURLY_UP_TO = timedelta(hours=48)
_WIDTHS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
_FORMATS = {"hour": "%Y-%m-%d %H", "day": "%Y-%m-%d"}


def bucket_for(window: repo.Window, now: datetime) -> repo.Bucket:
    """Hours for a window of two days or less, else days."""
    if window.since is None:
        return "day"
    return "hour" if (window.until or now) - window.since <= HOURLY_UP_TO else "day"


def _floor(moment: datetime, bucket: repo.Bucket) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


@dataclass(frozen=True)
class Timeline:
    """Buckets (their start times) and one series per busy dataset, the rest as one."""

    starts: tuple[datetime, ...]
    series: tuple[charts.Series, ...]


def timeline_of(
    rows: Sequence[tuple[str, str, int]], window: repo.Window, bucket: repo.Bucket, now: datetime
) -> Timeline:
    """From ``(dataset, bucket text, count)`` rows: every bucket of the window, zeros too."""
    if not rows:
        return Timeline((), ())
    width, parsed = _WIDTHS[bucket], _parse(rows, bucket)
    first = _floor(window.since, bucket) if window.since else min(t for _, t, _ in parsed)
    last = _floor(window.until or now, bucket)
    last = max(last, *(t for _, t, _ in parsed))
    span = (last - first) // width + 1
    merge = math.ceil(span / MAX_BUCKETS)  # a long window: several days per point
    size = math.ceil(span / merge)
    totals: dict[str, list[int]] = {}
    for dataset, start, count in parsed:
        slot = min(max((start - first) // width // merge, 0), size - 1)
        totals.setdefault(dataset, [0] * size)[slot] += count
    busiest = sorted(totals, key=lambda d: (-sum(totals[d]), d))
    series = [charts.Series(d, tuple(totals[d])) for d in busiest[:TOP_DATASETS]]
    rest = busiest[TOP_DATASETS:]
    if rest:
        summed = tuple(sum(totals[d][i] for d in rest) for i in range(size))
        series.append(charts.Series(f"{len(rest)} other datasets", summed))
    starts = tuple(first + width * merge * i for i in range(size))
    return Timeline(starts, tuple(series))


def _parse(
    rows: Iterable[tuple[str, str, int]], bucket: repo.Bucket
) -> list[tuple[str, datetime, int]]:
    fmt = _FORMATS[bucket]
    return [(d, datetime.strptime(b, fmt).replace(tzinfo=UTC), n) for d, b, n in rows]


def timeline_chart(timeline: Timeline, bucket: repo.Bucket) -> str:
    """Requests per dataset over time."""
    fmt = "%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d"
    ticks = [t.strftime(fmt) for t in timeline.starts]
    return charts.lines(
        "Access decisions per dataset over time (UTC)",
        ticks,
        timeline.series,
        empty="No access decisions in this period.",
    )


def denial_reasons(rows: Sequence[tuple[str, bytes]]) -> list[tuple[str, int]]:
    """``(event: first reason, count)``, most frequent first."""
    found: dict[str, int] = {}
    for event, data in rows:
        label = f"{event}: {_first_reason(data)}"
        found[label] = found.get(label, 0) + 1
    return sorted(found.items(), key=lambda i: (-i[1], i[0]))


def _first_reason(data: bytes) -> str:
    # The C parser, not the strict one (``jcs.loads``, twice as slow here): a label to
    # count by, not a verification; what an entry says is verified on its own page.
    try:
        entry = json.loads(data)
    except (ValueError, RecursionError):
        return "(unreadable entry)"
    decision = entry.get("decision") if isinstance(entry, dict) else None
    reasons = decision.get("reasons") if isinstance(decision, dict) else None
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], str) and reasons[0]:
        return reasons[0][:120]
    return "(no reason given)"


def denials_chart(reasons: list[tuple[str, int]], truncated: bool) -> str:
    """Denials by reason: the top reasons, the rest as one bar."""
    rows = [charts.Bar(label, n, str(n), charts.PALETTE[1]) for label, n in reasons[:TOP_REASONS]]
    rest = reasons[TOP_REASONS:]
    if rest:
        total = sum(n for _, n in rest)
        rows.append(charts.Bar(f"{len(rest)} other reasons", total, str(total), "#888888"))
    title = "Denials by reason" + (f" (the newest {MAX_DENIALS:,} only)" if truncated else "")
    return charts.bars(title, rows, empty="No denials in this period.")


def consumers_chart(activity: ActivityOut) -> str:
    """The top consumers of the busiest datasets."""
    rows: list[charts.Bar | charts.Heading] = []
    for dataset in activity.datasets[:TOP_DATASETS]:
        rows.append(charts.Heading(dataset.dataset))
        rows.extend(charts.Bar(c.participant, c.count, str(c.count)) for c in dataset.top_consumers)
    return charts.bars(
        "Top consumers per dataset", rows, empty="No access decisions in this period."
    )


def limits_chart(agreements: Sequence[OfficerAgreement], top: int = 10) -> str:
    """Active agreements with a use limit, the closest to it first."""
    limited = [a for a in agreements if a.state == "active" and a.use_limit]
    limited.sort(key=lambda a: (-a.use_count / (a.use_limit or 1), a.id))
    rows = [
        charts.Bar(
            f"{a.consumer_id} \u2192 {a.dataset_id}",
            min(a.use_count / (a.use_limit or 1), 1.0),
            f"{a.use_count}/{a.use_limit}, {a.uses_left} left",
            charts.PALETTE[1] if a.use_count >= NEAR_LIMIT * (a.use_limit or 1) else "#e5a50a",
        )
        for a in limited[:top]
    ]
    return charts.bars(
        "Agreements closest to their use limits (now)",
        rows,
        empty="No active agreement has a use limit.",
        widest=1.0,
    )


async def draw(
    name: str,
    window: repo.Window,
    *,
    audit: AuditLog,
    agreements: AgreementService,
    datasets: DatasetService,
    now: datetime,
) -> str | None:
    """The overview's chart ``name`` over ``window`` as SVG; None for no such chart."""
    if name == "requests":
        bucket = bucket_for(window, now)
        async with audit.db.session() as session:
            rows = await repo.timeline(session, window, bucket)
        return timeline_chart(timeline_of(rows, window, bucket, now), bucket)
    if name == "denials":
        async with audit.db.session() as session:
            found = await repo.denials(session, window, MAX_DENIALS)
        return denials_chart(denial_reasons(found), len(found) == MAX_DENIALS)
    if name == "consumers":
        rows_ = await audit.activity(CountFilter(since=window.since, until=window.until))
        return consumers_chart(ActivityOut.of(rows_, top=5))
    if name == "limits":
        found_ = await agreements.newest(MAX_AGREEMENTS)
        return limits_chart(await with_limits(datasets, found_))
    return None


async def with_limits(
    datasets: DatasetService, agreements: Sequence[Agreement]
) -> list[OfficerAgreement]:
    """Each agreement with its policy version's stated use limit and the uses left."""
    limits: dict[str, int | None] = {}
    for digest in {a.policy_hash for a in agreements}:
        try:
            limits[digest] = stated_use_limit(await datasets.policy(digest))
        except GatewayError:  # a version that no longer loads: no limit to show
            limits[digest] = None
    return [_limited(a, limits[a.policy_hash]) for a in agreements]


def _limited(agreement: Agreement, limit: int | None) -> OfficerAgreement:
    left = None if limit is None else max(limit - agreement.use_count, 0)
    return OfficerAgreement(**agreement.model_dump(), use_limit=limit, uses_left=left)


async def history(db: Database, agreement_id: str) -> list[AgreementEvent]:
    """The agreement's ``agreement-changed`` entries, oldest first."""
    async with db.session() as session:
        row = await agreements_repo.get(session, agreement_id)
        if row is None:
            raise NotFound("agreement-not-found", f"no agreement {agreement_id}")
        found = await repo.dataset_changes(session, row.dataset_id, MAX_HISTORY)
    target = f"agreement:{agreement_id}"
    events = (AgreementEvent.of(index, loads(data)) for index, data in found)
    return [e for e in events if e.target == target]
