"""Chart geometry for the Activity page: time buckets, scales, bars and labels (pure).

The templates draw inline SVG from these shapes; nothing here does I/O or knows about
HTML. Coordinates are in the SVG's own ``viewBox`` units and rounded to 0.1 so the page
stays small. Every bar carries a title with its exact numbers, because a bar's length
is only an approximation of them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from imagegate.audit.events import ALLOWED, DENIED

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# -- time buckets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """A window of time cut into equal buckets aligned to the step (in UTC).

    Buckets are aligned so a bucket means the same hour (or day) on every reload; the
    last one holds ``now``, so the chart spans up to one step more than the window.
    """

    key: str  # the ``since`` filter value: "24h"
    label: str
    span: dt.timedelta
    step: dt.timedelta
    tick_step: dt.timedelta  # a time-axis label where a bucket starts on a multiple of it

    @property
    def count(self) -> int:
        return self.span // self.step

    def bounds(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The chart's first bucket start and last bucket end, around ``now``."""
        until = _floor(now, self.step) + self.step
        return until - self.step * self.count, until

    def starts(self, now: dt.datetime) -> list[dt.datetime]:
        since, _ = self.bounds(now)
        return [since + self.step * i for i in range(self.count)]

    def is_tick(self, start: dt.datetime) -> bool:
        return _floor(start, self.tick_step) == start

    def tick_label(self, start: dt.datetime) -> str:
        if self.tick_step < dt.timedelta(days=1):
            return f"{start:%H:%M}"
        return _day(start) if self.tick_step == dt.timedelta(days=1) else f"{start.day} {start:%b}"

    def bucket_name(self, start: dt.datetime) -> str:
        """The bucket as a person reads it: "Tue 4 Mar 14:00-15:00 UTC"."""
        end = start + self.step
        if self.step >= dt.timedelta(days=1):
            return f"{_day(start)} {start:%Y} (UTC)"
        return f"{_day(start)} {start:%H:%M}-{end:%H:%M} UTC"


def _floor(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    return EPOCH + step * ((moment.astimezone(dt.UTC) - EPOCH) // step)


def _day(moment: dt.datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b}"


_HOUR, _DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
TIMELINES = {
    t.key: t
    for t in (
        Timeline("1h", "Last hour", _HOUR, dt.timedelta(minutes=5), dt.timedelta(minutes=10)),
        Timeline("24h", "Last 24 hours", _DAY, _HOUR, 3 * _HOUR),
        Timeline("7d", "Last 7 days", 7 * _DAY, 6 * _HOUR, _DAY),
        Timeline("30d", "Last 30 days", 30 * _DAY, _DAY, 5 * _DAY),
    )
}
DEFAULT_TIMELINE = "24h"


# -- scales ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """A count axis from 0 to ``top`` in ``step``s (whole numbers: counts are whole)."""

    top: int
    step: int

    @property
    def values(self) -> list[int]:
        return list(range(0, self.top + 1, self.step))


def nice_step(rough: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... at least ``rough``."""
    if rough <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(rough)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def count_axis(largest: int, ticks: int = 4) -> Axis:
    """An axis that holds ``largest`` with about ``ticks`` round steps above zero."""
    step = nice_step(max(largest, 1) / ticks)
    return Axis(step * max(1, math.ceil(largest / step)), step)


# -- shapes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"  # SVG text-anchor


@dataclass(frozen=True)
class Segment:
    kind: str  # ALLOWED or DENIED: the CSS class and the legend entry
    rect: Rect


@dataclass(frozen=True)
class Column:
    """One time bucket: its stacked segments, and a full-height area that shows the title."""

    slot: Rect
    segments: tuple[Segment, ...]
    name: str  # the bucket's time span
    allowed: int
    denied: int

    @property
    def title(self) -> str:
        return f"{self.name}: {self.allowed} allowed, {self.denied} denied"


@dataclass(frozen=True)
class GridLine:
    y: float
    label: Text


@dataclass(frozen=True)
class LegendEntry:
    kind: str
    swatch: Rect
    label: Text


@dataclass(frozen=True)
class Box:
    """The plot area inside the chart's margins."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


class Counts(Protocol):
    """A time bucket's pull counts (the audit service's activity bucket)."""

    @property
    def start(self) -> dt.datetime: ...

    @property
    def allowed(self) -> int: ...

    @property
    def denied(self) -> int: ...


@dataclass(frozen=True)
class PullChart:
    """Allowed and denied pulls per time bucket, stacked: allowed below, denied on top."""

    width: int
    height: int
    plot: Box
    columns: tuple[Column, ...]
    grid: tuple[GridLine, ...]
    ticks: tuple[Text, ...]
    legend: tuple[LegendEntry, ...]
    y_title: Text
    x_title: Text
    allowed: int
    denied: int

    @property
    def summary(self) -> str:
        return f"{self.allowed} allowed and {self.denied} denied pulls"


PULL_WIDTH, PULL_HEIGHT = 720, 280
_PULL_PLOT = Box(left=48, top=40, right=PULL_WIDTH - 12, bottom=PULL_HEIGHT - 44)
_GAP = 0.2  # the share of each bucket's width left empty between bars


def pull_chart(timeline: Timeline, buckets: Sequence[Counts]) -> PullChart:
    """The stacked bars of ``buckets`` (in time order, one per timeline bucket)."""
    plot = _PULL_PLOT
    axis = count_axis(max((b.allowed + b.denied for b in buckets), default=0))
    slot_width = plot.width / max(len(buckets), 1)
    bar_width = slot_width * (1 - _GAP)

    def y(value: int) -> float:
        return plot.bottom - plot.height * value / axis.top

    columns: list[Column] = []
    ticks: list[Text] = []
    for i, bucket in enumerate(buckets):
        left = plot.left + slot_width * i
        x = left + (slot_width - bar_width) / 2
        segments = []
        base = 0
        for kind, count in ((ALLOWED, bucket.allowed), (DENIED, bucket.denied)):
            if count:
                segments.append(
                    Segment(kind, _rect(x, y(base + count), bar_width, y(base) - y(base + count)))
                )
            base += count
        slot = _rect(left, plot.top, slot_width, plot.height)
        name = timeline.bucket_name(bucket.start)
        columns.append(Column(slot, tuple(segments), name, bucket.allowed, bucket.denied))
        if timeline.is_tick(bucket.start):
            ticks.append(
                _text(left + slot_width / 2, plot.bottom + 16, timeline.tick_label(bucket.start))
            )
    grid = tuple(
        GridLine(round(y(value), 1), _text(plot.left - 6, y(value) + 4, str(value), "end"))
        for value in axis.values
    )
    legend = (
        LegendEntry(
            ALLOWED,
            _rect(plot.right - 170, 12, 12, 12),
            _text(plot.right - 152, 22, "Allowed", "start"),
        ),
        LegendEntry(
            DENIED,
            _rect(plot.right - 82, 12, 12, 12),
            _text(plot.right - 64, 22, "Denied", "start"),
        ),
    )
    step = _duration(timeline.step)
    return PullChart(
        width=PULL_WIDTH,
        height=PULL_HEIGHT,
        plot=plot,
        columns=tuple(columns),
        grid=grid,
        ticks=tuple(ticks),
        legend=legend,
        y_title=_text(plot.left - 6, 22, "Pulls", "end"),
        x_title=_text(
            plot.left + plot.width / 2, PULL_HEIGHT - 8, f"Time (UTC), one bar per {step}"
        ),
        allowed=sum(b.allowed for b in buckets),
        denied=sum(b.denied for b in buckets),
    )


def _duration(step: dt.timedelta) -> str:
    minutes = int(step.total_seconds()) // 60
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes % size == 0:
            n = minutes // size
            return unit if n == 1 else f"{n} {unit}s"
    raise ValueError(f"a bucket of {step} is not whole minutes")


# -- the most-denied ranking -------------------------------------------------------------


@dataclass(frozen=True)
class RankedBar:
    name: str  # the repository, in full
    count: int
    rect: Rect
    label: Text  # the name, shortened to fit
    value: Text  # the count, after the bar
    title: str


@dataclass(frozen=True)
class RankingChart:
    width: int
    height: int
    bars: tuple[RankedBar, ...]


RANK_WIDTH, RANK_ROW = 720, 30
_RANK_LABEL = 230  # room for the repository names, left of the bars
_RANK_COUNT = 56  # room for the count, right of the longest bar
_RANK_LABEL_CHARS = 32


def ranking_chart(ranked: Sequence[tuple[str, int]]) -> RankingChart:
    """Horizontal bars, longest first as given, each as long as its share of the top count."""
    top = max((count for _, count in ranked), default=0)
    room = RANK_WIDTH - _RANK_LABEL - _RANK_COUNT
    bars = []
    for i, (name, count) in enumerate(ranked):
        row_top = i * RANK_ROW
        length = max(room * count / top, 2) if top else 0
        middle = row_top + RANK_ROW / 2
        bars.append(
            RankedBar(
                name=name,
                count=count,
                rect=_rect(_RANK_LABEL, row_top + 6, length, RANK_ROW - 12),
                label=_text(_RANK_LABEL - 8, middle + 4, shorten(name, _RANK_LABEL_CHARS), "end"),
                value=_text(_RANK_LABEL + length + 6, middle + 4, str(count), "start"),
                title=f"{name}: {count} denied {'pull' if count == 1 else 'pulls'}",
            )
        )
    return RankingChart(RANK_WIDTH, max(len(bars), 1) * RANK_ROW, tuple(bars))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its end (the repository's own name)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _rect(x: float, y: float, width: float, height: float) -> Rect:
    return Rect(round(x, 1), round(y, 1), round(width, 1), round(height, 1))


def _text(x: float, y: float, text: str, anchor: str = "middle") -> Text:
    return Text(round(x, 1), round(y, 1), text, anchor)
