"""Which refusals become entries, which are summarised, and which sources are throttled.

Per source address and fixed window (a minute by default), the shared counter decides:

* hits ``1..entries``: the refusal is written as its own audit entry;
* later hits: tallied here, by event, and written as ONE summary entry per source and
  window ("N further refusals from source S in interval I") once the window has closed,
  or when the gateway stops: the log stays bounded and nothing is hidden;
* hits beyond ``block_after``: the source is answered 429 until the window ends, without
  any further work (:meth:`RefusalSampler.blocked` is a dict lookup, no IO); those 429s
  are tallied into the same summary. A participant known by its certificate is counted
  the same way under its own key (``participant:<id>``), wherever its requests come from,
  and answered 429 once its certificate has been checked.

With several replicas the counter is shared (database or Redis), so the first ``entries``
refusals across all replicas are entries; each replica writes its own summary of what it
tallied. If the counter cannot be reached the refusal is written in full (fail toward the
log) and nobody is throttled by this replica's stale view.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.ratelimit.counters import Counters
from gateway.ratelimit.window import Window, window_at
from gateway.storage import StorageUnavailable

log = logging.getLogger("sluis.ratelimit")


@dataclass(frozen=True, slots=True)
class Summary:
    """Refusals from one source in one window that were not written one by one."""

    source: str
    window: Window
    counts: Mapping[str, int]  # event type (or "rate-limited") -> how many

    @property
    def total(self) -> int:
        """How many refusals this summary stands for."""
        return sum(self.counts.values())

    def sentence(self) -> str:
        """The summary as one line for the entry's first reason."""
        return f"{self.total} further refusals from source {self.source} in interval " + (
            self.window.label()
        )


class RefusalSampler:
    """See the module docstring; ``now`` is always passed in."""

    def __init__(self, counters: Counters, *, seconds: int, entries: int, block_after: int):
        self.counters = counters
        self.seconds = seconds
        self.entries = entries
        self.block_after = block_after
        self._tallies: dict[tuple[str, Window], Counter[str]] = {}
        self._blocked: dict[str, Window] = {}

    async def admit(
        self, source: str, event: str, now: datetime, *, participant: str | None = None
    ) -> bool:
        """True: write this refusal as an entry; False: it was tallied for the summary.

        Entries are sampled per source; the block applies to the source and, when the
        refusal names one, to the participant (see the module docstring).
        """
        window = window_at(now, self.seconds)
        try:
            count = await self.counters.hit(f"refusals:{source}", window)
            if participant is not None:
                own = await self.counters.hit(f"refusals:participant:{participant}", window)
                if own > self.block_after:
                    self._blocked[f"participant:{participant}"] = window
        except StorageUnavailable as exc:
            log.warning("refusal counter unavailable (%s); writing the entry in full", exc)
            return True
        if count > self.block_after:
            self._blocked[f"source:{source}"] = window
        if count <= self.entries:
            return True
        self.tally(source, event, now)
        return False

    def tally(self, source: str, event: str, now: datetime) -> None:
        """Count one refusal from ``source`` into the summary of the current window."""
        key = (source, window_at(now, self.seconds))
        self._tallies.setdefault(key, Counter())[event] += 1

    def blocked(self, key: str, now: datetime) -> int | None:
        """Seconds until ``key`` (``source:<address>`` or ``participant:<id>``) may be served
        again, or None when it is not throttled."""
        window = self._blocked.get(key)
        if window is None:
            return None
        if window != window_at(now, self.seconds):
            del self._blocked[key]
            return None
        return window.retry_after(now)

    def due(self, now: datetime) -> list[Summary]:
        """The summaries of windows that have closed by ``now``, removed from the tally."""
        moment = now.timestamp()
        closed = [key for key in self._tallies if key[1].end <= moment]
        self._blocked = {s: w for s, w in self._blocked.items() if w.end > moment}
        return [self._pop(key) for key in sorted(closed, key=lambda k: (k[1].start, k[0]))]

    def pending(self) -> list[Summary]:
        """Every summary still open (at shutdown), removed from the tally."""
        return [self._pop(key) for key in sorted(self._tallies, key=lambda k: (k[1].start, k[0]))]

    def _pop(self, key: tuple[str, Window]) -> Summary:
        counts = self._tallies.pop(key)
        return Summary(key[0], key[1], dict(sorted(counts.items())))
