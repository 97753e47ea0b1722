"""Fixed windows and the verdict of one counter hit (pure: the time is passed in)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, start + seconds)`` in Unix seconds; windows of one size never overlap."""

    start: int
    seconds: int

    @property
    def end(self) -> int:
        """The first second after the window."""
        return self.start + self.seconds

    def label(self) -> str:
        """``<start>/<end>`` in RFC 3339 UTC (an ISO 8601 interval)."""
        return f"{_iso(self.start)}/{_iso(self.end)}"

    def retry_after(self, now: datetime) -> int:
        """Whole seconds from ``now`` until the window ends, at least 1."""
        return max(1, math.ceil(self.end - now.timestamp()))


def window_at(now: datetime, seconds: int) -> Window:
    """The window of size ``seconds`` that holds ``now``."""
    if seconds < 1:
        raise ValueError("a window lasts at least one second")
    moment = math.floor(now.timestamp())
    return Window(moment - moment % seconds, seconds)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One hit on a counter: allowed while ``count <= limit``; else retry after the window."""

    allowed: bool
    count: int
    retry_after: int


def verdict(count: int, limit: int, window: Window, now: datetime) -> Verdict:
    """The verdict for the ``count``-th hit in ``window`` against ``limit``."""
    return Verdict(count <= limit, count, 0 if count <= limit else window.retry_after(now))


def _iso(seconds: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
