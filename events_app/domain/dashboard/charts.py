"""Chart geometry for server-side SVG: coordinates, colours and texts, never markup.

``templates/manage/dashboard/_charts.html`` draws these with Jinja's autoescaping, so a label (a country
name, an event title) can never inject markup. Every colour is checked against white: bars and lines at
least 3:1, text at least 4.5:1 (WCAG 2.1, 1.4.11 and 1.4.3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from events_app.domain.dashboard.services import Count, Dashboard, DayCount, Rate
from events_app.lib.i18n import babel_locale, gettext

WHITE = "#ffffff"
BAR_COLOUR = "#0b4fb3"
TEXT_COLOUR = "#1b1b1b"
AXIS_COLOUR = "#6b6b6b"
GRID_COLOUR = "#8a8a8a"
STATUS_COLOURS: Mapping[str, str] = {
    "confirmed": "#1e6b2e",
    "pending_approval": "#b35900",
    "waitlisted": "#6a3d9a",
    "cancelled": "#4a4a4a",
    "rejected": "#a4161a",
}
GRAPHIC_COLOURS = (BAR_COLOUR, AXIS_COLOUR, GRID_COLOUR, *STATUS_COLOURS.values())
TEXT_COLOURS = (TEXT_COLOUR,)
MIN_GRAPHIC_CONTRAST = 3.0
MIN_TEXT_CONTRAST = 4.5

CHART_WIDTH = 640
FONT_SIZE = 13
# Horizontal bar charts
LABEL_WIDTH = 210
VALUE_WIDTH = 70
ROW_HEIGHT = 28
BAR_HEIGHT = 18
PADDING = 8
MAX_LABEL_CHARACTERS = 30
# Column charts
COLUMN_CHART_HEIGHT = 260
PLOT_LEFT = 56
PLOT_RIGHT = 12
PLOT_TOP = 12
PLOT_BOTTOM = 36


def relative_luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[index : index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def number(value: int) -> str:
    return format_decimal(value, locale=babel_locale())


def percent(ratio: float) -> str:
    return format_percent(ratio, locale=babel_locale())


def day_text(day: date, fmt: str = "medium") -> str:
    return format_date(day, format=fmt, locale=babel_locale())


def shorten(label: str, limit: int = MAX_LABEL_CHARACTERS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def nice_ticks(maximum: int, most: int = 5) -> list[int]:
    """0 and round steps (1, 2 or 5 times a power of ten) up to at least ``maximum``."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    step = max(int(step), 1)
    return list(range(0, math.ceil(maximum / step) * step + 1, step))


# --- horizontal bars (categories) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    full_label: str
    value_text: str
    colour: str
    y: float
    width: float
    text_y: float
    value_x: float


@dataclass(frozen=True, slots=True)
class BarChart:
    chart_id: str
    title: str
    description: str
    width: int
    height: int
    label_x: int
    bar_x: int
    bar_height: int
    font_size: int
    text_colour: str
    axis_colour: str
    bars: list[Bar]


def bar_chart(
    chart_id: str, title: str, counts: Sequence[Count], colours: Mapping[str, str] | None = None
) -> BarChart:
    area = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    largest = max((count.value for count in counts), default=0)
    bars = []
    for index, count in enumerate(counts):
        width = area * count.value / largest if largest else 0.0
        width = max(width, 2.0) if count.value else 0.0
        top = PADDING + index * ROW_HEIGHT
        bars.append(
            Bar(
                label=shorten(count.label),
                full_label=count.label,
                value_text=number(count.value),
                colour=(colours or {}).get(count.key, BAR_COLOUR),
                y=top + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                width=round(width, 2),
                text_y=top + ROW_HEIGHT / 2 + FONT_SIZE * 0.35,
                value_x=round(LABEL_WIDTH + width + 6, 2),
            )
        )
    return BarChart(
        chart_id=chart_id,
        title=title,
        description=_bar_description(counts),
        width=CHART_WIDTH,
        height=2 * PADDING + len(counts) * ROW_HEIGHT,
        label_x=LABEL_WIDTH - 8,
        bar_x=LABEL_WIDTH,
        bar_height=BAR_HEIGHT,
        font_size=FONT_SIZE,
        text_colour=TEXT_COLOUR,
        axis_colour=AXIS_COLOUR,
        bars=bars,
    )


def _bar_description(counts: Sequence[Count]) -> str:
    largest = max(counts, key=lambda count: count.value, default=None)
    if largest is None or not largest.value:
        return gettext("Bar chart with no registrations yet. The table below gives the same figures.")
    return gettext(
        "Bar chart. The largest is %(label)s with %(value)s. The table below gives every figure."
    ) % {"label": largest.label, "value": number(largest.value)}


# --- columns (registrations per day) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    tooltip: str


@dataclass(frozen=True, slots=True)
class Tick:
    position: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class ColumnChart:
    chart_id: str
    title: str
    description: str
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    font_size: int
    colour: str
    text_colour: str
    axis_colour: str
    grid_colour: str
    columns: list[Column]
    y_ticks: list[Tick]
    x_ticks: list[Tick]


def column_chart(chart_id: str, title: str, days: Sequence[DayCount]) -> ColumnChart:
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_height = COLUMN_CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    baseline = PLOT_TOP + plot_height
    ticks = nice_ticks(max((day.value for day in days), default=0))
    scale = plot_height / ticks[-1]
    slot = plot_width / max(len(days), 1)
    width = slot * 0.8 if slot >= 3 else slot
    columns = [
        Column(
            x=round(PLOT_LEFT + index * slot + (slot - width) / 2, 2),
            y=round(baseline - day.value * scale, 2),
            width=round(width, 2),
            height=round(day.value * scale, 2),
            tooltip=f"{day_text(day.day)}: {number(day.value)}",
        )
        for index, day in enumerate(days)
        if day.value
    ]
    return ColumnChart(
        chart_id=chart_id,
        title=title,
        description=_column_description(days),
        width=CHART_WIDTH,
        height=COLUMN_CHART_HEIGHT,
        plot_left=PLOT_LEFT,
        plot_right=CHART_WIDTH - PLOT_RIGHT,
        plot_top=PLOT_TOP,
        plot_bottom=baseline,
        font_size=FONT_SIZE,
        colour=BAR_COLOUR,
        text_colour=TEXT_COLOUR,
        axis_colour=AXIS_COLOUR,
        grid_colour=GRID_COLOUR,
        columns=columns,
        y_ticks=[Tick(round(baseline - tick * scale, 2), number(tick), "end") for tick in ticks],
        x_ticks=_day_ticks(days, slot),
    )


def _day_ticks(days: Sequence[DayCount], slot: float) -> list[Tick]:
    if not days:
        return []
    centre = PLOT_LEFT + slot / 2
    if len(days) == 1:
        return [Tick(round(centre, 2), day_text(days[0].day))]
    last = len(days) - 1
    ticks = [Tick(PLOT_LEFT, day_text(days[0].day), "start")]
    if len(days) > 2:
        middle = last // 2
        ticks.append(Tick(round(centre + middle * slot, 2), day_text(days[middle].day)))
    ticks.append(Tick(CHART_WIDTH - PLOT_RIGHT, day_text(days[last].day), "end"))
    return ticks


def _column_description(days: Sequence[DayCount]) -> str:
    if not days:
        return gettext("Column chart with no registrations yet.")
    busiest = max(days, key=lambda day: day.value)
    return gettext(
        "Column chart of registrations per day from %(first)s to %(last)s. The busiest day was %(day)s "
        "with %(value)s. The table below gives every day with registrations."
    ) % {
        "first": day_text(days[0].day),
        "last": day_text(days[-1].day),
        "day": day_text(busiest.day),
        "value": number(busiest.value),
    }


# --- the whole page ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a chart's data table: the label and the localised figure."""

    label: str
    value: str
    key: str = ""


@dataclass(frozen=True, slots=True)
class RateView:
    key: str
    label: str
    #: e.g. "85 % (17 of 20)"; None while the rate is not measured yet.
    text: str | None


@dataclass(frozen=True, slots=True)
class DashboardView:
    total: str
    active: str
    days: ColumnChart | None
    day_rows: list[Row]
    countries: BarChart | None
    country_rows: list[Row]
    sectors: BarChart
    sector_rows: list[Row]
    statuses: BarChart
    status_rows: list[Row]
    rates: list[RateView]
    event_rows: list[Row]


def _rows(counts: Sequence[Count]) -> list[Row]:
    return [Row(count.label, number(count.value), count.key) for count in counts]


def _rate_view(rate: Rate) -> RateView:
    if rate.part is None or rate.whole is None:
        return RateView(rate.key, rate.label, None)
    ratio = percent(rate.ratio or 0.0)
    text = gettext("%(percent)s (%(part)s of %(whole)s)") % {
        "percent": ratio,
        "part": number(rate.part),
        "whole": number(rate.whole),
    }
    return RateView(rate.key, rate.label, text)


def present_dashboard(dashboard: Dashboard) -> DashboardView:
    """Charts and tables for the page, in the current language."""
    return DashboardView(
        total=number(dashboard.total),
        active=number(dashboard.active),
        days=column_chart("chart-days", gettext("Registrations received per day (UTC)"), dashboard.per_day)
        if dashboard.per_day
        else None,
        day_rows=[
            Row(day_text(day.day), number(day.value), day.day.isoformat())
            for day in dashboard.per_day
            if day.value
        ],
        countries=bar_chart(
            "chart-countries", gettext("Active registrations by country"), dashboard.by_country
        )
        if dashboard.by_country
        else None,
        country_rows=_rows(dashboard.by_country),
        sectors=bar_chart("chart-sectors", gettext("Active registrations by sector"), dashboard.by_sector),
        sector_rows=_rows(dashboard.by_sector),
        statuses=bar_chart(
            "chart-statuses", gettext("Registrations by status"), dashboard.by_status, STATUS_COLOURS
        ),
        status_rows=_rows(dashboard.by_status),
        rates=[_rate_view(rate) for rate in dashboard.rates],
        event_rows=[Row(item.title, number(item.value), str(item.event_id)) for item in dashboard.by_event],
    )
