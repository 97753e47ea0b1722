"""The SVG drawing and the time buckets of the overview's charts (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from gateway.console import charts, service
from gateway.console.repository import Window

NOW = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("<b>&amp;</b>", "&lt;b&gt;&amp;amp;&lt;/b&gt;"),
        ('"quoted"', "&quot;quoted&quot;"),
        ("\u202eevil", "\u27e8U+202E\u27e9evil"),
        ("a\x00b\x1bc", "a\u27e8U+0000\u27e9b\u27e8U+001B\u27e9c"),
        ("\ud800", "\u27e8U+D800\u27e9"),
        ("x" * 50, "x" * 39 + "\u2026"),
    ],
)
def test_labels_are_visible_escaped_and_clipped(raw: str, shown: str) -> None:
    assert charts.text(raw) == shown


def test_every_chart_is_well_formed_whatever_its_labels() -> None:
    hostile = "</text><script>x</script>\x01\u202e" + "W" * 300
    drawn = [
        charts.bars("t", [charts.Heading(hostile), charts.Bar(hostile, 3, hostile)], empty="-"),
        charts.lines("t", ["a", "b", "c"], [charts.Series(hostile, (1, 0, 7))], empty="-"),
        charts.bars(hostile, [], empty="nothing"),
    ]
    for svg in drawn:
        root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        texts = ["".join(e.itertext()) for e in root.iter("{http://www.w3.org/2000/svg}text")]
        assert all(len(t) <= 80 for t in texts)


@pytest.mark.parametrize(("peak", "nice"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (500, 500)])
def test_the_axis_ends_at_a_round_number(peak: int, nice: int) -> None:
    assert charts._nice(peak) == nice


def test_a_day_in_hours_with_the_empty_hours_as_zeros() -> None:
    window = Window(NOW - timedelta(hours=3), NOW)
    assert service.bucket_for(window, NOW) == "hour"
    rows = [("d", "2026-12-02 09", 2), ("d", "2026-12-02 12", 1), ("e", "2026-12-02 10", 4)]
    timeline = service.timeline_of(rows, window, "hour", NOW)
    assert [t.hour for t in timeline.starts] == [9, 10, 11, 12]
    assert [(s.label, s.counts) for s in timeline.series] == [
        ("e", (0, 4, 0, 0)),
        ("d", (2, 0, 0, 1)),
    ]


def test_a_long_window_merges_days_and_the_quiet_datasets() -> None:
    window = Window(NOW - timedelta(days=999), NOW)
    assert service.bucket_for(window, NOW) == "day"
    first = (NOW - timedelta(days=999)).strftime("%Y-%m-%d")
    rows = [(f"ds-{i}", first, 10 - i) for i in range(9)] + [("ds-0", "2026-12-02", 5)]
    timeline = service.timeline_of(rows, window, "day", NOW)
    assert len(timeline.starts) <= service.MAX_BUCKETS
    labels = [s.label for s in timeline.series]
    assert labels == [f"ds-{i}" for i in range(6)] + ["3 other datasets"]
    assert timeline.series[0].counts[0] == 10
    assert timeline.series[0].counts[-1] == 5
    assert sum(timeline.series[-1].counts) == 4 + 3 + 2
    assert service.timeline_of([], window, "day", NOW).series == ()


def test_denials_count_by_event_and_first_reason_whatever_the_bytes() -> None:
    rows = [
        ("access-decision", b'{"decision":{"reasons":["no-agreement","why"]}}'),
        ("access-decision", b'{"decision":{"reasons":["no-agreement"]}}'),
        ("token-refused", b'{"decision":{"reasons":[]}}'),
        ("token-refused", b'{"decision":{"reasons":[7]}}'),
        ("certificate-refused", b"{not json"),
        ("certificate-refused", b"[" * 100_000),
    ]
    assert service.denial_reasons(rows) == [
        ("access-decision: no-agreement", 2),
        ("certificate-refused: (unreadable entry)", 2),
        ("token-refused: (no reason given)", 2),
    ]
