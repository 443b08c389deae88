"""Charts for the admin UI, drawn on the server as SVG: no script, no third-party request, nothing the admin's
content security policy (no inline style) refuses.

Readable at 390 px and at 1280 px because nothing is scaled as a picture: the outer SVG has no viewBox (a unit is a
CSS pixel), its labels and markers sit at percentages of its width, and only the data line is drawn in a nested SVG
stretched to the plot (``preserveAspectRatio="none"``, strokes kept at their width by ``non-scaling-stroke``). A day
without a value is a gap in the line over a hatched band, never a zero; a partial day (today) is a hollow point.
Each chart comes with its numbers as a table (``templates/charts.html``) for screen readers and for reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

PLOT_HEIGHT = 200  # px; the x labels go below it
LINE_WIDTH = 1000  # the data line's own units across the plot


@dataclass(frozen=True)
class Tick:
    at: float  # x: percent of the width; y: px from the top
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Point:
    x: float  # percent
    y: float  # px
    value: int
    day: date


@dataclass(frozen=True)
class LineChart:
    segments: list[str]  # one path ("d") per run of days with a value, in LINE_WIDTH x PLOT_HEIGHT units
    gaps: list[tuple[float, float]]  # (x, width) in percent: days without a value
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    last: Point | None  # the newest value (hollow when its day is not over)
    last_partial: bool
    summary: str


def nice_step(span: float, ticks: int = 4) -> int:
    """A step of 1, 2 or 5 times a power of ten that cuts ``span`` into about ``ticks`` parts."""
    raw = max(span / ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= 0.8 * raw))  # 500 for 550: a tick more


def line_chart(days: Sequence[date], values: Sequence[int | None], *, partial_last: bool, what: str) -> LineChart:
    """A line over ``days`` (dates, a value each; or datetimes, for a series sampled through a day: labelled by
    the time)."""
    known = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
    count = len(days)

    def x(n: int) -> float:  # the middle of day n, in percent
        return 50.0 if count == 1 else 100 * n / (count - 1)

    if known:
        low, high = min(v for _, v in known), max(v for _, v in known)
        step = nice_step(high - low)
        bottom, top = math.floor(low / step) * step, math.ceil(high / step) * step
        if top == bottom:
            bottom, top = bottom - step, top + step
    else:
        bottom, top, step = 0, 1, 1

    def y(value: int) -> float:
        return round(8 + (PLOT_HEIGHT - 16) * (top - value) / (top - bottom), 1)

    segments: list[str] = []
    gaps: list[tuple[float, float]] = []
    run: list[str] = []
    gap_from: int | None = None
    for n, value in enumerate(values):
        if value is None:
            if run:
                segments.append(" ".join(run))
                run = []
            gap_from = n if gap_from is None else gap_from
            continue
        if gap_from is not None:
            gaps.append(_band(gap_from, n - 1, count))
            gap_from = None
        run.append(f"{'M' if not run else 'L'}{x(n) * LINE_WIDTH / 100:.1f},{y(value)}")
    if run:
        segments.append(" ".join(run if len(run) > 1 else [*run, run[0].replace("M", "L", 1)]))
    if gap_from is not None:
        gaps.append(_band(gap_from, count - 1, count))
    y_ticks = [Tick(y(v), f"{v:,}") for v in range(int(bottom), int(top) + 1, step)] if known else []
    last_n = max((n for n, v in enumerate(values) if v is not None), default=None)
    last = None if last_n is None else Point(x(last_n), y(values[last_n] or 0), values[last_n] or 0, days[last_n])
    return LineChart(segments, gaps, y_ticks, date_ticks(days), last,
                     partial_last and last_n == count - 1, _summary(what, days, known))


def _band(first: int, last: int, count: int) -> tuple[float, float]:
    """Days ``first``..``last`` as a band reaching halfway to their neighbours, in percent."""
    if count == 1:
        return 0.0, 100.0
    per = 100 / (count - 1)
    left = max(0.0, (first - 0.5) * per)
    return round(left, 3), round(min(100.0, (last + 0.5) * per) - left, 3)


def date_ticks(days: Sequence[date], most: int = 5) -> list[Tick]:
    """The first day, the last, and evenly spaced days between (at most ``most``), as "7 Dec"."""
    count = len(days)
    if count == 0:
        return []
    if count == 1:
        return [Tick(50.0, _short(days[0]))]
    shown = sorted({round(i * (count - 1) / (most - 1)) for i in range(most)}) if count >= most else range(count)
    return [Tick(100 * n / (count - 1), _short(days[n]),
                 "start" if n == 0 else "end" if n == count - 1 else "middle") for n in shown]


def _short(moment: date) -> str:
    return f"{moment:%H:%M:%S}" if isinstance(moment, datetime) else f"{moment:%-d %b}"


def _long(moment: date) -> str:
    return f"at {moment:%H:%M:%S}" if isinstance(moment, datetime) else f"on {moment:%-d %B %Y}"


def _summary(what: str, days: Sequence[date], known: list[tuple[date, int]]) -> str:
    if not known:
        return f"No {what} recorded from {_short(days[0])} to {_short(days[-1])}."
    (first_day, first), (last_day, last) = known[0], known[-1]
    low, high = min(v for _, v in known), max(v for _, v in known)
    missing = len(days) - len(known)
    return (f"{what.capitalize()} from {first:,} {_long(first_day)} to {last:,} {_long(last_day)} "
            f"({last - first:+,}); lowest {low:,}, highest {high:,}; {len(known)} of {len(days)} days recorded"
            + (f", {missing} without a snapshot." if missing else "."))


@dataclass(frozen=True)
class Mark:
    x: float  # percent
    label: str
    kind: str  # now · refresh · expiry · data-access


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    marks: list[Mark]
    lived: float  # percent of the span already behind us
    summary: str


def timeline(now: datetime, start: datetime, marks: Sequence[tuple[datetime | None, str, str]]) -> Timeline | None:
    """A token's life on one line: from ``start`` (issued or last refreshed) to the latest of ``marks``."""
    dated = [(when, label, kind) for when, label, kind in marks if when is not None]
    if not dated:
        return None
    end = max([now, *(when for when, _, _ in dated)])
    first = min(start, now)
    span = (end - first).total_seconds() or 1.0

    def at(when: datetime) -> float:
        return round(100 * (when - first).total_seconds() / span, 2)

    placed = sorted([Mark(at(now), "now", "now"), *(Mark(at(when), f"{label} {when:%-d %b}", kind)
                                                     for when, label, kind in dated)], key=lambda m: m.x)
    said = "; ".join(f"{label} on {when:%-d %B %Y}" for when, label, _ in sorted(dated))
    return Timeline(first, end, placed, at(now), f"Today is {now:%-d %B %Y}; {said}.")
