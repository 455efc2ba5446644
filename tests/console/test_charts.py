"""The Activity page's chart geometry: buckets, scales, bars and their titles (no browser)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from imagegate.http.console.charts import (
    ALLOWED,
    DENIED,
    PULL_HEIGHT,
    TIMELINES,
    Axis,
    count_axis,
    nice_step,
    pull_chart,
    ranking_chart,
    shorten,
)

NOW = dt.datetime(2025, 3, 4, 14, 37, 12, tzinfo=dt.UTC)  # a Tuesday


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime
    allowed: int
    denied: int


@pytest.mark.parametrize(
    ("rough", "step"),
    [(0, 1), (0.3, 1), (1, 1), (1.5, 2), (2, 2), (2.1, 5), (7, 10), (10, 10), (11, 20), (260, 500)],
)
def test_steps_are_one_two_or_five_times_a_power_of_ten(rough: float, step: int) -> None:
    assert nice_step(rough) == step


@pytest.mark.parametrize(
    ("largest", "axis"),
    [(0, Axis(1, 1)), (1, Axis(1, 1)), (3, Axis(3, 1)), (4, Axis(4, 1)), (5, Axis(6, 2)),
     (9, Axis(10, 5)), (37, Axis(40, 10)), (1000, Axis(1000, 250 * 2))],
)  # fmt: skip
def test_the_count_axis_holds_the_largest_value_in_round_steps(largest: int, axis: Axis) -> None:
    assert count_axis(largest) == axis
    assert axis.top >= largest
    assert axis.values[0] == 0 and axis.values[-1] == axis.top


def test_a_day_is_24_hourly_buckets_aligned_to_the_hour_ending_after_now() -> None:
    day = TIMELINES["24h"]
    since, until = day.bounds(NOW)
    assert until == dt.datetime(2025, 3, 4, 15, tzinfo=dt.UTC)
    assert since == dt.datetime(2025, 3, 3, 15, tzinfo=dt.UTC)
    starts = day.starts(NOW)
    assert len(starts) == 24 and starts[0] == since and starts[-1] == until - dt.timedelta(hours=1)
    assert day.bucket_name(starts[-1]) == "Tue 4 Mar 14:00-15:00 UTC"


@pytest.mark.parametrize(
    ("key", "count", "first_tick"),
    [("1h", 12, "13:40"), ("24h", 24, "15:00"), ("7d", 28, "Wed 26 Feb"), ("30d", 30, "6 Feb")],
)
def test_every_window_has_its_bucket_count_and_readable_ticks(
    key: str, count: int, first_tick: str
) -> None:
    timeline = TIMELINES[key]
    starts = timeline.starts(NOW)
    assert len(starts) == count == timeline.count
    ticks = [timeline.tick_label(s) for s in starts if timeline.is_tick(s)]
    assert ticks[0] == first_tick
    assert 4 <= len(ticks) <= 12, ticks  # enough to read the axis, few enough to fit


def test_a_day_bucket_is_named_by_its_date() -> None:
    month = TIMELINES["30d"]
    assert month.bucket_name(month.starts(NOW)[-1]) == "Tue 4 Mar 2025 (UTC)"


def _buckets(counts: list[tuple[int, int]]) -> list[Bucket]:
    day = TIMELINES["24h"]
    return [Bucket(start, *pair) for start, pair in zip(day.starts(NOW), counts, strict=True)]


def test_bars_stack_denied_on_allowed_with_heights_in_proportion() -> None:
    counts = [(0, 0)] * 24
    counts[3] = (6, 2)
    counts[20] = (0, 4)
    chart = pull_chart(TIMELINES["24h"], _buckets(counts))
    assert (chart.allowed, chart.denied) == (6, 6)
    # the largest stack is 8: the axis goes to 8 in steps of 2, so that bar is full height
    assert [g.label.text for g in chart.grid] == ["0", "2", "4", "6", "8"]
    unit = chart.plot.height / 8
    column = chart.columns[3]
    allowed, denied = column.segments
    assert (allowed.kind, denied.kind) == (ALLOWED, DENIED)
    assert allowed.rect.height == pytest.approx(6 * unit, abs=0.1)
    assert denied.rect.height == pytest.approx(2 * unit, abs=0.1)
    assert allowed.rect.y + allowed.rect.height == pytest.approx(chart.plot.bottom, abs=0.1)
    assert denied.rect.y + denied.rect.height == pytest.approx(allowed.rect.y, abs=0.1)
    assert [s.kind for s in chart.columns[20].segments] == [DENIED]
    assert chart.columns[0].segments == ()  # nothing drawn for an empty bucket


def test_every_bucket_has_a_title_with_its_exact_numbers_and_a_full_height_slot() -> None:
    counts = [(i, i % 3) for i in range(24)]
    chart = pull_chart(TIMELINES["24h"], _buckets(counts))
    assert chart.columns[5].title == "Mon 3 Mar 20:00-21:00 UTC: 5 allowed, 2 denied"
    slots = [c.slot for c in chart.columns]
    assert all(s.height == chart.plot.height for s in slots)
    assert slots[0].x == chart.plot.left
    assert slots[-1].x + slots[-1].width == pytest.approx(chart.plot.right, abs=0.2)
    for column in chart.columns:  # bars stay inside their slot, with a gap between
        for segment in column.segments:
            assert column.slot.x < segment.rect.x
            assert segment.rect.x + segment.rect.width < column.slot.x + column.slot.width


def test_labels_ticks_and_legend_sit_inside_the_picture() -> None:
    chart = pull_chart(TIMELINES["24h"], _buckets([(1, 1)] * 24))
    assert [t.text for t in chart.ticks] == [f"{h:02}:00" for h in (15, 18, 21, 0, 3, 6, 9, 12)]
    assert all(chart.plot.bottom < t.y < PULL_HEIGHT for t in chart.ticks)
    assert [e.label.text for e in chart.legend] == ["Allowed", "Denied"]
    assert chart.x_title.text == "Time (UTC), one bar per hour"
    assert TIMELINES["7d"].step == dt.timedelta(hours=6)
    assert pull_chart(TIMELINES["7d"], []).x_title.text.endswith("one bar per 6 hours")


def test_the_ranking_scales_bars_to_the_top_count() -> None:
    chart = ranking_chart([("someone/thing", 8), ("library/alpine", 4), ("acme/x", 1)])
    first, second, third = chart.bars
    assert second.rect.width == pytest.approx(first.rect.width / 2, abs=0.1)
    assert third.rect.width == pytest.approx(first.rect.width / 8, abs=0.1)
    assert [b.value.text for b in chart.bars] == ["8", "4", "1"]
    assert first.title == "someone/thing: 8 denied pulls"
    assert third.title == "acme/x: 1 denied pull"
    assert first.rect.y < second.rect.y < third.rect.y
    assert chart.height == 3 * (second.rect.y - first.rect.y)
    assert first.value.x > first.rect.x + first.rect.width  # the count follows its bar
    assert first.value.x < chart.width


def test_long_names_keep_their_end_and_the_title_keeps_them_whole() -> None:
    name = "a-very-long-namespace-indeed/and-an-even-longer-repository"
    bar = ranking_chart([(name, 2)]).bars[0]
    assert bar.label.text.startswith("…") and bar.label.text.endswith("longer-repository")
    assert len(bar.label.text) == 32
    assert bar.title.startswith(name)
    assert shorten("short", 32) == "short"


def test_no_denials_draw_no_bars() -> None:
    assert ranking_chart([]).bars == ()
