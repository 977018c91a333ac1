"""SCOR scorecard: one tile per KPI with its latest value, change, target and trend.

A tile's *Records* button, or a click on a day of its trend, opens the records behind it
below the grid (``dashboards.drilldown``).
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Literal

import streamlit as st

from dashboards import charts, connection, drilldown, filters, queries
from dashboards.scorecard import KPIS, Tile, format_change, format_value, tile

PAGE = "scorecard"
RECORDS_KPI = f"{PAGE}.records.kpi"  # the tile whose records are shown (its title)
RECORDS_WHEN = f"{PAGE}.records.when"  # None: the tile's whole period; else one day/month
BY_TITLE = {kpi.title: kpi for kpi in KPIS}
BadgeColor = Literal["green", "orange", "red", "gray"]
STATUS_BADGES: dict[str, tuple[str, BadgeColor, str]] = {
    "green": ("On target", "green", "#21a366"),
    "amber": ("Near target", "orange", "#f0a202"),
    "red": ("Off target", "red", "#d62828"),
    "no data": ("No data", "gray", "#8a8a8a"),
}

st.title("SCOR scorecard")
gold_tables = sorted({kpi.table for kpi in KPIS})
present = [table for table in gold_tables if connection.has_tables(table)]
if not present:
    connection.require_tables(*gold_tables)
    st.stop()

if connection.has_tables("gold.fill_rate_daily"):
    bounds = connection.date_bounds(queries.ORDER_DATE_BOUNDS, what="orders yet")
    if bounds is None:
        st.stop()
    as_of = bounds[1]
    options = connection.run(queries.LOCATIONS)["value"].tolist()
    channel_options = connection.run(queries.CHANNELS)["value"].tolist()
else:  # the other KPI tables still have tiles
    as_of, options, channel_options = dt.date.today(), [], []

left, middle, right = st.columns([2, 3, 3])
with left:
    days = filters.pick_one(
        PAGE, "period", "Period", [7, 14, 28], default=7, format_func=lambda d: f"{d} days"
    )
with middle:
    locations = filters.choose(PAGE, "locations", "Location", options)
with right:
    channels = filters.choose(PAGE, "channels", "Channel", channel_options)
st.caption(
    f"As of {as_of:%d %b %Y}: each tile compares the last {days} days with the {days} days"
    " before (inventory: latest month vs the month before). Location and channel apply to"
    " the order KPIs; location also to inventory."
)

params = filters.Filters(
    start_date=as_of - dt.timedelta(days=4 * days - 1),
    end_date=as_of,
    locations=locations,
    channels=channels,
).params()


def open_records(title: str, when: dt.date | None = None) -> None:
    st.session_state[RECORDS_KPI] = title
    st.session_state[RECORDS_WHEN] = when


def on_trend_click(title: str, key: str) -> None:
    day = charts.picked_day(st.session_state.get(key))
    if day is not None:
        open_records(title, day.replace(day=1) if BY_TITLE[title].monthly else day)


def show(card: Tile, index: int) -> None:
    label, badge_color, line_color = STATUS_BADGES[card.status]
    kpi = card.kpi
    with st.container(border=True):
        st.metric(
            kpi.title,
            format_value(card.value, kpi.unit),
            delta=format_change(card.change, kpi.unit),
            delta_color="normal" if kpi.higher_is_better else "inverse",
            help=f"{kpi.reference}. Change vs the previous period.",
        )
        st.badge(label, color=badge_color)
        if not card.trend.empty:
            key = f"{PAGE}.trend.{index}"
            st.altair_chart(
                charts.sparkline(card.trend, color=line_color),
                width="stretch",
                key=key,
                on_select=partial(on_trend_click, kpi.title, key),
                selection_mode=charts.POINT,
            )
        target, records = st.columns([3, 1], vertical_alignment="center")
        target.caption(
            f"Target {'≥' if kpi.higher_is_better else '≤'} {format_value(kpi.target, kpi.unit)}"
            f" · previous {format_value(card.previous, kpi.unit)}"
        )
        records.button(
            "Records",
            key=f"{PAGE}.records.{index}",
            on_click=open_records,
            args=(kpi.title,),
            help=f"The {kpi.records_of} behind this tile",
            type="tertiary",
        )


grid = st.columns(3)
for index, kpi in enumerate(KPIS):
    card = (
        tile(kpi, connection.run(kpi.query, params), as_of, days) if kpi.table in present else None
    )
    with grid[index % 3]:
        if card is None:
            with st.container(border=True):
                st.metric(kpi.title, "—", help=f"{kpi.table} is not in the lake yet")
                st.badge("No data", color="gray")
        else:
            show(card, index)


def show_records() -> None:
    """The records behind the picked tile: its period, or the picked day or month."""
    st.subheader("Records behind the numbers")
    titles = [kpi.title for kpi in KPIS if kpi.table in present]
    if st.session_state.get(RECORDS_KPI) not in titles:
        st.session_state[RECORDS_KPI] = None
    pick, when = st.columns([2, 2])
    with pick:
        title = st.selectbox(
            "KPI", titles, key=RECORDS_KPI, index=None, placeholder="Pick a tile's Records"
        )
    if title is None:
        st.caption("Click *Records* on a tile, or a day on its trend, to see what it counts.")
        return
    kpi = BY_TITLE[title]
    period = drilldown.tile_scope(kpi, as_of, days)
    choices: list[dt.date | None] = [None, *_points(period.end, kpi.monthly)]
    if st.session_state.get(RECORDS_WHEN) not in choices:
        st.session_state[RECORDS_WHEN] = None
    with when:
        picked = st.selectbox(
            "Day" if not kpi.monthly else "Month",
            choices,
            key=RECORDS_WHEN,
            format_func=lambda d: f"Whole tile period ({period.label()})" if d is None else str(d),
        )
    scope = period if picked is None else drilldown.Scope(kpi, picked, picked)
    drilldown.show(scope, params, key=f"{PAGE}.records")


def _points(end: dt.date, monthly: bool) -> list[dt.date]:
    """The days (or months) a tile's trend shows, newest first: each can be picked."""
    if monthly:
        months = [end]
        for _ in range(11):
            months.append((months[-1] - dt.timedelta(days=1)).replace(day=1))
        return months
    return [end - dt.timedelta(days=n) for n in range(4 * days)]


show_records()
